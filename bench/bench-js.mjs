#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// What the JS span processor costs the calling thread (issue 12), beside the
// OpenTelemetry JS SDK's own BatchSpanProcessor with its OTLP/HTTP protobuf
// exporter: the 30-span run of examples/js/agent.mjs with 1 KiB of content in
// each chat span's messages, ns per span, median and p99 over rounds. Both
// export for real: sidespan to a sidespand started here (file exporter to
// /dev/null), the SDK to tests/otlp_receiver.py. Prints figures; asserts nothing.
//
//   node bench/bench-js.mjs --sidespand build/daemon/sidespand
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SidespanSpanProcessor } from '@sidespan/otel-processor';
import { agentRun } from '../examples/js/agent.mjs';

const argv = process.argv.slice(2);
const opt = (k, d) => (argv.includes(k) ? argv[argv.indexOf(k) + 1] : d);
const SRC = path.resolve(import.meta.dirname, '..');
const rounds = Number(opt('--rounds', '30'));
const runs = Number(opt('--runs', '20'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sidespan-bench-js-'));
const procs = [];

async function until(pred) {
  while (!pred()) await sleep(20);
}

async function measure(processor) {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'bench-js' }),
    spanProcessors: [processor],
  });
  const tracer = provider.getTracer('bench');
  const content = 'x'.repeat(1024);
  agentRun(tracer, 0, { content });
  await provider.forceFlush();
  const perSpan = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let n = 0; n < runs; n++) agentRun(tracer, n, { content });
    perSpan.push(Number(process.hrtime.bigint() - t0) / (runs * 30));
    await provider.forceFlush(); // not timed
  }
  await provider.shutdown();
  perSpan.sort((a, b) => a - b);
  return { median: perSpan[Math.floor(perSpan.length / 2)], p99: perSpan[Math.min(perSpan.length - 1, Math.floor(0.99 * perSpan.length))] };
}

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const sock = path.join(tmp, 'd.sock');
procs.push(spawn(opt('--sidespand', path.join(SRC, 'build/daemon/sidespand')),
  ['--socket', sock, '--exporter', 'file', '--file', '/dev/null', '--log-level', 'warning'], { stdio: 'inherit' }));
const portFile = path.join(tmp, 'port');
procs.push(spawn(process.env.PYTHON3 || '/usr/bin/python3', [path.join(SRC, 'tests/otlp_receiver.py'), '--port-file', portFile],
  { env: { ...process.env, PROTO_DIR: path.join(SRC, 'proto') }, stdio: 'inherit' }));
await until(() => fs.existsSync(sock) && fs.existsSync(portFile));
const port = fs.readFileSync(portFile, 'utf8').trim();
try {
  const side = await measure(new SidespanSpanProcessor({ socketPath: sock }));
  const sdk = await measure(new BatchSpanProcessor(new OTLPTraceExporter({ url: `http://127.0.0.1:${port}/v1/traces` }),
    { maxQueueSize: 100000, maxExportBatchSize: 512 }));
  console.log(`node ${process.version}`);
  console.log(`SidespanSpanProcessor:                 ${side.median.toFixed(0)} ns/span median, ${side.p99.toFixed(0)} p99 of rounds`);
  console.log(`BatchSpanProcessor + OTLP/HTTP proto:  ${sdk.median.toFixed(0)} ns/span median, ${sdk.p99.toFixed(0)} p99 of rounds`);
} finally {
  for (const p of procs) p.kill('SIGTERM');
  fs.rmSync(tmp, { recursive: true, force: true });
}
