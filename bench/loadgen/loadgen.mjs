// Load generator for the wampd benchmark suite.
//
// Speaks raw WAMP v2 frames (JSON or msgpack) over the `ws` package, so the
// cost per message on this side stays small next to the router's.
//
//   node loadgen.mjs '<json config>'
//
// Runs one scenario (rpc, echo, fanout, sessions, burst), prints progress on stderr
// and exactly one JSON line on stdout: {"ok": true, "result": {...}} or
// {"ok": false, "error": "..."}.  Every loop is bounded in count and time, and
// the process exits by itself (config.timeout is a hard deadline).

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { performance } from "node:perf_hooks";
import { Decoder, Encoder } from "@msgpack/msgpack";
import WebSocket from "ws";

const cfg = JSON.parse(process.argv[2] || "{}");
const now = () => performance.now(); // milliseconds
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (...args) => {
  if (cfg.verbose) console.error("[loadgen]", ...args);
};

const HELLO_DETAILS = { roles: { caller: {}, callee: {}, publisher: {}, subscriber: {} } };
const M = {
  HELLO: 1, WELCOME: 2, ABORT: 3, GOODBYE: 6, ERROR: 8, PUBLISH: 16, PUBLISHED: 17,
  SUBSCRIBE: 32, SUBSCRIBED: 33, EVENT: 36, CALL: 48, RESULT: 50, REGISTER: 64,
  REGISTERED: 65, INVOCATION: 68, YIELD: 70,
};

// -- serializers ---------------------------------------------------------------

function makeCodec(name) {
  if (name === "json") {
    return {
      protocol: "wamp.2.json",
      encode: (msg) => JSON.stringify(msg),
      decode: (data) => JSON.parse(data.toString("utf8")),
      // "[36," or "[36 " without decoding the frame
      isEvent: (d) => d[0] === 0x5b && d[1] === 0x33 && d[2] === 0x36 && (d[3] === 0x2c || d[3] === 0x20),
    };
  }
  if (name === "msgpack") {
    const encoder = new Encoder();
    const decoder = new Decoder();
    return {
      protocol: "wamp.2.msgpack",
      encode: (msg) => encoder.encode(msg),
      decode: (data) => decoder.decode(data),
      // fixarray header followed by the positive fixint 36
      isEvent: (d) => (d[0] & 0xf0) === 0x90 && d[1] === 0x24,
    };
  }
  if (name === "raw") {
    // the echo floor: no WAMP at all
    return { protocol: null, encode: (msg) => msg, decode: (data) => data, isEvent: () => false };
  }
  throw new Error(`unknown serializer ${name}`);
}

// -- CPU accounting --------------------------------------------------------------

function procCpuSeconds(pid) {
  if (Array.isArray(pid)) {
    // a router of several processes (wampd --workers): the sum over them
    const each = pid.map(procCpuSeconds).filter((x) => x != null);
    return each.length ? each.reduce((a, b) => a + b, 0) : null;
  }
  if (!pid) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[11] = utime, fields[12] = stime (fields 14 and 15 of stat(5))
    return (Number(fields[11]) + Number(fields[12])) / (cfg.clkTck || 100);
  } catch {
    return null;
  }
}

function readRssKiB(pid) {
  if (Array.isArray(pid)) return pid.reduce((sum, p) => sum + readRssKiB(p), 0);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/** The machine's 1-minute load average (how busy it was while a figure was measured). */
function loadAverage() {
  try {
    return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
  } catch {
    return null;
  }
}

class CpuWindow {
  start() {
    this.t0 = now();
    this.router0 = procCpuSeconds(cfg.cpuPid);
    this.self0 = process.cpuUsage();
  }
  stop() {
    const wall = (now() - this.t0) / 1000;
    const router1 = procCpuSeconds(cfg.cpuPid);
    const self = process.cpuUsage(this.self0);
    return {
      router_cpu_pct: this.router0 == null || router1 == null ? null : round((100 * (router1 - this.router0)) / wall, 1),
      loadgen_cpu_pct: round((100 * (self.user + self.system)) / 1e6 / wall, 1),
      load1: loadAverage(),
    };
  }
}

const round = (x, digits = 2) => (x == null || !Number.isFinite(x) ? null : Number(x.toFixed(digits)));

// -- sessions --------------------------------------------------------------------

const zeroMask = (mask) => mask.fill(0); // legal, and lets ws skip the XOR pass

const WS_OPTIONS = {
  perMessageDeflate: false,
  skipUTF8Validation: true,
  generateMask: zeroMask,
  handshakeTimeout: 15000,
  maxPayload: 16 * 1024 * 1024,
};

/** Opens a WebSocket and, unless join is false, joins realm1. Resolves to a Session. */
function openSession(url, codec, { join = true } = {}) {
  return new Promise((resolve, reject) => {
    const ws = codec.protocol ? new WebSocket(url, [codec.protocol], WS_OPTIONS) : new WebSocket(url, WS_OPTIONS);
    const session = {
      ws,
      codec,
      id: null,
      handler: null,
      closed: false,
      send(msg) {
        ws.send(codec.encode(msg));
      },
    };
    let settled = false;
    const fail = (err) => {
      if (!settled) {
        settled = true;
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    };
    ws.on("error", fail);
    ws.on("close", () => {
      session.closed = true;
      fail(new Error("closed before WELCOME"));
    });
    ws.on("open", () => {
      if (!join) {
        settled = true;
        ws.on("message", (data, isBinary) => session.handler && session.handler(data, isBinary));
        resolve(session);
        return;
      }
      session.send([M.HELLO, "realm1", HELLO_DETAILS]);
    });
    if (!join) return;
    ws.on("message", (data, isBinary) => {
      if (session.handler) {
        session.handler(data, isBinary);
        return;
      }
      const msg = codec.decode(data);
      if (msg[0] === M.WELCOME) {
        session.id = msg[1];
        settled = true;
        session.handler = () => {};
        resolve(session);
      } else {
        fail(new Error(`expected WELCOME, got ${JSON.stringify(msg).slice(0, 200)}`));
        ws.terminate();
      }
    });
  });
}

/**
 * A joined session that will only sit idle, on a bare TCP socket: the HTTP
 * upgrade and the frames are written by hand, so a join costs the load
 * generator about half what a join through ws's HTTP client costs.  It answers pings
 * and notices closes; everything else the router sends is ignored.
 */
function openIdleSession(url, codec) {
  const { hostname, port, pathname } = new URL(url);
  const hello = clientFrame(codec.protocol === "wamp.2.msgpack" ? 2 : 1, codec.encode([M.HELLO, "realm1", HELLO_DETAILS]));
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: hostname, port: Number(port), noDelay: true });
    const session = { socket, id: null, closed: false, ws: null };
    let buffer = Buffer.alloc(0);
    let upgraded = false;
    let settled = false;
    const fail = (err) => {
      if (!settled) {
        settled = true;
        socket.destroy();
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    };
    const timer = setTimeout(() => fail(new Error("join timed out")), 15000);
    socket.on("error", fail);
    socket.on("close", () => {
      session.closed = true;
      fail(new Error("closed before WELCOME"));
    });
    socket.on("connect", () => {
      socket.write(
        `GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n` +
          `Sec-WebSocket-Protocol: ${codec.protocol}\r\n\r\n`,
      );
    });
    socket.on("data", (chunk) => {
      buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
      if (!upgraded) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString("latin1");
        if (!head.startsWith("HTTP/1.1 101")) return fail(new Error(`upgrade refused: ${head.split("\r\n")[0]}`));
        upgraded = true;
        buffer = buffer.subarray(end + 4);
        socket.write(hello);
      }
      // server frames are unmasked: FIN|opcode, length (7, 16 or 64 bits), payload
      while (buffer.length >= 2) {
        let length = buffer[1] & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (buffer.length < 4) return;
          length = buffer.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (buffer.length < 10) return;
          length = Number(buffer.readBigUInt64BE(2));
          offset = 10;
        }
        if (buffer.length < offset + length) return;
        const opcode = buffer[0] & 0x0f;
        const payload = buffer.subarray(offset, offset + length);
        buffer = buffer.subarray(offset + length);
        if (opcode === 0x9) {
          socket.write(clientFrame(0xa, payload));
        } else if (opcode === 0x8) {
          socket.end();
        } else if (!settled && (opcode === 0x1 || opcode === 0x2)) {
          const msg = codec.decode(payload);
          if (msg[0] !== M.WELCOME) return fail(new Error(`expected WELCOME, got ${JSON.stringify(msg).slice(0, 200)}`));
          session.id = msg[1];
          settled = true;
          clearTimeout(timer);
          resolve(session);
        }
      }
    });
  });
}

/** A masked client frame (the mask is zero, so the payload goes as it is). */
function clientFrame(opcode, payload) {
  const body = Buffer.from(payload);
  const head =
    body.length < 126
      ? Buffer.from([0x80 | opcode, 0x80 | body.length, 0, 0, 0, 0])
      : Buffer.from([0x80 | opcode, 0x80 | 126, body.length >> 8, body.length & 0xff, 0, 0, 0, 0]);
  return Buffer.concat([head, body]);
}

/** Opens `count` sessions with at most `concurrency` joins in progress. */
async function openMany(url, codec, count, concurrency, sessions = [], opener = openSession) {
  let started = 0;
  let failures = 0;
  const maxFailures = Math.max(20, Math.floor(count / 20));
  const worker = async () => {
    while (started < count) {
      started += 1;
      try {
        sessions.push(await opener(url, codec));
      } catch (err) {
        failures += 1;
        log("join failed:", err.message);
        if (failures > maxFailures) throw new Error(`too many failed joins (${failures}): ${err.message}`);
        started -= 1; // try again, bounded by maxFailures
        await sleep(50);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { sessions, failures };
}

/** Sends GOODBYE to every session, waits briefly, then closes the sockets. */
async function closeAll(sessions, { goodbye = true, waitMs = 1000 } = {}) {
  const open = sessions.filter((s) => !s.closed && s.ws.readyState === WebSocket.OPEN);
  if (goodbye) {
    for (const s of open) {
      s.handler = () => {};
      try {
        s.send([M.GOODBYE, {}, "wamp.close.normal"]);
      } catch {
        /* already gone */
      }
    }
    const deadline = now() + waitMs;
    while (now() < deadline && open.some((s) => s.ws.bufferedAmount > 0)) await sleep(20);
    await sleep(100);
  }
  for (const s of open) {
    try {
      s.ws.terminate();
    } catch {
      /* already gone */
    }
  }
}

/** Sends `msg`, resolves with the first reply whose request id matches. */
function request(session, msg, replyType) {
  return new Promise((resolve, reject) => {
    const previous = session.handler;
    const timer = setTimeout(() => reject(new Error(`no reply to message ${msg[0]}`)), 15000);
    session.handler = (data) => {
      const reply = session.codec.decode(data);
      if (reply[0] === replyType && reply[1] === msg[1]) {
        clearTimeout(timer);
        session.handler = previous;
        resolve(reply);
      } else if (reply[0] === M.ERROR || reply[0] === M.ABORT) {
        clearTimeout(timer);
        reject(new Error(`request ${msg[0]} failed: ${JSON.stringify(reply).slice(0, 200)}`));
      }
    };
    session.send(msg);
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

/**
 * Paced load (cfg.rate > 0): how many sends are due now, so that on average
 * `rate` go out per second whatever the router's speed.  A router that falls
 * behind by more than a tenth of a second's worth is not sent a catch-up burst:
 * the schedule restarts from now.  `wake` is called every 2 ms while running.
 */
function makePacer(rate, wake) {
  if (!rate) return null;
  let start = now();
  let sent = 0;
  const timer = setInterval(wake, 2);
  return {
    due() {
      const target = (rate * (now() - start)) / 1000;
      if (target - sent > rate / 10) {
        start = now();
        sent = 0;
        return 0;
      }
      return Math.floor(target - sent);
    },
    took() {
      sent += 1;
    },
    stop() {
      clearInterval(timer);
    },
  };
}

/** Warm-up, then a measured window; returns [t0, t1] in ms. */
// every measured window, in Unix seconds, for whoever samples the routers' CPU meanwhile
const windowsUnix = [];

async function measuredWindow(onStart, onEnd) {
  await sleep(cfg.warmup * 1000);
  const t0 = now();
  onStart(t0);
  await sleep(cfg.duration * 1000);
  const t1 = now();
  onEnd(t1);
  windowsUnix.push([(performance.timeOrigin + t0) / 1000, (performance.timeOrigin + t1) / 1000]);
  return [t0, t1];
}

function latencyRecorder(capacity = 4_000_000) {
  const samples = new Float64Array(capacity);
  let n = 0;
  return {
    add(ms) {
      if (n < capacity) samples[n++] = ms;
    },
    summary() {
      const sorted = samples.subarray(0, n).sort();
      return {
        samples: n,
        p50_ms: round(percentile(sorted, 50), 3),
        p99_ms: round(percentile(sorted, 99), 3),
        max_ms: round(n ? sorted[n - 1] : null, 3),
      };
    },
  };
}

// -- scenarios -------------------------------------------------------------------

/** One callee, `callers` callers with `inflight` calls each. */
async function scenarioRpc() {
  const codec = makeCodec(cfg.serializer);
  const payload = "x".repeat(cfg.payload);
  const proc = "bench.rpc.echo";

  const callee = await openSession(cfg.callee_url || cfg.url, codec); // callee_url: another cluster node
  await request(callee, [M.REGISTER, 1, {}, proc], M.REGISTERED);
  await sleep((cfg.settle || 0) * 1000); // a cluster needs a moment to spread the registration
  callee.handler = (data) => {
    const msg = codec.decode(data);
    if (msg[0] === M.INVOCATION) callee.send([M.YIELD, msg[1], {}, msg[4] || []]);
  };

  const { sessions: callers } = await openMany(cfg.url, codec, cfg.callers, cfg.callers);
  let measuring = false;
  let stopping = false;
  let tStart = 0;
  let done = 0;
  let errors = 0;
  let inflight = 0;
  const lat = latencyRecorder();

  // paced (cfg.rate calls/s over all callers): a caller fires only when a call is due
  const idle = [];
  const pacer = makePacer(cfg.rate, () => {
    let due = pacer.due();
    while (due-- > 0 && idle.length > 0 && !stopping) idle.pop()();
  });
  for (const caller of callers) {
    const starts = new Float64Array(1024);
    let nextReq = 1;
    const fire = () => {
      if (pacer) {
        if (pacer.due() < 1) {
          idle.push(fire);
          return;
        }
        pacer.took();
      }
      const req = nextReq++;
      starts[req & 1023] = now();
      inflight += 1;
      caller.send([M.CALL, req, {}, proc, [payload]]);
    };
    caller.handler = (data) => {
      const msg = codec.decode(data);
      const t = now();
      if (msg[0] === M.RESULT) {
        inflight -= 1;
        const started = starts[msg[1] & 1023];
        if (measuring && started >= tStart) {
          done += 1;
          lat.add(t - started);
        }
      } else if (msg[0] === M.ERROR) {
        inflight -= 1;
        errors += 1;
      } else {
        return;
      }
      if (!stopping) fire();
    };
    for (let i = 0; i < cfg.inflight; i++) fire();
  }

  const cpu = new CpuWindow();
  let doneAtEnd = 0;
  const [t0, t1] = await measuredWindow(
    (t) => {
      tStart = t;
      measuring = true;
      cpu.start();
    },
    () => {
      measuring = false;
      doneAtEnd = done;
    },
  );
  const usage = cpu.stop();
  stopping = true;
  if (pacer) pacer.stop();
  const drainDeadline = now() + 3000;
  while (inflight > 0 && now() < drainDeadline) await sleep(10);
  await closeAll([...callers, callee]);

  const seconds = (t1 - t0) / 1000;
  return {
    calls_per_s: round(doneAtEnd / seconds, 1),
    calls: doneAtEnd,
    seconds: round(seconds, 3),
    errors,
    undrained: inflight,
    ...lat.summary(),
    ...usage,
  };
}

/** The floor: the same load against a plain WebSocket echo server. */
async function scenarioEcho() {
  const codec = makeCodec("raw");
  const payload = "x".repeat(cfg.payload);
  const clients = [];
  for (let i = 0; i < cfg.callers; i++) clients.push(await openSession(cfg.url, codec, { join: false }));
  let measuring = false;
  let stopping = false;
  let tStart = 0;
  let echoes = 0;
  let inflight = 0;
  const lat = latencyRecorder();

  for (const client of clients) {
    // echoes come back in order, so a FIFO of send times per connection
    const ring = new Float64Array(1024);
    let head = 0;
    let tail = 0;
    let nextReq = 1;
    // the same bytes as a JSON CALL frame with the same payload
    const fire = () => {
      ring[tail++ & 1023] = now();
      inflight += 1;
      client.send(`[48,${nextReq++},{},"bench.rpc.echo",["${payload}"]]`);
    };
    client.handler = () => {
      const started = ring[head++ & 1023];
      inflight -= 1;
      if (measuring && started >= tStart) {
        echoes += 1;
        lat.add(now() - started);
      }
      if (!stopping) fire();
    };
    for (let i = 0; i < cfg.inflight; i++) fire();
  }

  const cpu = new CpuWindow();
  let echoesAtEnd = 0;
  const [t0, t1] = await measuredWindow(
    (t) => {
      tStart = t;
      measuring = true;
      cpu.start();
    },
    () => {
      measuring = false;
      echoesAtEnd = echoes;
    },
  );
  const usage = cpu.stop();
  stopping = true;
  const drainDeadline = now() + 3000;
  while (inflight > 0 && now() < drainDeadline) await sleep(10);
  await closeAll(clients, { goodbye: false });

  const seconds = (t1 - t0) / 1000;
  const perSecond = echoesAtEnd / seconds;
  return {
    echo_msgs_per_s: round(perSecond, 1),
    echo_half_per_s: round(perSecond / 2, 1),
    echoes: echoesAtEnd,
    seconds: round(seconds, 3),
    undrained: inflight,
    ...lat.summary(),
    ...usage,
  };
}

/** 1 publisher with acknowledge -> N subscribers, for each N in cfg.subs. */
async function scenarioFanout() {
  const codec = makeCodec(cfg.serializer);
  const payload = "x".repeat(cfg.payload);
  const maxSubs = Math.max(...cfg.subs);

  const publisher = await openSession(cfg.url, codec);
  let delivered = 0;
  let onDelivery = null; // set while the publisher is blocked on outstanding deliveries
  const subscriberHandler = (data) => {
    if (codec.isEvent(data) || codec.decode(data)[0] === M.EVENT) {
      delivered += 1;
      if (onDelivery) onDelivery();
    }
  };
  const t0join = now();
  // sub_urls: subscribers spread round robin over several cluster nodes
  const subUrls = cfg.sub_urls || [cfg.url];
  const perUrl = await Promise.all(
    subUrls.map((url, k) => openMany(url, codec, Math.floor(maxSubs / subUrls.length) + (k < maxSubs % subUrls.length ? 1 : 0), cfg.concurrency)),
  );
  const subscribers = [];
  for (let i = 0; subscribers.length < maxSubs; i++) {
    for (const got of perUrl) if (i < got.sessions.length) subscribers.push(got.sessions[i]);
  }
  const failures = perUrl.reduce((sum, got) => sum + got.failures, 0);
  log(`${maxSubs} subscribers joined in ${((now() - t0join) / 1000).toFixed(1)}s (${failures} failed joins)`);

  const results = {};
  let reqId = 100;
  for (const n of cfg.subs) {
    const topic = `bench.fanout.t${n}`;
    // subscribe the first n sessions, bounded concurrency
    let next = 0;
    const subscribeWorker = async () => {
      while (next < n) {
        const s = subscribers[next++];
        await request(s, [M.SUBSCRIBE, ++reqId, {}, topic], M.SUBSCRIBED);
        s.handler = subscriberHandler;
      }
    };
    await Promise.all(Array.from({ length: Math.min(50, n) }, subscribeWorker));
    await sleep((cfg.settle || 0) * 1000); // a cluster needs a moment to spread the subscriptions

    const window = cfg.window;
    let sent = 0;
    let acked = 0;
    let stopping = false;
    let measuring = false;
    let ackedInWindow = 0;
    let errors = 0;
    delivered = 0;

    const pacer = makePacer(cfg.rate, () => pump());
    const pump = () => {
      onDelivery = null;
      let due = pacer ? pacer.due() : Infinity;
      while (!stopping && sent - acked < window && due > 0) {
        if (sent * n - delivered >= window * n) {
          onDelivery = () => {
            if (sent * n - delivered < window * n) pump();
          };
          return;
        }
        sent += 1;
        due -= 1;
        if (pacer) pacer.took();
        publisher.send([M.PUBLISH, ++reqId, { acknowledge: true }, topic, [payload]]);
      }
    };
    publisher.handler = (data) => {
      const msg = codec.decode(data);
      if (msg[0] === M.PUBLISHED) {
        acked += 1;
        if (measuring) ackedInWindow += 1;
      } else if (msg[0] === M.ERROR) {
        acked += 1;
        errors += 1;
      } else {
        return;
      }
      pump();
    };
    pump();

    const cpu = new CpuWindow();
    let deliveredAtStart = 0;
    let deliveredAtEnd = 0;
    let ackedAtEnd = 0;
    const [t0, t1] = await measuredWindow(
      () => {
        deliveredAtStart = delivered;
        measuring = true;
        cpu.start();
      },
      () => {
        measuring = false;
        deliveredAtEnd = delivered;
        ackedAtEnd = ackedInWindow;
      },
    );
    const usage = cpu.stop();
    stopping = true;
    if (pacer) pacer.stop();
    onDelivery = null;
    const drainDeadline = now() + 5000;
    while ((acked < sent || delivered < sent * n) && now() < drainDeadline) await sleep(10);

    const seconds = (t1 - t0) / 1000;
    results[n] = {
      subscribers: n,
      publishes_per_s: round(ackedAtEnd / seconds, 1),
      deliveries_per_s: round((deliveredAtEnd - deliveredAtStart) / seconds, 1),
      seconds: round(seconds, 3),
      errors,
      missing_deliveries: sent * n - delivered,
      ...usage,
    };
    log(`fanout ${n}:`, JSON.stringify(results[n]));
    // later levels start from a quiet topic: park the handlers again
    for (let i = 0; i < n; i++) subscribers[i].handler = () => {};
  }
  await closeAll([publisher, ...subscribers]);
  return { levels: results, subscriber_join_failures: failures };
}

/** Joins/s and router RSS with idle sessions, at each count in cfg.stages. */
async function scenarioSessions() {
  const codec = makeCodec(cfg.serializer);
  const pid = cfg.rssPid;

  // warm the router's code paths so the baseline is not the import cost
  const { sessions: warm } = await openMany(cfg.url, codec, 20, 10, [], openIdleSession);
  for (const s of warm) s.socket.destroy();
  await sleep(cfg.settle * 1000);
  const rssBefore = readRssKiB(pid);

  const sessions = [];
  const stages = [];
  let previous = 0;
  for (const target of cfg.stages) {
    const cpu = new CpuWindow();
    cpu.start();
    const t0 = now();
    const { failures } = await openMany(cfg.url, codec, target - previous, cfg.concurrency, sessions, openIdleSession);
    const seconds = (now() - t0) / 1000;
    const usage = cpu.stop();
    await sleep(cfg.settle * 1000);
    const rss = readRssKiB(pid);
    stages.push({
      sessions: sessions.length,
      joins: target - previous,
      joins_per_s: round((target - previous) / seconds, 1),
      join_seconds: round(seconds, 3),
      join_failures: failures,
      rss_kib: rss,
      kib_per_session: round((rss - rssBefore) / sessions.length, 2),
      ...usage,
    });
    log("stage", JSON.stringify(stages[stages.length - 1]));
    previous = target;
  }
  // still all open?  (the router must hold every one of them)
  await sleep(200);
  const stillOpen = sessions.filter((s) => !s.closed).length;
  for (const s of sessions) s.socket.destroy();
  return { rss_before_kib: rssBefore, stages, still_open: stillOpen };
}

/**
 * Reconnect storms: for each size in cfg.bursts, that many connections are
 * opened at the same moment, each joining realm1 (bare sockets, as the idle
 * sessions); joins/s = size / time until the last WELCOME.  A join that
 * fails is tried again (bounded).  Between sizes every socket is closed and
 * the router gets cfg.settle seconds.
 */
async function scenarioBurst() {
  const codec = makeCodec(cfg.serializer);
  const results = {};
  // warm the router's code paths first
  const { sessions: warm } = await openMany(cfg.url, codec, 20, 10, [], openIdleSession);
  for (const s of warm) s.socket.destroy();
  await sleep(cfg.settle * 1000);
  for (const size of cfg.bursts) {
    let failures = 0;
    const maxFailures = Math.max(20, size);
    const joinOne = async () => {
      for (;;) {
        try {
          return await openIdleSession(cfg.url, codec);
        } catch (err) {
          failures += 1;
          log("burst join failed:", err.message);
          if (failures > maxFailures) throw new Error(`too many failed joins (${failures}): ${err.message}`);
          await sleep(50);
        }
      }
    };
    const cpu = new CpuWindow();
    cpu.start();
    const t0 = now();
    const sessions = await Promise.all(Array.from({ length: size }, joinOne));
    const seconds = (now() - t0) / 1000;
    const usage = cpu.stop();
    results[size] = {
      connections: size,
      joins_per_s: round(size / seconds, 1),
      seconds: round(seconds, 3),
      join_failures: failures,
      ...usage,
    };
    log(`burst ${size}:`, JSON.stringify(results[size]));
    for (const s of sessions) s.socket.destroy();
    await sleep(cfg.settle * 1000);
  }
  return { bursts: results };
}

// -- main ------------------------------------------------------------------------

const SCENARIOS = {
  rpc: scenarioRpc,
  echo: scenarioEcho,
  fanout: scenarioFanout,
  sessions: scenarioSessions,
  burst: scenarioBurst,
};

async function main() {
  const deadline = setTimeout(() => {
    process.stdout.write(JSON.stringify({ ok: false, error: `deadline of ${cfg.timeout}s exceeded` }) + "\n");
    process.exit(3);
  }, (cfg.timeout || 120) * 1000);
  const run = SCENARIOS[cfg.scenario];
  if (!run) throw new Error(`unknown scenario ${cfg.scenario}`);
  const result = await run();
  clearTimeout(deadline);
  process.stdout.write(JSON.stringify({ ok: true, result: { ...result, windows_unix: windowsUnix } }) + "\n");
  process.exit(0);
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ ok: false, error: String(err && err.stack ? err.stack : err) }) + "\n");
  process.exit(1);
});
