const { ConsoleLogger } = require('@nestjs/common');
const logger = new ConsoleLogger();
class Timeout extends Error {
  constructor(message) { super(message); this.name = 'Timeout'; }
}
const err = new Timeout('took too long');
logger.error(err.message, err.stack, 'ExceptionsHandler');
logger.error('upstream failed', undefined, 'Proxy');
console.error('Status: 502');
console.error('retrying in 5s');
const e2 = new TypeError('bad input');
logger.error(e2.message, e2.stack, 'ExceptionsHandler');
