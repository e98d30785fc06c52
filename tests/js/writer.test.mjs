// SPDX-License-Identifier: MIT
// The span processor's frame writer (client/js/writer.js) against @msgpack/msgpack, which
// the processor used before and which wrote the bytes the daemon decodes: the same values
// must give the same bytes. Then the frames the processor writes: their lengths, a frame
// past MAX_FRAME or the queue's bound taken back out, and the buffer handed to the socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Encoder, encode, decode } from '@msgpack/msgpack';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { SidespanSpanProcessor, MAX_FRAME } from '@sidespan/otel-processor';
import { FrameWriter, encodeFrame } from '../../client/js/writer.js';

const reference = new Encoder({ useBigInt64: true });

// What @msgpack/msgpack is given to write what the writer writes: the same value, but for
// a safe integer past 32 bits (it would send a float 64), given as a BigInt, which it
// writes as the uint 64 or int 64 the writer writes.
function asReference(v) {
  if (typeof v === 'number') return Number.isSafeInteger(v) && (v >= 2 ** 32 || v < -(2 ** 31)) ? BigInt(v) : v;
  if (Array.isArray(v)) return v.map(asReference);
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const o = Object.getPrototypeOf(v) === null ? Object.create(null) : {};
    for (const k of Object.keys(v)) o[k] = asReference(v[k]);
    return o;
  }
  return v;
}
const SEED = Number(process.env.WRITER_TEST_SEED || 0x5eed5);

// mulberry32: the same cases every run (WRITER_TEST_SEED for others).
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTS = [0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32,
  2 ** 32 + 1, 2 ** 53 - 1, -1, -31, -32, -33, -127, -128, -129, -32767, -32768, -32769, -(2 ** 31) + 1,
  -(2 ** 31), -(2 ** 31) - 1, -(2 ** 32), -(2 ** 53 - 1)];
const FLOATS = [0.5, -0.5, 0.1, 1.5e300, -1e-300, 5e-324, -0, 2 ** 53, -(2 ** 53), 2 ** 64, Number.MAX_VALUE,
  NaN, Infinity, -Infinity];
const BIGINTS = [0n, 1n, 127n, 2n ** 32n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n, -1n, -(2n ** 31n),
  -(2n ** 63n), 2n ** 64n, -(2n ** 63n) - 1n]; // the last two past 64 bits: wrapped by both
const BIN_SIZES = [0, 1, 8, 16, 17, 255, 256, 65535, 65536];
// Code units of each UTF-8 length, and lone surrogates: high, low.
const CHARS = ['a', 'Z', ' ', '\x7f', '\x00', 'é', 'ж', '\u07ff', '€', '中', '\uffff', '😀', '𝄞', '\ud800', '\udbff',
  '\udc00', '\udfff'];

function generators(rnd) {
  const pick = (a) => a[Math.floor(rnd() * a.length)];
  const int = (n) => Math.floor(rnd() * n);
  function string() {
    const r = rnd();
    // Short (written by hand), across fixstr/str8 by bytes; or long (Buffer.write), up to str16.
    const n = r < 0.6 ? int(51) : r < 0.995 ? 51 + int(300) : int(70000);
    const ascii = rnd() < 0.5;
    let s = '';
    while (s.length < Math.min(n, 400)) s += ascii && rnd() < 0.9 ? String.fromCharCode(32 + int(95)) : pick(CHARS);
    // A long one repeats its start (a lone surrogate at a cut stays one).
    while (s.length < n) s += s.slice(0, n - s.length);
    return s.slice(0, n);
  }
  function bytes(n = pick(BIN_SIZES)) {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  }
  function number() {
    const r = rnd();
    if (r < 0.4) return pick(INTS);
    if (r < 0.55) return pick(INTS) + pick([-1, 1]);
    if (r < 0.7) return pick(FLOATS);
    if (r < 0.85) return Math.floor((rnd() - 0.5) * 2 ** (1 + int(54)));
    return (rnd() - 0.5) * 10 ** int(20);
  }
  function bigint() {
    if (rnd() < 0.5) return pick(BIGINTS);
    const v = (BigInt(int(2 ** 32)) << 32n) | BigInt(int(2 ** 32));
    return rnd() < 0.5 ? v : -(v >> 1n);
  }
  function scalar() {
    const r = rnd();
    if (r < 0.35) return string();
    if (r < 0.65) return number();
    if (r < 0.75) return bigint();
    if (r < 0.82) return rnd() < 0.5;
    if (r < 0.87) return null;
    if (r < 0.9) return undefined;
    return bytes(pick([0, 8, 16, 33]));
  }
  function value(depth = 0) {
    const r = rnd();
    if (depth > 2 || r < 0.6) return scalar();
    if (r < 0.8) return Array.from({ length: int(20) }, () => value(depth + 1));
    const o = {};
    for (let i = int(20); i > 0; i--) o[rnd() < 0.2 ? string() : `k${int(1000)}`] = value(depth + 1);
    return o;
  }
  // Attributes as attrValue() leaves them: scalars, homogeneous arrays, JSON strings.
  function attrs() {
    const o = {};
    for (let i = rnd() < 0.03 ? 130 : int(20); i > 0; i--) {
      const k = rnd() < 0.9 ? `gen_ai.attr.${int(500)}` : string().slice(0, 64) || 'k';
      const r = rnd();
      o[k] = r < 0.5 ? string() : r < 0.7 ? number() : r < 0.75 ? bigint() : r < 0.8 ? rnd() < 0.5
        : r < 0.9 ? Array.from({ length: int(20) }, () => string()) : Array.from({ length: int(20) }, () => number());
    }
    return o;
  }
  // The processor's messages: SPAN, SPAN_START, SPAN_EVENT, SPAN_END, HELLO, FLUSH.
  function message() {
    const head = () => [bytes(16), bytes(8), rnd() < 0.3 ? null : bytes(8), string(), 1 + int(5), bigint(), attrs(),
      rnd() < 0.5 ? { flags: int(256) } : { flags: 1, trace_state: string() }];
    const status = () => [int(3), rnd() < 0.5 ? null : string()];
    const events = () => Array.from({ length: int(4) }, () => [string(), bigint(), attrs()]);
    switch (int(6)) {
      case 0: return [6, ...head(), bigint(), ...status(), events()];
      case 1: return [2, ...head()];
      case 2: return [4, bytes(8), string(), bigint(), attrs()];
      case 3: return [5, bytes(8), bigint(), ...status(), attrs()];
      case 4: return [1, 1, { ...attrs(), 'service.name': string(), 'process.pid': int(1 << 22), instance: bigint() }];
      default: return [7, int(2 ** 32)];
    }
  }
  return { string, number, bigint, bytes, value, message };
}

// Values at each size boundary of each msgpack type, and the strings whose header the
// writer has to move (more UTF-8 bytes than the UTF-16 length led it to reserve for).
function boundaryCases() {
  const cases = [];
  for (const v of [...INTS, ...FLOATS, ...BIGINTS, true, false, null, undefined]) cases.push(v);
  for (const n of BIN_SIZES) cases.push(new Uint8Array(n).fill(n & 0xff));
  cases.push(Buffer.from('a Buffer is a Uint8Array'));
  for (const n of [0, 1, 31, 32, 50, 51, 255, 256, 65535, 65536]) cases.push('a'.repeat(n));
  for (const [c, n] of [['é', 15], ['é', 16], ['é', 25], ['€', 10], ['€', 11], ['😀', 8], ['é', 127], ['é', 128],
    ['é', 32767], ['é', 32768], ['€', 21845], ['€', 21846], ['\ud800', 10], ['\ud800', 11], ['\udc00', 40],
    ['\udc00', 100], ['\ud800', 21846]]) cases.push(c.repeat(n));
  // A lone surrogate at the end, or a high one before no low one, short and long.
  for (const s of ['x\ud800', '\ud800x', '\udc00\ud800', '\ud800\ud800\udc00', 'y'.repeat(60) + '\ud800',
    '\ud83d' + 'y'.repeat(60), 'y'.repeat(60) + '\udc00\ud83d\ude00']) cases.push(s);
  for (const n of [0, 1, 15, 16, 65535, 65536]) {
    cases.push(Array.from({ length: n }, (_, i) => i));
    cases.push(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i & 1 ? 'v' : i])));
  }
  cases.push({ 2: 'a', 1: 'b', z: 'c', '': 'empty key' }); // Object.keys order: integer keys first
  cases.push(Object.assign(Object.create(null), { a: 1 }));
  cases.push([[[[[]]]]], [{}], { a: [{ b: [] }] }, [undefined, null]);
  return cases;
}

test('the writer writes every value as @msgpack/msgpack does, byte for byte', () => {
  // (An integer past 32 bits as @msgpack/msgpack writes it given as a BigInt: asReference().)
  const rnd = prng(SEED);
  const gen = generators(rnd);
  const w = new FrameWriter(16); // small: it grows in the middle of frames
  let cases = 0;
  const check = (v, what) => {
    const start = w.begin();
    w.value(v);
    const n = w.finish(start);
    const want = reference.encode(asReference(v));
    assert.equal(n, want.length, `${what} #${cases}: length`);
    assert.equal(w.buf.readUInt32BE(start), want.length, `${what} #${cases}: length prefix`);
    if (!w.buf.subarray(start + 4, w.pos).equals(want)) {
      assert.deepEqual([...w.buf.subarray(start + 4, w.pos).subarray(0, 64)], [...want.subarray(0, 64)],
        `${what} #${cases} (seed ${SEED}) differs: ${JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? `${x}n` : x))?.slice(0, 200)}`);
      assert.fail(`${what} #${cases} (seed ${SEED}) differs past its first 64 bytes`);
    }
    cases++;
    // Now and then the bytes are handed over, as to the socket, and the buffer comes back.
    if (rnd() < 0.05) w.recycle(w.take());
    else if (w.pos > 1 << 20) w.take();
  };
  for (const v of boundaryCases()) check(v, 'boundary');
  for (let i = 0; i < 5000; i++) check(gen.message(), 'message');
  for (let i = 0; i < 5000; i++) check(gen.value(), 'value');
  for (let i = 0; i < 3000; i++) check(gen.string(), 'string');
  for (let i = 0; i < 3000; i++) check(gen.number(), 'number');
  for (let i = 0; i < 1000; i++) check(gen.bigint(), 'bigint');
  assert.ok(cases > 17000, `${cases} cases`);
  console.log(`# ${cases} values, seed ${SEED}`);
});

test('an integer past 32 bits goes as an integer, where @msgpack/msgpack sent a float', () => {
  const body = (v) => [...encodeFrame(v).subarray(4)];
  assert.deepEqual(body(2 ** 32), [0xcf, 0, 0, 0, 1, 0, 0, 0, 0]);
  assert.deepEqual(body(2 ** 53 - 1), [0xcf, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  assert.deepEqual(body(-(2 ** 31) - 1), [0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff]);
  assert.deepEqual(body(-(2 ** 53 - 1)), [0xd3, 0xff, 0xe0, 0, 0, 0, 0, 0, 1]);
  const ms = 1733500000123; // Date.now() in December 2024
  assert.equal(decode(encodeFrame(ms).subarray(4), { useBigInt64: true }), BigInt(ms));
  assert.equal(reference.encode(ms)[0], 0xcb, '@msgpack/msgpack sends it as a float 64');
  // Past 2^53 it is no longer exact as a number: a float, as before.
  assert.equal(body(2 ** 53)[0], 0xcb);
  assert.equal(body(2 ** 32 + 0.5)[0], 0xcb);
});

test('lone surrogates: as @msgpack/msgpack, raw in short strings, U+FFFD in long ones', () => {
  const body = (v) => {
    const f = encodeFrame(v);
    return f.subarray(4);
  };
  // Up to 50 code units @msgpack/msgpack writes by hand: the surrogate's own 3 bytes.
  assert.deepEqual([...body('a\ud800')], [0xa4, 0x61, 0xed, 0xa0, 0x80]);
  assert.deepEqual([...body('\udfff')], [0xa3, 0xed, 0xbf, 0xbf]);
  // Longer, TextEncoder (Buffer.write here): U+FFFD, the same length.
  const long = 'a'.repeat(50) + '\ud800';
  assert.deepEqual([...body(long).subarray(-3)], [0xef, 0xbf, 0xbd]);
  assert.deepEqual(body(long), Buffer.from(encode(long)));
  assert.deepEqual(body('a\ud800'), Buffer.from(encode('a\ud800')));
});

test('what the processor cannot send throws, to be dropped and counted', () => {
  const w = new FrameWriter();
  for (const v of [new Date(0), new Map([[1, 2]]), Symbol('s'), () => 1, new Uint16Array(2)]) {
    assert.throws(() => w.value(v), TypeError);
  }
  let deep = 1;
  for (let i = 0; i < 99; i++) deep = [deep];
  const start = w.begin();
  w.value(deep);
  w.finish(start);
  assert.ok(w.buf.subarray(start + 4, w.pos).equals(reference.encode(deep)));
  deep = [deep]; // as @msgpack/msgpack's maxDepth, 100
  assert.throws(() => w.value(deep), /too deep/);
  assert.throws(() => reference.encode(deep), /Too deep/);
});

// ---- the processor's frames ----

// The frames in bytes: each length prefix, and its body, which must be msgpack's own.
function frames(bytes) {
  const out = [];
  let p = 0;
  while (p < bytes.length) {
    assert.ok(p + 4 <= bytes.length, 'a whole length prefix');
    const n = bytes.readUInt32BE(p);
    assert.ok(p + 4 + n <= bytes.length, `frame at ${p}: ${n} bytes, ${bytes.length - p - 4} left`);
    const body = bytes.subarray(p + 4, p + 4 + n);
    const msg = decode(body, { useBigInt64: true });
    assert.ok(Buffer.from(encode(msg, { useBigInt64: true })).equals(body), `frame at ${p}: not as msgpack writes it`);
    out.push(msg);
    p += 4 + n;
  }
  return out;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sidespan-writer-'));
const immediate = () => new Promise((resolve) => setImmediate(resolve));

// A processor whose daemon is away: its frames stay in the writer's buffer, to look at.
// Not shut down (that waits for a FLUSHED): its socket and timers keep no process alive.
function offline(options = {}) {
  const processor = new SidespanSpanProcessor({ socketPath: path.join(tmp, 'none.sock'), ...options });
  const provider = new BasicTracerProvider({ spanProcessors: [processor] });
  return { processor, provider, tracer: provider.getTracer('t') };
}

const queued = (processor) => processor.writer.buf.subarray(0, processor.writer.pos);

test('each frame is its length, then its body; a frame past MAX_FRAME leaves no byte behind', async () => {
  const { processor, tracer } = offline();
  tracer.startSpan('before', { attributes: { n: 1, s: 'é😀' } }).end();
  tracer.startSpan('huge', { attributes: { blob: 'y'.repeat(2 << 20) } }).end(); // given up as soon as seen
  tracer.startSpan('huge in UTF-8', { attributes: { blob: 'é'.repeat(MAX_FRAME / 2) } }).end(); // seen at its end
  tracer.startSpan('after', { attributes: { n: 2 } }).end();
  await immediate();
  const st = processor.stats();
  assert.equal(st.droppedTooLarge, 2);
  assert.equal(st.dropped, 2);
  assert.equal(st.framesQueued, 2);
  assert.equal(st.queuedBytes, processor.writer.pos);
  const msgs = frames(queued(processor));
  assert.deepEqual(msgs.map((m) => [m[0], m[4]]), [[6, 'before'], [6, 'after']]);
  assert.deepEqual(msgs[0][7], { n: 1, s: 'é😀' });
  // A body of MAX_FRAME bytes goes (a fixarray, a str32 header, the string), one more does not.
  assert.equal(processor._enqueue(['x'.repeat(MAX_FRAME - 6)]), true);
  assert.equal(processor.writer.buf.readUInt32BE(st.queuedBytes), MAX_FRAME);
  assert.equal(processor._enqueue(['x'.repeat(MAX_FRAME - 5)]), false);
  assert.equal(processor._enqueue(['€'.repeat(MAX_FRAME / 3)]), false);
  assert.equal(processor.stats().droppedTooLarge, 4);
  assert.equal(processor.stats().queuedBytes, st.queuedBytes + 4 + MAX_FRAME);
  const all = frames(queued(processor));
  assert.equal(all.length, 3);
  assert.equal(all[2][0].length, MAX_FRAME - 6);
});

test('the queue bound drops a frame and leaves no byte of it behind; a FLUSH passes it', async () => {
  const bound = 4096;
  const { processor, tracer } = offline({ maxQueueBytes: bound });
  for (let i = 0; i < 200; i++) tracer.startSpan(`s${i}`, { attributes: { i, pad: 'p'.repeat(i) } }).end();
  await immediate();
  const st = processor.stats();
  assert.ok(st.dropped > 0, 'dropped at the bound');
  assert.equal(st.droppedTooLarge, 0);
  assert.equal(st.framesQueued + st.dropped, 200);
  assert.ok(st.queuedBytes <= bound);
  const msgs = frames(queued(processor));
  assert.equal(msgs.length, st.framesQueued);
  assert.deepEqual(msgs.map((m) => m[4]), Array.from({ length: msgs.length }, (_, i) => `s${i}`));

  // To the byte: 61 bytes queued of 64, then 7 more do not fit; a FLUSH (7 bytes) does.
  const small = offline({ maxQueueBytes: 64 }).processor;
  assert.equal(small._enqueue(['x'.repeat(54)]), true);
  assert.equal(small.stats().queuedBytes, 61);
  assert.equal(small._enqueue(['ab']), false);
  assert.equal(small.stats().dropped, 1);
  assert.equal(small.stats().queuedBytes, 61);
  small.forceFlush(10); // resolves after 10 ms; not awaited: its timer keeps no process alive
  assert.equal(small.stats().queuedBytes, 68);
  assert.deepEqual(frames(queued(small)), [['x'.repeat(54)], [7, 1]]);
});

test('frames handed to the socket arrive whole and in order, over many writes', async () => {
  const sockPath = path.join(tmp, 'fake.sock');
  let got = Buffer.alloc(0);
  let writes = 0;
  const server = net.createServer((c) => {
    let pending = Buffer.alloc(0);
    c.on('data', (d) => {
      writes++;
      got = Buffer.concat([got, d]);
      pending = Buffer.concat([pending, d]);
      // A FLUSH is answered, as the daemon does, once every frame before it is read.
      while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
        const m = decode(pending.subarray(4, 4 + pending.readUInt32BE(0)), { useBigInt64: true });
        pending = pending.subarray(4 + pending.readUInt32BE(0));
        if (m[0] === 7) c.write(encodeFrame([65, m[1]]));
      }
    });
  });
  await new Promise((resolve) => server.listen(sockPath, resolve));
  const processor = new SidespanSpanProcessor({ socketPath: sockPath, serviceName: 'fake' });
  const provider = new BasicTracerProvider({ spanProcessors: [processor] });
  const tracer = provider.getTracer('t');
  // The buffers handed to the socket come back once written (not before), to be written again.
  const w = processor.writer;
  let recycled = 0;
  w.recycle = (chunk) => {
    recycled++;
    FrameWriter.prototype.recycle.call(w, chunk);
  };
  const names = [];
  for (let batch = 0; batch < 40; batch++) {
    for (let i = 0; i < 50; i++) {
      const name = `b${batch}.s${i}`;
      names.push(name);
      tracer.startSpan(name, { attributes: { batch, pad: 'x'.repeat((batch * 997) % 3000) } }).end();
    }
    await immediate(); // one batch, one write
    if (batch % 3 === 0) await new Promise((resolve) => setTimeout(resolve, 2)); // the writes complete
  }
  await processor.forceFlush(5000);
  const st = processor.stats();
  const msgs = frames(got);
  assert.equal(msgs[0][0], 1, 'HELLO first');
  assert.equal(msgs[0][2]['service.name'], 'fake');
  assert.equal(got.length - 4 - got.readUInt32BE(0), st.bytesSent, 'bytesSent: every byte but HELLO');
  assert.equal(msgs.length - 1, st.framesSent);
  assert.equal(st.framesSent, st.framesQueued);
  assert.equal(st.queuedBytes, 0);
  assert.deepEqual(msgs.filter((m) => m[0] === 6).map((m) => m[4]), names);
  assert.ok(writes > 10, `${writes} reads`);
  assert.ok(recycled > 10, `${recycled} buffers back`);
  await provider.shutdown();
  server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});
