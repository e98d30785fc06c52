// SPDX-License-Identifier: MIT
//
// SidespanSpanProcessor: an OpenTelemetry JS SpanProcessor that hands every
// ended span to the sidespand daemon as one SPAN message of its wire protocol
// (DESIGN.md section 3: a 4-byte big-endian length, then one msgpack array),
// over its Unix socket. The agent's call only notes the span; its frames are
// written right after (writer.js: straight into one growable buffer, the bytes
// @msgpack/msgpack would give, with no allocation per frame), and the buffer,
// bounded, goes to the socket in one write. Reconnects happen around it, and
// nothing ever throws into the agent: what cannot be sent is dropped and
// counted (stats()).

import net from 'node:net';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { Decoder } from '@msgpack/msgpack';
import { FrameWriter, FrameTooLarge, encodeFrame } from './writer.js';

const MSG_HELLO = 1;
const MSG_SPAN_START = 2;
const MSG_SPAN_EVENT = 4;
const MSG_SPAN_END = 5;
const MSG_SPAN = 6;
const MSG_FLUSH = 7;
const MSG_FLUSHED = 65;
const PROTOCOL_VERSION = 1;
const SDK_NAME = 'sidespan-js';
const SDK_VERSION = '0.1.0';

// The limits libsidespan keeps (client/options.c, common/ss-wire.h): the
// daemon refuses more, so a span past them is dropped here, counted.
export const MAX_FRAME = 1 << 20;
const MAX_ATTRS = 128;
const MAX_KEY = 256;
const MAX_DEPTH = 8;
const MAX_QUEUE_BYTES_DEFAULT = 4 << 20;
const MAX_PENDING = 100000; // starts and ends noted and not yet encoded
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5000;

// OpenTelemetry JS SpanKind (INTERNAL 0 .. CONSUMER 4) to OTLP's (1 .. 5).
const kindToOtlp = (k) => (Number.isInteger(k) && k >= 0 && k <= 4 ? k + 1 : 1);

function defaultSocket() {
  const env = process.env.SIDESPAN_SOCKET;
  if (env) return env;
  if (fs.existsSync('/run/sidespan/sidespan.sock')) return '/run/sidespan/sidespan.sock';
  if (process.env.XDG_RUNTIME_DIR) return `${process.env.XDG_RUNTIME_DIR}/sidespan.sock`;
  return '/run/sidespan/sidespan.sock';
}

const hrToNs = (t) => BigInt(t[0]) * 1000000000n + BigInt(t[1]);

function hexToBytes(hex, n) {
  const b = Buffer.from(hex || '', 'hex');
  return b.length === n ? new Uint8Array(b) : null;
}

// An attribute value the protocol carries: str, int, float, bool, or an array of one of
// those; anything else (objects, mixed arrays) becomes JSON, undefined and null go.
function attrValue(v, depth) {
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'bigint') return v;
  if (Array.isArray(v) && depth < MAX_DEPTH) {
    const out = v.filter((x) => x !== null && x !== undefined).map((x) => attrValue(x, depth + 1));
    const t = out.length ? typeof out[0] : 'string';
    return out.every((x) => typeof x === t) ? out : JSON.stringify(v);
  }
  return v === null || v === undefined ? undefined : JSON.stringify(v);
}

function attrMap(attrs, counters) {
  const out = {};
  let n = 0;
  for (const [k, v] of Object.entries(attrs || {})) {
    if (!k || Buffer.byteLength(k) > MAX_KEY) {
      counters.attrsDropped++;
      continue;
    }
    const val = attrValue(v, 0);
    if (val === undefined) continue;
    if (n === MAX_ATTRS) {
      counters.attrsDropped++;
      continue;
    }
    out[k] = val;
    n++;
  }
  return out;
}

export class SidespanSpanProcessor {
  /**
   * @param {object} [options]
   * @param {string} [options.socketPath] the daemon's socket (default as libsidespan's)
   * @param {string} [options.serviceName] service.name (default the resource's, else "upsonic")
   * @param {number} [options.maxQueueBytes] encoded bytes held while the daemon is away
   * @param {object} [options.resourceAttributes] more resource attributes for HELLO
   */
  constructor(options = {}) {
    this.socketPath = options.socketPath || defaultSocket();
    this.serviceName = options.serviceName;
    this.resourceAttributes = options.resourceAttributes || {};
    this.maxQueueBytes = options.maxQueueBytes || MAX_QUEUE_BYTES_DEFAULT;
    this.instance = crypto.randomBytes(8).readBigUInt64BE() || 1n;
    this.decoder = new Decoder({ useBigInt64: true });
    this.writer = new FrameWriter(); // the frames not yet written to the socket
    this.queuedFrames = 0;
    this.sock = null;
    this.connected = false;
    this.connecting = false;
    this.backoff = RECONNECT_MIN_MS;
    this.timer = null;
    this.closed = false;
    this.helloSent = false;
    this.resource = null; // the first span's resource attributes, for HELLO
    this.inbuf = Buffer.alloc(0);
    this.flushSeq = 0;
    this.started = new WeakMap(); // span sent at its start -> its attributes then
    this.pending = []; // starts and ends noted by the agent's calls, not encoded yet
    this.scheduled = false;
    this.batching = false; // encoding a batch: its frames are written at its end
    this.flushWaiters = new Map(); // seq -> resolve
    this.counters = {
      spans: 0,
      framesQueued: 0,
      framesSent: 0,
      bytesSent: 0,
      dropped: 0,
      droppedTooLarge: 0,
      attrsDropped: 0,
      reconnects: 0,
      connectFailures: 0,
    };
  }

  // ---- SpanProcessor ----

  // A span goes to the daemon when it starts (SPAN_START) and when it ends (its events, then
  // SPAN_END with the attributes set since), as libsidespan sends them: the daemon then knows
  // what is open, so the roll-ups of an agent run (tool calls, steps, tokens, cost) find the
  // run above each chat, and spans an agent leaves open when it dies end as orphaned.
  //
  // The agent's call only notes the span (and, at its start, its attributes then); the
  // encoding runs right after, in setImmediate(), as the SDK's BatchSpanProcessor defers
  // its export. A span that starts and ends within one such batch and is no parent of a
  // span started in it goes as one whole SPAN message.
  onStart(span) {
    if (this.closed) return;
    if (this.pending.length >= MAX_PENDING) {
      this.counters.dropped++;
      return;
    }
    this.pending.push({ start: true, span, attrs: { ...span.attributes } });
    this._schedule();
  }

  onEnd(span) {
    if (this.closed) return;
    this.counters.spans++;
    if (this.pending.length >= MAX_PENDING) {
      this.counters.dropped++;
      return;
    }
    this.pending.push({ start: false, span });
    this._schedule();
  }

  _schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this._encodePending());
  }

  _encodePending() {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    // The batch's frames go in one write at its end, not one write (one system call) each.
    this.batching = true;
    try {
      this._encodeBatch(batch);
    } finally {
      this.batching = false;
    }
    if (this.queuedFrames === 0) return;
    if (this.connected) this._drain();
    else this._connect();
  }

  _encodeBatch(batch) {
    const parents = new Set();
    const ends = new Set();
    for (const e of batch) {
      if (e.start && e.span.parentSpanContext) parents.add(e.span.parentSpanContext.spanId);
      else if (!e.start) ends.add(e.span);
    }
    const whole = (span) => ends.has(span) && !parents.has(span.spanContext().spanId);
    for (const e of batch) {
      try {
        if (!this.resource) this.resource = (e.span.resource && e.span.resource.attributes) || {};
        if (e.start) {
          // Dropped at its start (the queue full), it goes whole at its end, if there is room.
          if (!whole(e.span) && this._enqueue([MSG_SPAN_START, ...this._head(e.span, e.attrs)])) {
            this.started.set(e.span, e.attrs);
          }
          continue;
        }
        const atStart = this.started.get(e.span);
        if (atStart) {
          this.started.delete(e.span);
          this._enqueueEnd(e.span, atStart);
        } else {
          this._enqueue(this._span(e.span));
        }
      } catch {
        this.counters.dropped++; // never into the agent
      }
    }
  }

  /** Resolves once the daemon has every span ended so far, or after timeoutMs; never rejects. */
  forceFlush(timeoutMs = 5000) {
    this._encodePending();
    return new Promise((resolve) => {
      if (this.closed && !this.sock) return resolve();
      const seq = ++this.flushSeq;
      const t = setTimeout(() => {
        this.flushWaiters.delete(seq);
        resolve();
      }, timeoutMs);
      t.unref?.();
      this.flushWaiters.set(seq, () => {
        clearTimeout(t);
        resolve();
      });
      this._enqueue([MSG_FLUSH, seq], true);
    });
  }

  /** Flush, then close the connection; later spans are ignored. */
  async shutdown() {
    if (this.closed) return;
    await this.forceFlush(2000);
    this.closed = true;
    clearTimeout(this.timer);
    const sock = this.sock;
    this.sock = null;
    if (!sock) return;
    // The daemon sees an orderly close, not a reset: wait for it, a little.
    await new Promise((resolve) => {
      const t = setTimeout(resolve, 1000);
      t.unref?.();
      sock.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      sock.end();
    });
  }

  /** Counters: spans seen, frames queued and sent, drops (never thrown), connection state. */
  stats() {
    return { ...this.counters, queuedBytes: this.writer.pos, connected: this.connected };
  }

  // ---- the messages (arrays the writer encodes) ----

  // SPAN_START's fields after the type: ids, parent, name, kind, start, attributes, options.
  _head(span, attrs = span.attributes) {
    const ctx = span.spanContext();
    const parent = span.parentSpanContext || null;
    const traceId = hexToBytes(ctx.traceId, 16);
    const spanId = hexToBytes(ctx.spanId, 8);
    if (!traceId || !spanId) throw new Error('bad span context');
    const options = { flags: ctx.traceFlags & 0xff };
    const ts = ctx.traceState && ctx.traceState.serialize && ctx.traceState.serialize();
    if (ts) options.trace_state = ts;
    return [
      traceId,
      spanId,
      parent && parent.spanId ? hexToBytes(parent.spanId, 8) : null,
      span.name || 'span',
      kindToOtlp(span.kind),
      hrToNs(span.startTime),
      attrMap(attrs, this.counters),
      options,
    ];
  }

  _events(span) {
    return (span.events || []).map((e) => [e.name || 'event', hrToNs(e.time), attrMap(e.attributes, this.counters)]);
  }

  static _status(span) {
    const s = span.status || {};
    return [s.code === 1 || s.code === 2 ? s.code : 0, s.message ? String(s.message) : null];
  }

  _span(span) {
    return [MSG_SPAN, ...this._head(span), hrToNs(span.endTime),
      ...SidespanSpanProcessor._status(span), this._events(span)];
  }

  // A span sent at its start: its events, then its end with the attributes that changed.
  _enqueueEnd(span, atStart) {
    const spanId = hexToBytes(span.spanContext().spanId, 8);
    const changed = {};
    for (const [k, v] of Object.entries(span.attributes || {})) {
      if (atStart[k] !== v) changed[k] = v;
    }
    for (const [name, time, attrs] of this._events(span)) {
      this._enqueue([MSG_SPAN_EVENT, spanId, name, time, attrs]);
    }
    this._enqueue([MSG_SPAN_END, spanId, hrToNs(span.endTime),
      ...SidespanSpanProcessor._status(span), attrMap(changed, this.counters)]);
  }

  _hello() {
    const r = this.resource || {};
    const opts = {};
    for (const [k, v] of Object.entries({ ...r, ...this.resourceAttributes })) {
      const val = attrValue(v, 0);
      if (val !== undefined && k && Buffer.byteLength(k) <= MAX_KEY) opts[k] = val;
    }
    opts['service.name'] = this.serviceName || r['service.name'] || 'upsonic';
    opts['process.pid'] = process.pid;
    opts['sdk.name'] = SDK_NAME;
    opts['sdk.version'] = SDK_VERSION;
    opts.instance = this.instance;
    return encodeFrame([MSG_HELLO, PROTOCOL_VERSION, opts]);
  }

  // ---- the buffer and the socket ----

  // Queue one message, written as a frame after those queued: true, or false when it was
  // dropped (counted) and taken back out, the queue as it was.
  _enqueue(msg, control = false) {
    const w = this.writer;
    const start = w.begin(MAX_FRAME);
    let body;
    try {
      w.value(msg);
      body = w.finish(start);
    } catch (err) {
      w.rollback(start);
      if (!(err instanceof FrameTooLarge)) throw err; // the caller drops it, counted
      body = MAX_FRAME + 1; // given up as soon as it was past the limit
    }
    if (body > MAX_FRAME) {
      w.rollback(start);
      this.counters.dropped++;
      this.counters.droppedTooLarge++;
      return false;
    }
    // A FLUSH is small and always queued: it is how the caller learns what arrived.
    if (!control && w.pos > this.maxQueueBytes) {
      w.rollback(start);
      this.counters.dropped++;
      return false;
    }
    this.queuedFrames++;
    this.counters.framesQueued++;
    if (this.batching) return true;
    if (this.connected) this._drain();
    else this._connect();
    return true;
  }

  _drain() {
    if (!this.sock || !this.connected || this.queuedFrames === 0) return;
    // Many frames in one write: the socket carries more in large writes. The writer hands
    // its buffer over (a copy, for a few bytes) and goes on in another; a buffer serves again
    // once the socket is done with it, never before.
    const w = this.writer;
    const chunk = w.take();
    this.sock.write(chunk, (err) => {
      if (!err) w.recycle(chunk);
    });
    this.counters.framesSent += this.queuedFrames;
    this.counters.bytesSent += chunk.length;
    this.queuedFrames = 0;
  }

  _connect() {
    if (this.connecting || this.connected || this.closed || this.timer) return;
    this.connecting = true;
    const sock = net.createConnection(this.socketPath);
    sock.unref(); // never keeps the agent's process alive
    sock.on('connect', () => {
      this.connecting = false;
      this.connected = true;
      this.backoff = RECONNECT_MIN_MS;
      this.sock = sock;
      sock.write(this._hello());
      this._drain();
    });
    sock.on('data', (d) => this._onData(d));
    sock.on('error', () => {}); // 'close' follows
    sock.on('close', () => {
      const was = this.connected;
      this.connecting = false;
      this.connected = false;
      if (this.sock === sock) this.sock = null;
      if (!was) this.counters.connectFailures++;
      else this.counters.reconnects++;
      if (this.closed) return;
      // Again later, with backoff; frames wait in the bounded queue meanwhile.
      this.timer = setTimeout(() => {
        this.timer = null;
        if (this.queuedFrames) this._connect();
      }, this.backoff);
      this.timer.unref();
      this.backoff = Math.min(this.backoff * 2, RECONNECT_MAX_MS);
    });
  }

  _onData(d) {
    this.inbuf = this.inbuf.length ? Buffer.concat([this.inbuf, d]) : d;
    while (this.inbuf.length >= 4) {
      const n = this.inbuf.readUInt32BE(0);
      if (n > MAX_FRAME) {
        this.sock?.destroy();
        return;
      }
      if (this.inbuf.length < 4 + n) break;
      let msg;
      try {
        msg = this.decoder.decode(this.inbuf.subarray(4, 4 + n));
      } catch {
        msg = null;
      }
      this.inbuf = this.inbuf.subarray(4 + n);
      if (Array.isArray(msg) && msg[0] === MSG_FLUSHED) {
        const seq = Number(msg[1]);
        // FLUSHED answers every FLUSH up to its sequence number on this connection.
        for (const [s, done] of this.flushWaiters) {
          if (s <= seq) {
            this.flushWaiters.delete(s);
            done();
          }
        }
      }
    }
  }
}

export default SidespanSpanProcessor;
