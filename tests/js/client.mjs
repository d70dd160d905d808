#!/usr/bin/env node
// autobahn-js interop client for the wampd test suite.
//
// Connects to a WAMP router with the real `autobahn` npm package, runs one
// scenario and prints one JSON object per line on stdout for each
// observation.  Exit status: 0 = scenario finished, 1 = failure,
// 2 = bad command line, 3 = global timeout.  Every non-zero exit is preceded
// by a {"event":"fatal",...} line.  Anything else autobahn-js logs goes to
// stderr, so stdout stays machine-readable.
//
// Usage:
//   node client.mjs --url ws://127.0.0.1:8080/ws --realm realm1 \
//        --serializer json|msgpack|cbor --scenario pubsub-rpc|callee|caller \
//        [--timeout-ms 10000] [--stay-ms N] [--procedure URI] [--args JSON]
//        [--kwargs JSON] [--websocket auto|native|ws] [--config JSON]

import { writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// autobahn-js (and its error helper) print via console.log; keep stdout for
// our JSON lines only.
console.log = (...a) => console.error(...a);
console.info = (...a) => console.error(...a);

const EXIT_OK = 0;
const EXIT_FAIL = 1;
const EXIT_USAGE = 2;
const EXIT_TIMEOUT = 3;

const SCENARIOS = ['pubsub-rpc', 'callee', 'caller'];
const SERIALIZERS = ['json', 'msgpack', 'cbor'];

// ---------------------------------------------------------------- output

function jsonSafe(_key, value) {
  if (typeof value === 'bigint') {
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  }
  if (value instanceof Uint8Array) {
    return { $bytes: Buffer.from(value).toString('base64') };
  }
  if (value && value.type === 'Buffer' && Array.isArray(value.data)) {
    // Buffer.prototype.toJSON has already run
    return { $bytes: Buffer.from(value.data).toString('base64') };
  }
  return value;
}

function emit(obj) {
  writeSync(1, JSON.stringify(obj, jsonSafe) + '\n');
}

let finished = false;

function finish(code, fatal) {
  if (finished) return;
  finished = true;
  if (fatal) emit({ event: 'fatal', ...fatal });
  process.exit(code);
}

function fail(error, message, extra = {}) {
  finish(EXIT_FAIL, { error, message: message ?? null, stage, ...extra });
}

function errText(e) {
  if (e === undefined || e === null) return String(e);
  if (typeof e === 'string') return e;
  if (e.error && typeof e.error === 'string') return e.error; // autobahn.Error
  return e.message || String(e);
}

process.on('uncaughtException', (e) => {
  console.error(e);
  fail('uncaught_exception', errText(e));
});
process.on('unhandledRejection', (e) => {
  console.error(e);
  fail('unhandled_rejection', errText(e));
});

// ---------------------------------------------------------------- arguments

let opts;
try {
  const { values } = parseArgs({
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: 'string' },
      url: { type: 'string' },
      realm: { type: 'string' },
      serializer: { type: 'string' },
      scenario: { type: 'string' },
      'timeout-ms': { type: 'string' },
      'stay-ms': { type: 'string' },
      procedure: { type: 'string' },
      args: { type: 'string' },
      kwargs: { type: 'string' },
      websocket: { type: 'string' },
    },
  });
  // --config '{"url": ..., "scenario": ..., "args": [...]}' supplies defaults;
  // explicit flags win.  Keys may use dashes or underscores.
  const cfg = {};
  if (values.config !== undefined) {
    const parsed = JSON.parse(values.config);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new Error('--config must be a JSON object');
    }
    for (const [k, v] of Object.entries(parsed)) cfg[k.replace(/_/g, '-')] = v;
  }
  const pick = (name, dflt) =>
    values[name] !== undefined ? values[name] : cfg[name] !== undefined ? cfg[name] : dflt;
  const jsonOpt = (name, dflt) => {
    const v = pick(name, undefined);
    if (v === undefined) return dflt;
    return typeof v === 'string' ? JSON.parse(v) : v;
  };
  const intOpt = (name, dflt) => {
    const v = pick(name, undefined);
    if (v === undefined || v === null) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`);
    return n;
  };

  opts = {
    url: pick('url', undefined),
    realm: pick('realm', 'realm1'),
    serializer: pick('serializer', 'json'),
    scenario: pick('scenario', undefined),
    timeoutMs: intOpt('timeout-ms', 10000),
    stayMs: intOpt('stay-ms', null),
    procedure: pick('procedure', undefined),
    args: jsonOpt('args', []),
    kwargs: jsonOpt('kwargs', null),
    websocket: pick('websocket', 'auto'),
  };
  if (!opts.url || !/^wss?:\/\//.test(opts.url)) throw new Error('--url ws://HOST:PORT/PATH is required');
  if (!opts.realm) throw new Error('--realm must not be empty');
  if (!SERIALIZERS.includes(opts.serializer)) {
    throw new Error(`--serializer must be one of ${SERIALIZERS.join(', ')}`);
  }
  if (!SCENARIOS.includes(opts.scenario)) throw new Error(`--scenario must be one of ${SCENARIOS.join(', ')}`);
  if (!['auto', 'native', 'ws'].includes(opts.websocket)) throw new Error('--websocket must be auto, native or ws');
  if (!Array.isArray(opts.args)) throw new Error('--args must be a JSON array');
  if (opts.kwargs !== null && (typeof opts.kwargs !== 'object' || Array.isArray(opts.kwargs))) {
    throw new Error('--kwargs must be a JSON object');
  }
  if (opts.scenario === 'caller' && !opts.procedure) throw new Error('--procedure is required for the caller scenario');
} catch (e) {
  emit({ event: 'fatal', error: 'usage', message: errText(e) });
  process.exit(EXIT_USAGE);
}

// ---------------------------------------------------------------- setup

let stage = 'setup';

// Global watchdog: the script must never hang.  The callee scenario disarms
// it once ready (it is meant to stay) and re-arms it when leaving.
let watchdog = null;
function armWatchdog(ms) {
  if (watchdog) clearTimeout(watchdog);
  watchdog = setTimeout(() => {
    finish(EXIT_TIMEOUT, { error: 'timeout', message: `no progress within ${ms} ms`, stage });
  }, ms);
}
function disarmWatchdog() {
  if (watchdog) clearTimeout(watchdog);
  watchdog = null;
}
armWatchdog(opts.timeoutMs);

// autobahn-js 26 uses the global WebSocket (built into node >= 22; node 20
// only has it behind --experimental-websocket, and that one never fires
// `close` after a failed connect, so autobahn-js would hang).  "auto" uses the
// native one on node >= 22 and the `ws` package otherwise.  Either way wrap
// it so the transport-level error text (e.g. ECONNREFUSED) can be reported:
// autobahn-js itself drops it.
let wsImpl;
let lastTransportError = null;
{
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  const nativeOk = typeof globalThis.WebSocket === 'function' && nodeMajor >= 22;
  let Base;
  if (opts.websocket === 'native' || (opts.websocket === 'auto' && nativeOk)) {
    if (typeof globalThis.WebSocket !== 'function') {
      finish(EXIT_FAIL, { error: 'no_websocket', message: 'this node has no global WebSocket', stage });
    }
    Base = globalThis.WebSocket;
    wsImpl = 'native';
  } else {
    Base = require('ws');
    wsImpl = 'ws';
  }
  class TrackedWebSocket extends Base {
    constructor(...a) {
      super(...a);
      this.addEventListener('error', (ev) => {
        const e = ev && (ev.error || ev);
        lastTransportError = (e && (e.message || (e.cause && e.cause.message))) || 'websocket error';
      });
    }
  }
  globalThis.WebSocket = TrackedWebSocket;
}

const autobahn = require('autobahn');

const serializer = {
  json: () => new autobahn.serializer.JSONSerializer(),
  msgpack: () => new autobahn.serializer.MsgpackSerializer(),
  cbor: () => new autobahn.serializer.CBORSerializer(),
}[opts.serializer]();

const connection = new autobahn.Connection({
  url: opts.url,
  realm: opts.realm,
  serializers: [serializer], // => subprotocol list is exactly ["wamp.2.<serializer>"]
  max_retries: 0,
  retry_if_unreachable: false,
  use_es6_promises: true,
  on_user_error: (e, msg) => console.error('[autobahn user error]', msg || '', e),
  on_internal_error: (e, msg) => {
    console.error('[autobahn internal error]', msg || '', e);
    emit({ event: 'internal_error', message: `${msg ? msg + ' ' : ''}${errText(e)}` });
  },
});

let session = null;
let closing = false; // we started the close ourselves

function leave() {
  if (closing || finished) return;
  closing = true;
  stage = 'leaving';
  armWatchdog(Math.min(opts.timeoutMs, 5000));
  try {
    connection.close();
  } catch (e) {
    fail('close_failed', errText(e));
  }
}

connection.onclose = (reason, details) => {
  details = details || {};
  if (reason === 'unreachable') {
    fail('unreachable', lastTransportError || 'could not connect to ' + opts.url);
    return true;
  }
  if (reason === 'unsupported') {
    fail('unsupported', 'could not create a WebSocket transport');
    return true;
  }
  emit({ event: 'closed', reason, wamp_reason: details.reason ?? null, message: details.message || null });
  if (!session) {
    // closed before WELCOME: ABORT, subprotocol not accepted, ...
    fail(details.reason || 'closed_before_join', details.message || lastTransportError || reason);
  } else if (!closing) {
    fail('connection_' + reason, details.reason || lastTransportError || 'router closed the session');
  } else if (reason !== 'closed') {
    fail('unclean_close', `connection ${reason}`);
  } else {
    finish(EXIT_OK);
  }
  return true; // never retry
};

connection.onopen = (s, details) => {
  session = s;
  details = details || {};
  stage = 'joined';
  emit({
    event: 'joined',
    session: s.id,
    realm: s.realm,
    authid: details.authid ?? null,
    authrole: details.authrole ?? null,
    authmethod: details.authmethod ?? null,
    protocol: (details.transport && details.transport.protocol) || null,
    websocket: wsImpl,
    roles: Object.keys(details.roles || {}).sort(),
  });
  scenarios[opts.scenario](s).catch((e) => {
    if (!finished) {
      console.error(e);
      fail(e instanceof autobahn.Error ? e.error : 'scenario_failed', errText(e));
    }
  });
};

// ---------------------------------------------------------------- helpers

function resultObservation(res) {
  if (res instanceof autobahn.Result) {
    return { event: 'result', args: res.args, kwargs: res.kwargs };
  }
  return { event: 'result', value: res === undefined ? null : res };
}

function errorObservation(e) {
  if (e instanceof autobahn.Error) {
    return { event: 'error', error: e.error, args: e.args, kwargs: e.kwargs };
  }
  throw e;
}

// ---------------------------------------------------------------- scenarios

const scenarios = {
  async 'pubsub-rpc'(s) {
    const topic = 'com.example.topic';

    let gotEvent;
    const eventReceived = new Promise((resolve) => (gotEvent = resolve));

    stage = 'subscribe';
    const sub = await s.subscribe(topic, (args, kwargs, details) => {
      emit({
        event: 'received',
        topic: details.topic,
        publication: details.publication,
        args,
        kwargs,
      });
      gotEvent();
    });
    emit({ event: 'subscribed', subscription: sub.id });

    stage = 'register';
    const reg = await s.register('com.example.add2', (args) => args[0] + args[1]);
    emit({ event: 'registered', registration: reg.id });

    stage = 'publish';
    const pub = await s.publish(topic, [1, 'two'], { x: 3 }, { exclude_me: false, acknowledge: true });
    emit({ event: 'published', publication: pub.id });

    stage = 'wait-event';
    await eventReceived;

    stage = 'call';
    emit(resultObservation(await s.call('com.example.add2', [2, 3])));

    stage = 'call-nonexistent';
    try {
      const res = await s.call('com.example.nonexistent', []);
      fail('unexpected_result', 'calling com.example.nonexistent succeeded', { result: res });
      return;
    } catch (e) {
      emit(errorObservation(e));
    }

    stage = 'unsubscribe';
    await s.unsubscribe(sub);
    emit({ event: 'unsubscribed', subscription: sub.id });

    stage = 'unregister';
    await s.unregister(reg);
    emit({ event: 'unregistered', registration: reg.id });

    leave();
  },

  async callee(s) {
    stage = 'register';
    const reg = await s.register('com.example.js.upper', (args, kwargs, details) => {
      const value = args[0];
      emit({ event: 'invoked', procedure: details.procedure, args, kwargs });
      if (typeof value !== 'string') {
        throw new autobahn.Error('com.example.error.bad_argument', ['expected a string']);
      }
      if (value === '') {
        throw new autobahn.Error('com.example.error.empty', ['empty']);
      }
      return value.toUpperCase();
    });

    stage = 'subscribe';
    const sub = await s.subscribe('com.example.js.ping', (args, kwargs) => {
      emit({ event: 'pinged', args, kwargs });
      const hasKw = kwargs && Object.keys(kwargs).length > 0;
      s.publish('com.example.js.pong', args, hasKw ? kwargs : undefined);
    });

    stage = 'ready';
    disarmWatchdog();
    emit({ event: 'ready', registration: reg.id, subscription: sub.id });

    const stop = () => leave();
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    if (opts.stayMs !== null) setTimeout(stop, opts.stayMs);
    else setInterval(() => {}, 1 << 30); // keep the event loop alive until signalled
  },

  async caller(s) {
    stage = 'call';
    try {
      emit(resultObservation(await s.call(opts.procedure, opts.args, opts.kwargs || undefined)));
    } catch (e) {
      emit(errorObservation(e));
    }
    leave();
  },
};

// ---------------------------------------------------------------- go

stage = 'connect';
connection.open();
