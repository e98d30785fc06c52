#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The OpenTelemetry JS SDK in process (BatchSpanProcessor with the OTLP/HTTP
// protobuf exporter) beside sidespan (the JS span processor handing spans to a
// sidespand started here), on the 30-span agent run of examples/js/agent.mjs
// with 1 KiB of content in each chat span's messages, both exporting OTLP/HTTP
// protobuf to the same receiver (--endpoint, or tests/otlp_receiver.py
// started here). For each: the calling thread's ns per span (median and p99
// over rounds), and the total CPU per span, including the export (flushed
// every round): node's own CPU, plus sidespand's for sidespan, after warm-up
// rounds that are not counted. The ratios are printed. Prints figures; asserts
// nothing.
//
//   node --expose-gc bench/bench-js.mjs --sidespand build/daemon/sidespand [--endpoint URL]
//        [--rounds 30] [--runs 20] [--warmup 10]
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
const warmup = Number(opt('--warmup', '10'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sidespan-bench-js-'));
const procs = [];

async function until(pred) {
  while (!pred()) await sleep(20);
}

// CPU seconds a process has used (user + system), from /proc.
function procCpu(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ ticks
}

async function measure(processor, daemonPid) {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'bench-js' }),
    spanProcessors: [processor],
  });
  const tracer = provider.getTracer('bench');
  const content = 'x'.repeat(1024);
  // Warm-up rounds, not counted: the first processor measured would otherwise pay for
  // compiling the SDK's own span code, which both share (it moved the CPU ratio from 0.65x
  // to 1.21x when the order was swapped).
  for (let r = 0; r < warmup; r++) {
    for (let n = 0; n < runs; n++) agentRun(tracer, n, { content });
    await provider.forceFlush();
  }
  if (globalThis.gc) globalThis.gc();
  const perSpan = [];
  const cpu0 = process.cpuUsage();
  const d0 = daemonPid ? procCpu(daemonPid) : 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let n = 0; n < runs; n++) agentRun(tracer, n, { content });
    perSpan.push(Number(process.hrtime.bigint() - t0) / (runs * 30));
    await provider.forceFlush(); // not timed, but its CPU is counted
  }
  const cpu = process.cpuUsage(cpu0);
  await provider.shutdown();
  // sidespand exports what the flush handed it a moment later: let it finish.
  if (daemonPid) await sleep(1000);
  const spans = rounds * runs * 30;
  const nodeCpu = (cpu.user + cpu.system) / 1e6;
  const daemonCpu = daemonPid ? procCpu(daemonPid) - d0 : 0;
  perSpan.sort((a, b) => a - b);
  return {
    median: perSpan[Math.floor(perSpan.length / 2)],
    p99: perSpan[Math.min(perSpan.length - 1, Math.floor(0.99 * perSpan.length))],
    cpuNs: ((nodeCpu + daemonCpu) / spans) * 1e9,
    nodeCpuNs: (nodeCpu / spans) * 1e9,
    daemonCpuNs: (daemonCpu / spans) * 1e9,
  };
}

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
let endpoint = opt('--endpoint', null);
if (!endpoint) {
  const portFile = path.join(tmp, 'port');
  procs.push(spawn(process.env.PYTHON3 || '/usr/bin/python3', [path.join(SRC, 'tests/otlp_receiver.py'), '--port-file', portFile],
    { env: { ...process.env, PROTO_DIR: path.join(SRC, 'proto') }, stdio: 'inherit' }));
  await until(() => fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8').trim());
  endpoint = `http://127.0.0.1:${fs.readFileSync(portFile, 'utf8').trim()}/v1/traces`;
}
const sock = path.join(tmp, 'd.sock');
const daemon = spawn(opt('--sidespand', path.join(SRC, 'build/daemon/sidespand')),
  ['--socket', sock, '--endpoint', endpoint, '--log-level', 'warning'], { stdio: 'inherit' });
procs.push(daemon);
await until(() => fs.existsSync(sock));
try {
  const side = await measure(new SidespanSpanProcessor({ socketPath: sock }), daemon.pid);
  const sdk = await measure(new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint }),
    { maxQueueSize: 100000, maxExportBatchSize: 512 }));
  const row = (name, m) => console.log(`${name.padEnd(40)} ${m.median.toFixed(0).padStart(7)} ${m.p99.toFixed(0).padStart(7)} ` +
    `${m.cpuNs.toFixed(0).padStart(9)} ${m.nodeCpuNs.toFixed(0).padStart(9)} ${m.daemonCpuNs.toFixed(0).padStart(9)}`);
  console.log(`node ${process.version}, ${rounds} rounds of ${runs} runs (${rounds * runs * 30} spans) after ${warmup} ` +
    `not counted, to ${endpoint}`);
  console.log(`${''.padEnd(40)} ${'ns/span'.padStart(7)} ${'p99'.padStart(7)} ${'CPU ns'.padStart(9)} ${'in node'.padStart(9)} ${'daemon'.padStart(9)}`);
  row('sidespan (SidespanSpanProcessor)', side);
  row('OTel JS SDK (BatchSpanProcessor, proto)', sdk);
  console.log(`ratio SDK / sidespan: calling thread ${(sdk.median / side.median).toFixed(2)}x, ` +
    `total CPU ${(sdk.cpuNs / side.cpuNs).toFixed(2)}x`);
} finally {
  for (const p of procs) p.kill('SIGTERM');
  fs.rmSync(tmp, { recursive: true, force: true });
}
