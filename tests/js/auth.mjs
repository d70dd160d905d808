#!/usr/bin/env node
// autobahn-js authentication client for the wampd test suite
// (tests/test_interop_js_auth.py).
//
// Joins with the given authmethods/authid and answers the CHALLENGE the way
// an application would: ticket -> the ticket; wampcra -> autobahn.auth_cra.sign
// (with derive_key first when the CHALLENGE carries a salt).  Then it runs the
// --actions in order and leaves.  One JSON object per line on stdout:
//
//   {"event":"challenge","method":...,"extra_keys":[...]}
//   {"event":"joined","session":...,"authid":...,"authrole":...,"authmethod":...,"authprovider":...}
//   {"event":"action","op":...,"uri":...,"ok":true,"value":...}
//   {"event":"action","op":...,"uri":...,"ok":false,"error":...,"args":[...]}
//   {"event":"closed","reason":...,"wamp_reason":...,"message":...,"joined":bool}
//
// Exit status 0 when the run went as the protocol says (joined and left, or
// refused with ABORT), 1 on anything unexpected, 2 on a bad command line,
// 3 on the global timeout; a {"event":"fatal",...} line precedes non-zero exits.
//
// Usage:
//   node auth.mjs --url ws://127.0.0.1:8080/ws --realm realm1 \
//        --serializer json|msgpack|cbor --authmethods ticket[,wampcra] \
//        [--authid joe] [--secret S] [--actions JSON] [--timeout-ms 10000]
//
// --actions: a JSON array of [op, uri, args?] with op one of subscribe,
// publish (acknowledged), call, register (the endpoint echoes its args).

import { writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
console.log = (...a) => console.error(...a);
console.info = (...a) => console.error(...a);

function emit(obj) {
  writeSync(1, JSON.stringify(obj) + '\n');
}

let finished = false;
function finish(code, fatal) {
  if (finished) return;
  finished = true;
  if (fatal) emit({ event: 'fatal', ...fatal });
  process.exit(code);
}

function errText(e) {
  if (e === undefined || e === null) return String(e);
  if (typeof e === 'string') return e;
  if (e.error && typeof e.error === 'string') return e.error;
  return e.message || String(e);
}

process.on('uncaughtException', (e) => {
  console.error(e);
  finish(1, { error: 'uncaught_exception', message: errText(e) });
});
process.on('unhandledRejection', (e) => {
  console.error(e);
  finish(1, { error: 'unhandled_rejection', message: errText(e) });
});

let opts;
try {
  const { values } = parseArgs({
    strict: true,
    options: {
      url: { type: 'string' },
      realm: { type: 'string', default: 'realm1' },
      serializer: { type: 'string', default: 'json' },
      authmethods: { type: 'string', default: 'anonymous' },
      authid: { type: 'string' },
      secret: { type: 'string' },
      actions: { type: 'string', default: '[]' },
      'timeout-ms': { type: 'string', default: '10000' },
    },
  });
  opts = {
    url: values.url,
    realm: values.realm,
    serializer: values.serializer,
    authmethods: values.authmethods.split(',').filter(Boolean),
    authid: values.authid,
    secret: values.secret,
    actions: JSON.parse(values.actions),
    timeoutMs: Number(values['timeout-ms']),
  };
  if (!opts.url || !/^wss?:\/\//.test(opts.url)) throw new Error('--url ws://HOST:PORT/PATH is required');
  if (!['json', 'msgpack', 'cbor'].includes(opts.serializer)) throw new Error('--serializer must be json, msgpack or cbor');
  if (!Array.isArray(opts.actions)) throw new Error('--actions must be a JSON array');
  for (const a of opts.actions) {
    if (!Array.isArray(a) || !['subscribe', 'publish', 'call', 'register'].includes(a[0]) || typeof a[1] !== 'string') {
      throw new Error(`bad action ${JSON.stringify(a)}`);
    }
  }
  if (!Number.isInteger(opts.timeoutMs) || opts.timeoutMs <= 0) throw new Error('--timeout-ms must be a positive integer');
} catch (e) {
  emit({ event: 'fatal', error: 'usage', message: errText(e) });
  process.exit(2);
}

setTimeout(() => finish(3, { error: 'timeout', message: `no end within ${opts.timeoutMs} ms` }), opts.timeoutMs);

// autobahn-js 26 uses the global WebSocket; node 20 has none that works (see client.mjs).
if (!(typeof globalThis.WebSocket === 'function' && Number(process.versions.node.split('.')[0]) >= 22)) {
  globalThis.WebSocket = require('ws');
}
const autobahn = require('autobahn');

const serializers = {
  json: () => new autobahn.serializer.JSONSerializer(),
  msgpack: () => new autobahn.serializer.MsgpackSerializer(),
  cbor: () => new autobahn.serializer.CBORSerializer(),
};

function onchallenge(session, method, extra) {
  emit({ event: 'challenge', method, extra_keys: Object.keys(extra || {}).sort() });
  if (method === 'ticket') return opts.secret;
  if (method === 'wampcra') {
    let key = opts.secret;
    if (extra.salt) key = autobahn.auth_cra.derive_key(opts.secret, extra.salt, extra.iterations, extra.keylen);
    return autobahn.auth_cra.sign(key, extra.challenge);
  }
  throw new Error(`no answer for a ${method} challenge`);
}

const connection = new autobahn.Connection({
  url: opts.url,
  realm: opts.realm,
  serializers: [serializers[opts.serializer]()],
  authmethods: opts.authmethods,
  authid: opts.authid,
  onchallenge,
  max_retries: 0,
  retry_if_unreachable: false,
  use_es6_promises: true,
});

let joined = false;
let leaving = false;

connection.onclose = (reason, details) => {
  details = details || {};
  if (reason === 'unreachable' || reason === 'unsupported') {
    finish(1, { error: reason, message: `could not connect to ${opts.url}` });
    return true;
  }
  emit({ event: 'closed', reason, wamp_reason: details.reason ?? null, message: details.message ?? null, joined });
  // refused at join (ABORT), or our own clean leave
  const expected = joined ? leaving && reason === 'closed' : details.reason !== undefined && details.reason !== null;
  finish(expected ? 0 : 1, expected ? undefined : { error: 'unexpected_close', message: `${reason} ${details.reason ?? ''}` });
  return true;
};

connection.onopen = async (session, details) => {
  joined = true;
  details = details || {};
  emit({
    event: 'joined',
    session: session.id,
    authid: details.authid ?? null,
    authrole: details.authrole ?? null,
    authmethod: details.authmethod ?? null,
    authprovider: details.authprovider ?? null,
  });
  for (const [op, uri, args = []] of opts.actions) {
    try {
      let value = null;
      if (op === 'subscribe') value = (await session.subscribe(uri, () => {})).id;
      else if (op === 'publish') value = (await session.publish(uri, args, {}, { acknowledge: true })).id;
      else if (op === 'call') value = (await session.call(uri, args)).valueOf();
      else if (op === 'register') value = (await session.register(uri, (a) => a)).id;
      emit({ event: 'action', op, uri, ok: true, value });
    } catch (e) {
      emit({ event: 'action', op, uri, ok: false, error: errText(e), args: (e && e.args) || [] });
    }
  }
  leaving = true;
  connection.close();
};

connection.open();
