class Timeout extends Error {
  constructor(message) { super(message); this.name = 'Timeout'; }
}
console.log('INFO starting');
setTimeout(() => { Promise.reject(new Error('db down\nno retry')); }, 200);
setTimeout(() => { Promise.reject(new Timeout('took too long\nafter 3 attempts')); }, 400);
setTimeout(() => { Promise.reject('boom'); }, 600);
setTimeout(() => { console.log('INFO still here'); }, 800);
setInterval(() => {}, 1000);
