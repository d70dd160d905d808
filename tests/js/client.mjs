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
//        --serializer json|msgpack|cbor --scenario SCENARIO \
//        [--timeout-ms 10000] [--stay-ms N] [--procedure URI] [--args JSON]
//        [--kwargs JSON] [--websocket auto|native|ws] [--config JSON]
//        [--peer-serializer json|msgpack|cbor] [--promises es6|when]
//        [--cancel-modes skip,kill,killnowait] [--cancel-api raw|stock]
//
// Scenarios:
//   pubsub-rpc      one session: subscribe, register, publish, call, clean up
//   callee          stays joined serving com.example.js.upper until SIGTERM
//   caller          calls --procedure once
//   pattern-pubsub  prefix/wildcard/exact subscriptions; a second "peer"
//                   session publishes to a fixed list of topics
//   progress        peer callees send progressive results; this session
//                   calls them with and without receive_progress (when.js
//                   promises: autobahn-js reports progress only through a
//                   deferred's notify, which ES6 promises lack).  One callee
//                   announces call_canceling, one does not (stock autobahn-js)
//   cancel          two peer callees whose endpoints never answer, one as
//                   autobahn-js announces itself (no call_canceling), one that
//                   also announces call_canceling and answers INTERRUPT; this
//                   session calls each and cancels in every --cancel-modes mode
//
// The peer sessions of the last three use --peer-serializer (default: the
// same as --serializer), so one run can cross serializers.  Observations
// whose name starts with "wire_" show a message's fields as they crossed the
// wire (read in the serializer, before autobahn-js interprets them).

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

const SCENARIOS = ['pubsub-rpc', 'callee', 'caller', 'pattern-pubsub', 'progress', 'cancel'];
const SERIALIZERS = ['json', 'msgpack', 'cbor'];
const CANCEL_MODES = ['skip', 'kill', 'killnowait'];

// WAMP message type codes used below
const MSG = {
  HELLO: 1,
  EVENT: 36,
  CANCEL: 49,
  RESULT: 50,
  INVOCATION: 68,
  INTERRUPT: 69,
};

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
      'peer-serializer': { type: 'string' },
      promises: { type: 'string' },
      'cancel-modes': { type: 'string' },
      'cancel-api': { type: 'string' },
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
    peerSerializer: pick('peer-serializer', undefined),
    // autobahn-js only reports progressive results through a deferred's
    // notify(): ES6 promises have none, when.js deferreds (its default) do.
    promises: pick('promises', undefined),
    cancelModes: String(pick('cancel-modes', CANCEL_MODES.join(',')))
      .split(',')
      .map((m) => m.trim())
      .filter(Boolean),
    cancelApi: pick('cancel-api', 'raw'),
  };
  if (opts.peerSerializer === undefined) opts.peerSerializer = opts.serializer;
  if (opts.promises === undefined) opts.promises = opts.scenario === 'progress' ? 'when' : 'es6';
  if (!opts.url || !/^wss?:\/\//.test(opts.url)) throw new Error('--url ws://HOST:PORT/PATH is required');
  if (!opts.realm) throw new Error('--realm must not be empty');
  if (!SERIALIZERS.includes(opts.serializer)) {
    throw new Error(`--serializer must be one of ${SERIALIZERS.join(', ')}`);
  }
  if (!SCENARIOS.includes(opts.scenario)) throw new Error(`--scenario must be one of ${SCENARIOS.join(', ')}`);
  if (!SERIALIZERS.includes(opts.peerSerializer)) {
    throw new Error(`--peer-serializer must be one of ${SERIALIZERS.join(', ')}`);
  }
  if (!['es6', 'when'].includes(opts.promises)) throw new Error('--promises must be es6 or when');
  if (opts.scenario === 'progress' && opts.promises !== 'when') {
    throw new Error('the progress scenario needs --promises when');
  }
  if (!opts.cancelModes.length || !opts.cancelModes.every((m) => CANCEL_MODES.includes(m))) {
    throw new Error(`--cancel-modes must be a comma-separated list of ${CANCEL_MODES.join(', ')}`);
  }
  if (!['raw', 'stock'].includes(opts.cancelApi)) throw new Error('--cancel-api must be raw or stock');
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
let lastLocalClose = null; // the last close() autobahn-js itself asked for (e.g. a protocol violation)
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
    close(code, reason) {
      if (code !== undefined && code !== 1000) lastLocalClose = `${code}${reason ? ' ' + reason : ''}`;
      return super.close(code, reason);
    }
  }
  globalThis.WebSocket = TrackedWebSocket;
}

const autobahn = require('autobahn');

const SERIALIZER_FACTORIES = {
  json: () => new autobahn.serializer.JSONSerializer(),
  msgpack: () => new autobahn.serializer.MsgpackSerializer(),
  cbor: () => new autobahn.serializer.CBORSerializer(),
};

// A serializer with a tap: `tap.current` is the last message received (the
// one autobahn-js is processing right now: handlers and endpoints run
// synchronously inside that processing), and `tap.listeners` see every
// received message.  With announceCallCanceling the HELLO also announces
// roles.callee.features.call_canceling, which autobahn-js 26 leaves out.
function makeSerializer(name, { announceCallCanceling = false } = {}) {
  const ser = SERIALIZER_FACTORIES[name]();
  const tap = { current: null, listeners: [] };
  const serialize = ser.serialize.bind(ser);
  const unserialize = ser.unserialize.bind(ser);
  ser.serialize = (msg) => {
    if (announceCallCanceling && Array.isArray(msg) && msg[0] === MSG.HELLO) {
      const details = msg[2] || {};
      const roles = details.roles || {};
      const callee = roles.callee || {};
      msg = [
        msg[0],
        msg[1],
        {
          ...details,
          roles: { ...roles, callee: { ...callee, features: { ...(callee.features || {}), call_canceling: true } } },
        },
        ...msg.slice(3),
      ];
    }
    return serialize(msg);
  };
  ser.unserialize = (payload) => {
    const msg = unserialize(payload);
    tap.current = msg;
    for (const listener of tap.listeners) listener(msg);
    return msg;
  };
  ser.tap = tap;
  return ser;
}

function connectionOptions(ser, promises) {
  const o = {
    url: opts.url,
    realm: opts.realm,
    serializers: [ser], // => subprotocol list is exactly ["wamp.2.<serializer>"]
    max_retries: 0,
    retry_if_unreachable: false,
    on_user_error: (e, msg) => console.error('[autobahn user error]', msg || '', e),
    on_internal_error: (e, msg) => {
      console.error('[autobahn internal error]', msg || '', e);
      emit({ event: 'internal_error', message: `${msg ? msg + ' ' : ''}${errText(e)}` });
    },
  };
  if (promises === 'es6') o.use_es6_promises = true; // else autobahn-js picks when.js
  return o;
}

const serializer = makeSerializer(opts.serializer);
const connection = new autobahn.Connection(connectionOptions(serializer, opts.promises));

let session = null;
let closing = false; // we started the close ourselves

function unexpectedCloseText() {
  if (lastLocalClose) return `autobahn-js closed the transport: ${lastLocalClose}`;
  return lastTransportError || 'router closed the session';
}

// Further sessions a scenario opens in this process (see openPeer).
const peers = [];

async function leave() {
  if (closing || finished) return;
  closing = true;
  stage = 'leaving';
  armWatchdog(Math.min(opts.timeoutMs, 5000));
  try {
    for (const peer of peers) {
      if (peer.session && !peer.closing) {
        peer.closing = true;
        peer.connection.close();
      }
    }
    await Promise.all(peers.map((peer) => peer.closed));
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
    fail('connection_' + reason, details.reason || unexpectedCloseText());
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

// Open one more session on the same router and realm ("peer"), with its own
// serializer (default --peer-serializer).  Resolves to
// {label, session, serializer, connection, closed} once joined.  A peer that
// loses its session before leave() ends the run with a fatal line.
function openPeer(label, { serializerName = opts.peerSerializer, announceCallCanceling = false, promises = 'es6' } = {}) {
  return new Promise((resolve) => {
    const ser = makeSerializer(serializerName, { announceCallCanceling });
    const conn = new autobahn.Connection(connectionOptions(ser, promises));
    const peer = { label, connection: conn, serializer: ser, session: null, closing: false };
    peer.closed = new Promise((r) => (peer.markClosed = r));
    conn.onopen = (s, details) => {
      peer.session = s;
      details = details || {};
      emit({
        event: 'peer_joined',
        peer: label,
        session: s.id,
        protocol: (details.transport && details.transport.protocol) || null,
      });
      resolve(peer);
    };
    conn.onclose = (reason, details) => {
      details = details || {};
      emit({
        event: 'peer_closed',
        peer: label,
        reason,
        wamp_reason: details.reason ?? null,
        message: details.message || null,
      });
      peer.markClosed();
      if (!peer.session) {
        fail(`peer_${label}_${details.reason || reason}`, details.message || lastTransportError || reason);
      } else if (!peer.closing) {
        fail(`peer_${label}_connection_${reason}`, details.reason || unexpectedCloseText());
      }
      return true; // never retry
    };
    peers.push(peer);
    conn.open();
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A call's outcome as autobahn-js reports it, as a plain object.
function outcomeOf(res) {
  if (res instanceof autobahn.Result) return { args: res.args, kwargs: res.kwargs };
  return { value: res === undefined ? null : res };
}

function errorFields(e) {
  if (e instanceof autobahn.Error) return { error: e.error, args: e.args, kwargs: e.kwargs };
  throw e;
}

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

  // Pattern-based subscriptions.  This session subscribes three times; the
  // peer publishes PATTERN_TOPICS in order, this session publishes twice
  // itself (exclude_me false, then default), then the peer publishes the
  // sentinel.  Events from one publisher arrive in order, so once the
  // sentinel is in, every event the router meant to send has arrived.
  async 'pattern-pubsub'(s) {
    const subs = [
      ['prefix', 'com.example.js', { match: 'prefix' }],
      ['wildcard', 'com.example..update', { match: 'wildcard' }],
      ['exact', 'com.example.js.update', undefined],
    ];
    const sentinel = 'com.example.js.zz.end';
    let gotSentinel;
    const sentinelReceived = new Promise((resolve) => (gotSentinel = resolve));

    stage = 'subscribe';
    for (const [name, topic, options] of subs) {
      const sub = await s.subscribe(
        topic,
        (args, kwargs, details, subscription) => {
          const raw = serializer.tap.current; // the EVENT being dispatched
          const wire = Array.isArray(raw) && raw[0] === MSG.EVENT ? raw : null;
          emit({
            event: 'received',
            sub: name,
            subscription: subscription.id,
            topic: details.topic,
            publication: details.publication,
            args,
            kwargs,
            wire_subscription: wire ? wire[1] : null,
            wire_details: wire ? wire[3] : null,
          });
          if (details.topic === sentinel) gotSentinel();
        },
        options,
      );
      emit({ event: 'subscribed', sub: name, topic, match: (options && options.match) || 'exact', subscription: sub.id });
    }

    stage = 'peer';
    const peer = await openPeer('publisher');

    const publish = async (who, session, topic, options) => {
      const pub = await session.publish(topic, [topic], undefined, { acknowledge: true, ...options });
      emit({ event: 'published', by: who, topic, publication: pub.id, options: options || {} });
    };

    stage = 'publish';
    for (const topic of [
      'com.example.js.a', // prefix
      'com.example.x.update', // wildcard
      'com.example.js.update', // prefix, wildcard and exact
      'com.example.jsx', // prefix: the spec's prefix is a string prefix
      'com.example.js', // prefix: the prefix itself matches
      'com.example.x.update.more', // none: wildcards match whole components, same count
      'com.example.update', // none
      'com.other.js.update', // none
    ]) {
      await publish('peer', peer.session, topic);
    }
    await publish('self', s, 'com.example.y.update', { exclude_me: false }); // wildcard
    await publish('self', s, 'com.example.js.self'); // prefix, but the publisher is excluded
    await publish('peer', peer.session, sentinel); // prefix

    stage = 'wait-events';
    await sentinelReceived;

    stage = 'unsubscribe';
    for (const sub of [...s.subscriptions].flat()) await s.unsubscribe(sub);
    emit({ event: 'unsubscribed' });
    leave();
  },

  // Progressive call results.  Two peer callees serve the same endpoint:
  // "cancelable" announces call_canceling too (the spec: a callee that
  // supports progressive results but not call canceling is treated as not
  // supporting progressive results), "plain" announces what autobahn-js 26
  // announces (progressive_call_results without call_canceling).  The
  // endpoint answers [n] with n progressive results ([i], {of: n}) when it
  // gets details.progress, then Result(['done n'], {count: n}), or an error
  // after the progress when args[1] is 'fail'.  INTERRUPTs are recorded.
  async progress(s) {
    const procedures = {
      cancelable: 'com.example.js.countdown',
      plain: 'com.example.js.countdown.plain',
    };

    for (const [label, announce] of [
      ['cancelable', true],
      ['plain', false],
    ]) {
      stage = `peer-${label}`;
      const callee = await openPeer(label, { announceCallCanceling: announce });
      callee.session._MESSAGE_MAP[MSG.INTERRUPT] = (msg) => {
        emit({ event: 'interrupted', callee: label, request: msg[1], options: msg[2] ?? null });
      };
      stage = `register-${label}`;
      const reg = await callee.session.register(procedures[label], async (args, kwargs, details) => {
        const raw = callee.serializer.tap.current; // the INVOCATION being dispatched
        emit({
          event: 'invoked',
          callee: label,
          args,
          can_progress: typeof details.progress === 'function',
          wire_details: Array.isArray(raw) && raw[0] === MSG.INVOCATION ? raw[3] : null,
        });
        const n = args[0];
        if (details.progress) {
          for (let i = 1; i <= n; i++) {
            details.progress([i], { of: n });
            await sleep(5); // keep the YIELDs apart (CBOR serializes asynchronously)
          }
        }
        if (args[1] === 'fail') throw new autobahn.Error('com.example.error.failed', ['after progress'], { at: n });
        return new autobahn.Result([`done ${n}`], { count: n });
      });
      emit({ event: 'registered', callee: label, registration: reg.id, announced_call_canceling: announce });
    }

    // every RESULT as it came over the wire, in order
    serializer.tap.listeners.push((msg) => {
      if (Array.isArray(msg) && msg[0] === MSG.RESULT) {
        emit({ event: 'wire_result', request: msg[1], details: msg[2], args: msg[3] ?? null, kwargs: msg[4] ?? null });
      }
    });

    const call = async (label, callee, args, options) => {
      const progress = [];
      emit({ event: 'call', label, callee, args, options: options || {} });
      const d = s.call(procedures[callee], args, undefined, options);
      try {
        const res = await new Promise((resolve, reject) =>
          // autobahn-js documents progress as the third argument of then()
          d.then(resolve, reject, (p) => {
            progress.push(outcomeOf(p));
            emit({ event: 'progress', label, ...outcomeOf(p) });
          }),
        );
        emit({ event: 'result', label, progress, ...outcomeOf(res) });
      } catch (e) {
        emit({ event: 'error', label, progress, ...errorFields(e) });
      }
    };

    stage = 'call';
    await call('progressive', 'cancelable', [3], { receive_progress: true });
    await call('no-progress', 'cancelable', [2]);
    await call('progressive-error', 'cancelable', [2, 'fail'], { receive_progress: true });
    await call('plain-callee', 'plain', [2], { receive_progress: true });

    leave();
  },

  // Call cancellation.  Two peer callees register a procedure whose endpoint
  // never answers by itself: "plain" announces what autobahn-js announces
  // (no call_canceling), "cancelable" also announces call_canceling.  Each
  // records every INTERRUPT (autobahn-js 26 has no INTERRUPT handler and
  // would fail the transport); "cancelable" answers one after ANSWER_MS
  // with ERROR wamp.error.canceled ['callee-interrupted', mode].  This
  // session calls each procedure and cancels it once per --cancel-modes
  // mode, with a raw CANCEL (--cancel-api raw) or autobahn-js's
  // promise.cancel({mode}) (--cancel-api stock).  At the end the callees
  // answer the invocations still open (late YIELDs, to be dropped by the
  // router), and a last call to each callee flushes anything still in flight.
  async cancel(s) {
    const ANSWER_MS = 200;
    const callees = {};

    for (const [label, announce] of [
      ['plain', false],
      ['cancelable', true],
    ]) {
      stage = `peer-${label}`;
      const peer = await openPeer(label, { announceCallCanceling: announce });
      const c = { peer, open: new Map(), interrupts: [], nextInvocation: null, answers: [] };
      callees[label] = c;
      const slow = `com.example.js.slow.${label}`;
      await peer.session.register(slow, (args) => {
        const raw = peer.serializer.tap.current; // the INVOCATION being dispatched
        const request = raw[1];
        emit({ event: 'invoked', callee: label, request, args });
        return new Promise((resolve, reject) => {
          c.open.set(request, { resolve, reject });
          if (c.nextInvocation) c.nextInvocation(request);
        });
      });
      await peer.session.register(`com.example.js.sync.${label}`, () => 'synced');
      // autobahn-js has no INTERRUPT handler: add one to its dispatch table
      peer.session._MESSAGE_MAP[MSG.INTERRUPT] = (msg) => {
        const [, request, options] = msg;
        emit({ event: 'interrupted', callee: label, request, options: options ?? null, open: c.open.has(request) });
        c.interrupts.push(request);
        const inv = c.open.get(request);
        if (!inv || !announce) return;
        c.open.delete(request);
        c.answers.push(
          sleep(ANSWER_MS).then(() => {
            emit({ event: 'callee_answered', callee: label, request });
            inv.reject(new autobahn.Error('wamp.error.canceled', ['callee-interrupted', (options && options.mode) ?? null]));
          }),
        );
      };
      emit({ event: 'callee_ready', callee: label, announced_call_canceling: announce });
    }

    for (const label of Object.keys(callees)) {
      const c = callees[label];
      for (const mode of opts.cancelModes) {
        stage = `cancel-${label}-${mode}`;
        const invoked = new Promise((resolve) => (c.nextInvocation = resolve));
        const before = new Set(Object.keys(s._call_reqs));
        const d = s.call(`com.example.js.slow.${label}`, [mode]);
        const request = Number(Object.keys(s._call_reqs).find((k) => !before.has(k)));
        const settled = d.then(
          (res) => ({ outcome: 'result', ...outcomeOf(res) }),
          (e) => ({ outcome: 'error', ...errorFields(e) }),
        );
        await invoked;
        c.nextInvocation = null;
        const interruptsBefore = c.interrupts.length;
        emit({ event: 'cancel_sent', callee: label, mode, api: opts.cancelApi, request });
        const t0 = performance.now();
        if (opts.cancelApi === 'stock') d.cancel({ mode });
        else s._send_wamp([MSG.CANCEL, request, { mode }]);
        const outcome = await settled;
        emit({ event: 'cancel_outcome', callee: label, mode, ms: Math.round(performance.now() - t0), ...outcome });
        // let the callee's answer (if it was interrupted) go out before the next call
        await Promise.all(c.answers);
        if (mode === 'killnowait' && label === 'cancelable' && c.interrupts.length === interruptsBefore) {
          // the INTERRUPT may trail the caller's ERROR: give it a moment
          const deadline = performance.now() + 2000;
          while (c.interrupts.length === interruptsBefore && performance.now() < deadline) await sleep(10);
          await Promise.all(c.answers);
        }
      }
    }

    stage = 'late-answers';
    for (const label of Object.keys(callees)) {
      const c = callees[label];
      const late = [...c.open.keys()];
      for (const [, inv] of c.open) inv.resolve('late');
      c.open.clear();
      emit({ event: 'late_yields', callee: label, requests: late });
      // the callee's YIELD to this call follows its late ones on the same
      // transport, so whatever the router did with those reached us first
      emit({ event: 'synced', callee: label, ...outcomeOf(await s.call(`com.example.js.sync.${label}`)) });
      emit({ event: 'interrupts', callee: label, requests: c.interrupts });
    }
    leave();
  },
};

// ---------------------------------------------------------------- go

stage = 'connect';
connection.open();
