// SPDX-License-Identifier: MIT
// The OpenTelemetry JS span processor (issue 12) against the real sidespand and
// the real OTLP/HTTP receiver (tests/otlp_receiver.py, which decodes every
// request): the 30-span run of examples/js/agent.mjs, errors, forceFlush, an
// absent daemon, and frames the daemon's decoder accepts (no protocol errors).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { encode, decode } from '@msgpack/msgpack';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { context } from '@opentelemetry/api';
import { SidespanSpanProcessor } from '@sidespan/otel-processor';
import { agentRun, STEPS } from '../../examples/js/agent.mjs';

const SRC = process.env.SIDESPAN_SOURCE_ROOT || path.resolve(import.meta.dirname, '../..');
const SIDESPAND = process.env.SIDESPAND || path.join(SRC, 'build/daemon/sidespand');
const PYTHON3 = process.env.PYTHON3 || '/usr/bin/python3';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sidespan-js-'));
const procs = [];
let rxPort;
let sock;

async function waitFor(pred, what, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

before(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const portFile = path.join(tmp, 'port');
  procs.push(spawn(PYTHON3, [path.join(SRC, 'tests/otlp_receiver.py'), '--port-file', portFile],
    { env: { ...process.env, PROTO_DIR: path.join(SRC, 'proto') }, stdio: 'inherit' }));
  rxPort = Number(await waitFor(() => fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8').trim(), 'receiver'));
  sock = path.join(tmp, 'd.sock');
  const log = fs.openSync(path.join(tmp, 'd.log'), 'w');
  procs.push(spawn(SIDESPAND, ['--socket', sock, '--endpoint', `http://127.0.0.1:${rxPort}/v1/traces`,
    '--batch-delay-ms', '50'], { stdio: ['ignore', 'ignore', log] }));
  await waitFor(() => fs.existsSync(sock), 'sidespand');
});

after(() => {
  for (const p of procs) p.kill('SIGTERM');
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function received() {
  const r = await fetch(`http://127.0.0.1:${rxPort}/_sidespan/spans`);
  return r.json();
}

async function reset() {
  await fetch(`http://127.0.0.1:${rxPort}/_sidespan/reset`, { method: 'POST' });
}

// STATS over the daemon's socket, written from DESIGN.md section 3.
function stats() {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(sock);
    let buf = Buffer.alloc(0);
    c.on('connect', () => {
      const body = encode([8, 1]);
      const f = Buffer.alloc(4 + body.length);
      f.writeUInt32BE(body.length);
      Buffer.from(body).copy(f, 4);
      c.write(f);
    });
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const m = decode(buf.subarray(4, 4 + buf.readUInt32BE(0)));
        c.end();
        resolve(m[2]);
      }
    });
    c.on('error', reject);
  });
}

function makeProvider(options) {
  const processor = new SidespanSpanProcessor(options);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'js-agent', 'deployment.environment': 'test' }),
    spanProcessors: [processor],
  });
  return { provider, processor, tracer: provider.getTracer('t') };
}

function tree(spans) {
  const kids = new Map();
  for (const s of spans) {
    const k = s.parent_span_id;
    if (!kids.has(k)) kids.set(k, []);
    kids.get(k).push(s);
  }
  for (const v of kids.values()) v.sort((a, b) => Number(BigInt(a.start_time_unix_nano) - BigInt(b.start_time_unix_nano)));
  const out = [];
  const walk = (p, depth) => {
    for (const s of kids.get(p) || []) {
      out.push([depth, s.name, s.kind]);
      walk(s.span_id, depth + 1);
    }
  };
  walk('', 0);
  return out;
}

test('the 30-span run arrives whole, as the C demo sends it', async () => {
  await reset();
  const { provider, processor, tracer } = makeProvider({ socketPath: sock });
  const traceId = agentRun(tracer, 1, { content: 'x'.repeat(1024) });
  await provider.forceFlush();
  const spans = await waitFor(async () => { const s = await received(); return s.length >= 30 && s; }, '30 spans');
  assert.equal(spans.length, 30);
  assert.deepEqual(new Set(spans.map((s) => s.trace_id)), new Set([traceId]));
  const want = [[0, 'agent.run', 2], [1, 'pipeline.execute', 1]];
  for (const [name] of STEPS) {
    want.push([2, `pipeline.step.${name}`, 1]);
    if (name === 'model_execution') {
      want.push([3, 'chat gpt-4o', 3], [3, 'tool.execute', 1], [3, 'tool.execute', 1], [3, 'chat gpt-4o', 3]);
    }
  }
  assert.deepEqual(tree(spans), want);
  const run = spans.find((s) => s.name === 'agent.run');
  assert.equal(run.service_name, 'js-agent');
  assert.equal(run.resource['deployment.environment'], 'test');
  assert.equal(run.resource['sdk.name'], undefined); // a protocol option, not an attribute
  assert.equal(run.scope_name, 'sidespan-js');
  assert.equal(run.attributes['upsonic.agent.name'], 'demo-agent');
  assert.equal(run.attributes['gen_ai.usage.input_tokens'], 950);
  assert.ok(run.attributes['upsonic.total_cost'] > 0, 'the daemon prices the run');
  assert.equal(run.attributes['upsonic.usage.requests'], 2, 'the daemon counted its chats');
  const chat = spans.find((s) => s.name === 'chat gpt-4o');
  assert.equal(chat.attributes['gen_ai.request.model'], 'gpt-4o');
  assert.deepEqual(chat.attributes['gen_ai.response.finish_reasons'], ['tool_calls']);
  assert.ok(chat.attributes['gen_ai.input.messages'].length > 1024);
  assert.equal(chat.events[0].name, 'gen_ai.first_token');
  assert.equal(chat.status_code, 1);
  const st = await stats();
  assert.equal(st.protocol_errors, 0);
  assert.equal(processor.stats().dropped, 0);
  await provider.shutdown();
});

test('an integer attribute past 32 bits arrives as an integer, not a float', async () => {
  await reset();
  const { provider, tracer } = makeProvider({ socketPath: sock });
  const span = tracer.startSpan('tool.execute');
  span.setAttribute('app.started_ms', 1733500000123);
  span.setAttribute('app.offset', -5000000000);
  span.setAttribute('app.ratio', 0.25);
  span.end();
  await provider.forceFlush();
  await waitFor(async () => (await received()).length >= 1, 'the span');
  // The receiver writes an OTLP intValue as a JSON integer and a doubleValue with a point.
  const text = await (await fetch(`http://127.0.0.1:${rxPort}/_sidespan/spans`)).text();
  assert.match(text, /"app\.started_ms": 1733500000123[,}]/);
  assert.match(text, /"app\.offset": -5000000000[,}]/);
  assert.match(text, /"app\.ratio": 0\.25[,}]/);
  await provider.shutdown();
});

test('an error ends its spans with ERROR and an exception event', async () => {
  await reset();
  const { provider, tracer } = makeProvider({ socketPath: sock });
  assert.throws(() => agentRun(tracer, 2, { fail: true }), /time service timed out/);
  await provider.forceFlush();
  const spans = await waitFor(async () => { const s = await received(); return s.length >= 19 && s; }, 'spans');
  for (const name of ['agent.run', 'pipeline.execute', 'pipeline.step.model_execution', 'tool.execute']) {
    const s = spans.filter((x) => x.name === name).at(-1);
    assert.equal(s.status_code, 2, name);
    assert.match(s.status_message, /time service timed out/);
  }
  const failed = spans.filter((x) => x.name === 'tool.execute').at(-1);
  const ev = failed.events.find((e) => e.name === 'exception');
  assert.equal(ev.attributes['exception.message'], 'time service timed out');
  await provider.shutdown();
});

test('forceFlush resolves once the daemon has the spans', async () => {
  await reset();
  const { provider, tracer } = makeProvider({ socketPath: sock });
  for (let i = 0; i < 20; i++) tracer.startSpan(`s${i}`).end();
  await provider.forceFlush();
  // FLUSHED: every span is in the exporter's queue; the batch goes within its delay.
  const spans = await waitFor(async () => { const s = await received(); return s.length >= 20 && s; }, 'spans', 3000);
  assert.equal(spans.length, 20);
  await provider.shutdown();
});

test('an absent daemon costs a counter, never an exception', async () => {
  const { provider, processor, tracer } = makeProvider({ socketPath: path.join(tmp, 'none.sock'), maxQueueBytes: 64 << 10 });
  for (let i = 0; i < 300; i++) agentRun(tracer, i);
  await provider.forceFlush(200); // resolves (after its timeout), never rejects
  const st = processor.stats();
  assert.equal(st.connected, false);
  assert.equal(st.spans, 9000);
  assert.ok(st.dropped > 0, 'the bounded queue dropped, counted');
  assert.ok(st.queuedBytes <= (64 << 10) + 64, 'bounded (a FLUSH may pass the bound)');
  await provider.shutdown();
});

test('a span past the frame limit is dropped alone', async () => {
  await reset();
  const { provider, processor, tracer } = makeProvider({ socketPath: sock });
  tracer.startSpan('huge', { attributes: { blob: 'y'.repeat(2 << 20) } }).end();
  tracer.startSpan('fine').end();
  await provider.forceFlush();
  const spans = await waitFor(async () => { const s = await received(); return s.length >= 1 && s; }, 'spans');
  assert.deepEqual(spans.map((s) => s.name), ['fine']);
  assert.equal(processor.stats().droppedTooLarge, 1); // a leaf, sent whole at its end
  assert.equal((await stats()).protocol_errors, 0);
  await provider.shutdown();
});

test('the global tracer provider works through the OpenTelemetry API', async () => {
  await reset();
  const { provider } = makeProvider({ socketPath: sock });
  trace.setGlobalTracerProvider(provider);
  trace.getTracer('api').startActiveSpan('via-api', (s) => s.end());
  await provider.forceFlush();
  const spans = await waitFor(async () => { const s = await received(); return s.length >= 1 && s; }, 'spans');
  assert.equal(spans[0].name, 'via-api');
  trace.disable();
  await provider.shutdown();
});
