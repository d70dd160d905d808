#!/usr/bin/env node
// autobahn-js over its long-poll transport (XMLHttpRequest from ./xhr.mjs):
// join, subscribe, publish (acknowledged, not excluded), register, call,
// leave.  One JSON object per line on stdout; exit 0 when all went well.
//
// Usage: node longpoll.mjs --url http://127.0.0.1:PORT/lp --realm realm1
import { writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { XMLHttpRequest } from './xhr.mjs';

const require = createRequire(import.meta.url);
console.log = (...a) => console.error(...a);
globalThis.XMLHttpRequest = XMLHttpRequest;
const autobahn = require('autobahn');

const { values } = parseArgs({ options: { url: { type: 'string' }, realm: { type: 'string', default: 'realm1' } } });
const out = (obj) => writeSync(1, JSON.stringify(obj) + '\n');
const fail = (text) => { out({ event: 'fatal', text: String(text) }); process.exit(1); };
setTimeout(() => fail('timed out'), 20000).unref();

const connection = new autobahn.Connection({
  transports: [{ type: 'longpoll', url: values.url }],
  realm: values.realm,
  max_retries: 0,
});

connection.onopen = async (session) => {
  try {
    out({ event: 'joined', session: session.id, transport: connection.transport.info.type });
    const got = new Promise((resolve) => {
      session.subscribe('com.lp.js', (args, kwargs) => resolve({ args, kwargs }));
    });
    await new Promise((r) => setTimeout(r, 50));
    await session.publish('com.lp.js', ['hi'], { n: 1 }, { acknowledge: true, exclude_me: false });
    out({ event: 'event', ...(await got) });
    await session.register('com.lp.js.add', (args) => args[0] + args[1]);
    out({ event: 'result', value: await session.call('com.lp.js.add', [2, 3]) });
    out({ event: 'remote', value: await session.call('com.lp.py.echo', ['ping']) });
    connection.close();
  } catch (err) {
    fail(JSON.stringify(err) || err);
  }
};
connection.onclose = (reason, details) => {
  out({ event: 'closed', reason });
  process.exit(reason === 'closed' ? 0 : 1);
};
connection.open();
