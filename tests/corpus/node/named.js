class Timeout extends Error {
  constructor(message) { super(message); this.name = 'Timeout'; }
}
const err = new Timeout('took too long\nafter 3 attempts');
err.code = 'ETIMEDOUT';
console.error(err);
console.error('Status: degraded');
console.error('retrying in 5s');
console.error(new Timeout('gave up'));
console.error(new Error('request failed\nStatus: 500'));
console.error('Status: ok');
console.error('ready');
