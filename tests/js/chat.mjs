#!/usr/bin/env node
// A scriptable set of autobahn-js sessions, driven one command at a time.
//
// The test writes one JSON command per line on stdin; every command names a
// session ("as") opened earlier with "open".  Each command is answered by one
// JSON line on stdout carrying the command's "id"; events and unexpected
// closes arrive as their own lines.  Nothing else goes to stdout (autobahn-js
// logging is sent to stderr).
//
// Usage:
//   node chat.mjs --url ws://127.0.0.1:8080/ws [--realm realm1]
//        [--serializer json|msgpack|cbor] [--timeout-ms 20000]
//
// Commands (stdin)                                   answers (stdout)
//   {"id":1,"op":"open","as":"alice","authid":"alice"} {"id":1,"ok":true,"session":N,"authid":"alice","authrole":...}
//   {"id":2,"op":"subscribe","as":"bob","topic":T}     {"id":2,"ok":true,"subscription":N}
//   {"id":3,"op":"publish","as":"alice","topic":T,"args":[..],"kwargs":{..},"options":{"acknowledge":true}}
//                                                      {"id":3,"ok":true,"publication":N|null}
//   {"id":4,"op":"call","as":"bob","procedure":P,"args":[..],"kwargs":{..}}
//                                                      {"id":4,"ok":true,"args":[..],"kwargs":{..}}
//   {"id":5,"op":"unsubscribe","as":"bob","topic":T}   {"id":5,"ok":true}
//   {"id":6,"op":"close","as":"bob"}                   {"id":6,"ok":true,"reason":"closed","wamp_reason":...}
//   {"id":7,"op":"exit"}                               closes every open session, exits 0
// A failed command answers {"id":..,"ok":false,"error":URI,"args":[..],"kwargs":{..}}.
//
// Unsolicited lines:
//   {"event":"received","as":"bob","topic":T,"publication":N,"args":[..],"kwargs":{..}}
//   {"event":"closed","as":"bob","reason":"lost"|"closed"|...,"wamp_reason":...,"message":...}
//   {"event":"fatal","error":...,"message":...}   (then exit 1; 3 on the watchdog)
//
// Stdin closing counts as "exit".  The watchdog (--timeout-ms, from the last
// command) makes sure a forgotten process never hangs around.

import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

console.log = (...a) => console.error(...a);
console.info = (...a) => console.error(...a);

function emit(obj) {
  writeSync(1, JSON.stringify(obj) + '\n');
}

let exiting = false;
function die(code, error, message) {
  if (exiting) return;
  exiting = true;
  emit({ event: 'fatal', error, message: message ?? null });
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
  die(1, 'uncaught_exception', errText(e));
});
process.on('unhandledRejection', (e) => {
  console.error(e);
  die(1, 'unhandled_rejection', errText(e));
});

let opts;
try {
  const { values } = parseArgs({
    strict: true,
    options: {
      url: { type: 'string' },
      realm: { type: 'string', default: 'realm1' },
      serializer: { type: 'string', default: 'json' },
      'timeout-ms': { type: 'string', default: '20000' },
    },
  });
  opts = { url: values.url, realm: values.realm, serializer: values.serializer, timeoutMs: Number(values['timeout-ms']) };
  if (!opts.url || !/^wss?:\/\//.test(opts.url)) throw new Error('--url ws://HOST:PORT/PATH is required');
  if (!['json', 'msgpack', 'cbor'].includes(opts.serializer)) throw new Error('--serializer must be json, msgpack or cbor');
  if (!Number.isInteger(opts.timeoutMs) || opts.timeoutMs <= 0) throw new Error('--timeout-ms must be a positive integer');
} catch (e) {
  emit({ event: 'fatal', error: 'usage', message: errText(e) });
  process.exit(2);
}

let watchdog = null;
function armWatchdog() {
  if (watchdog) clearTimeout(watchdog);
  watchdog = setTimeout(() => die(3, 'timeout', `no command within ${opts.timeoutMs} ms`), opts.timeoutMs);
}
armWatchdog();

// autobahn-js 26 uses the global WebSocket: node >= 22 has one, node 20 needs `ws`.
if (typeof globalThis.WebSocket !== 'function' || Number(process.versions.node.split('.')[0]) < 22) {
  globalThis.WebSocket = require('ws');
}
const autobahn = require('autobahn');

const SERIALIZERS = {
  json: () => new autobahn.serializer.JSONSerializer(),
  msgpack: () => new autobahn.serializer.MsgpackSerializer(),
  cbor: () => new autobahn.serializer.CBORSerializer(),
};

// name -> {connection, session, subscriptions: Map(topic -> Subscription), closed: Promise, closing}
const sessions = new Map();

function need(cmd) {
  const entry = sessions.get(cmd.as);
  if (!entry || !entry.session) throw { error: 'test.no_such_session', args: [String(cmd.as)] };
  return entry;
}

function errorAnswer(e) {
  if (e instanceof autobahn.Error || (e && typeof e.error === 'string')) {
    return { error: e.error, args: e.args || [], kwargs: e.kwargs || {} };
  }
  return { error: 'test.client_error', args: [errText(e)], kwargs: {} };
}

function resultAnswer(res) {
  if (res instanceof autobahn.Result) return { args: res.args || [], kwargs: res.kwargs || {} };
  return { args: res === undefined || res === null ? [] : [res], kwargs: {} };
}

function open(cmd) {
  if (sessions.has(cmd.as)) throw { error: 'test.session_exists', args: [cmd.as] };
  return new Promise((resolve, reject) => {
    const options = {
      url: opts.url,
      realm: cmd.realm || opts.realm,
      serializers: [SERIALIZERS[opts.serializer]()],
      max_retries: 0,
      retry_if_unreachable: false,
      use_es6_promises: true,
      on_user_error: (e, msg) => console.error('[autobahn user error]', msg || '', e),
      on_internal_error: (e, msg) => console.error('[autobahn internal error]', msg || '', e),
    };
    if (cmd.authid) options.authid = cmd.authid;
    const connection = new autobahn.Connection(options);
    let closedResolve;
    const entry = {
      connection,
      session: null,
      subscriptions: new Map(),
      closing: false,
      closed: new Promise((r) => (closedResolve = r)),
    };
    sessions.set(cmd.as, entry);
    connection.onopen = (session, details) => {
      entry.session = session;
      details = details || {};
      resolve({ session: session.id, authid: details.authid ?? null, authrole: details.authrole ?? null });
    };
    connection.onclose = (reason, details) => {
      details = details || {};
      const info = { reason, wamp_reason: details.reason ?? null, message: details.message ?? null };
      if (!entry.session) {
        sessions.delete(cmd.as);
        reject({ error: details.reason || 'test.not_joined', args: [reason, details.message ?? null] });
      } else if (!entry.closing) {
        emit({ event: 'closed', as: cmd.as, ...info });
      }
      entry.session = null;
      closedResolve(info);
      return true; // never reconnect
    };
    connection.open();
  });
}

async function subscribe(cmd) {
  const entry = need(cmd);
  const sub = await entry.session.subscribe(
    cmd.topic,
    (args, kwargs, details) => {
      emit({
        event: 'received',
        as: cmd.as,
        topic: details.topic || cmd.topic,
        publication: details.publication,
        publisher: details.publisher ?? null,
        args: args || [],
        kwargs: kwargs || {},
      });
    },
    cmd.options,
  );
  entry.subscriptions.set(cmd.topic, sub);
  return { subscription: sub.id };
}

async function unsubscribe(cmd) {
  const entry = need(cmd);
  const sub = entry.subscriptions.get(cmd.topic);
  if (!sub) throw { error: 'test.not_subscribed', args: [cmd.topic] };
  await entry.session.unsubscribe(sub);
  entry.subscriptions.delete(cmd.topic);
  return {};
}

async function publish(cmd) {
  const entry = need(cmd);
  const options = cmd.options || {};
  const pub = await entry.session.publish(cmd.topic, cmd.args || [], cmd.kwargs || {}, options);
  return { publication: pub ? pub.id : null };
}

async function call(cmd) {
  const entry = need(cmd);
  return resultAnswer(await entry.session.call(cmd.procedure, cmd.args || [], cmd.kwargs || {}, cmd.options));
}

async function close(cmd) {
  const entry = sessions.get(cmd.as);
  if (!entry) throw { error: 'test.no_such_session', args: [String(cmd.as)] };
  if (entry.session && !entry.closing) {
    entry.closing = true;
    entry.connection.close();
  }
  const info = await entry.closed;
  sessions.delete(cmd.as);
  return info;
}

async function exitAll() {
  await Promise.all([...sessions.keys()].map((name) => close({ as: name })));
  if (watchdog) clearTimeout(watchdog);
  process.exit(0);
}

const OPS = { open, subscribe, unsubscribe, publish, call, close };

// Commands run one after another, in the order they were written.
let queue = Promise.resolve();

function handle(line) {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    die(2, 'bad_command', `not JSON: ${line}`);
    return;
  }
  armWatchdog();
  queue = queue.then(async () => {
    if (cmd.op === 'exit') return exitAll();
    const op = OPS[cmd.op];
    if (!op) {
      emit({ id: cmd.id ?? null, ok: false, error: 'test.unknown_op', args: [String(cmd.op)], kwargs: {} });
      return;
    }
    try {
      emit({ id: cmd.id ?? null, ok: true, ...(await op(cmd)) });
    } catch (e) {
      emit({ id: cmd.id ?? null, ok: false, ...errorAnswer(e) });
    }
  });
}

const rl = createInterface({ input: process.stdin });
rl.on('line', handle);
rl.on('close', () => {
  queue = queue.then(exitAll);
});
