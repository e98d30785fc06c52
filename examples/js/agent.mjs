#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// An agent using the real OpenTelemetry JS SDK, exported through sidespan: one
// SidespanSpanProcessor on the tracer provider is all it takes. Each run is the
// 30-span shape of TRACE-MODEL.md, as the C demo agent (tools/agent-run.c) sends it.
//
//   node examples/js/agent.mjs [--socket PATH] [--runs N]
import { trace, context, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { SidespanSpanProcessor } from '@sidespan/otel-processor';

export const STEPS = [
  ['initialization', 'Initialize the run context'],
  ['storage_connection', 'Connect the storage backend'],
  ['cache_check', 'Look for a cached answer'],
  ['llm_manager', 'Prepare the LLM manager'],
  ['model_selection', 'Select the model'],
  ['tool_setup', 'Register the tools'],
  ['memory_prepare', 'Load conversation memory'],
  ['system_prompt_build', 'Build the system prompt'],
  ['context_build', 'Build the task context'],
  ['chat_history', 'Attach the chat history'],
  ['user_policy', 'Apply the user input policy'],
  ['user_input_build', 'Build the user input'],
  ['message_assembly', 'Assemble the model messages'],
  ['call_manager_setup', 'Set up the call manager'],
  ['model_execution', 'Run the model and its tool calls'],
  ['response_processing', 'Process the model response'],
  ['reflection', 'Reflect on the answer'],
  ['task_management', 'Update the task state'],
  ['reliability', 'Apply the reliability layer'],
  ['agent_policy', 'Apply the agent output policy'],
  ['cache_storage', 'Store the answer in the cache'],
  ['finalization', 'Finalize the run'],
  ['memory_save', 'Save conversation memory'],
  ['call_management', 'Close the call manager'],
];
const QUESTION = 'What is the weather in Paris and the time in Tokyo?';
const ANSWER = 'Paris: 18C and cloudy. Tokyo: 21:04.';

// fn(span) inside span, as the current context; the span ends after it (ERROR if it threw).
function within(tracer, name, kind, attributes, fn) {
  return tracer.startActiveSpan(name, { kind, attributes }, (span) => {
    try {
      const r = fn(span);
      span.setStatus({ code: SpanStatusCode.OK });
      return r;
    } catch (e) {
      span.recordException(e);
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(e.message || e) });
      throw e;
    } finally {
      span.end();
    }
  });
}

function chat(tracer, model, turn, content) {
  const input = turn === 0
    ? [{ role: 'user', parts: [{ type: 'text', content: QUESTION + content }] }]
    : [{ role: 'tool', parts: [{ type: 'tool_call_response', id: 'call_1', response: '18C, cloudy' + content }] }];
  within(tracer, `chat ${model}`, SpanKind.CLIENT, {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': model,
    'gen_ai.request.temperature': 0.2,
    'gen_ai.request.top_p': 1.0,
    'gen_ai.request.max_tokens': 1024,
    'server.address': 'api.openai.com',
    'server.port': 443,
    'gen_ai.input.messages': JSON.stringify(input),
    'gen_ai.system_instructions': JSON.stringify([{ type: 'text', content: 'You are a helpful agent.' }]),
  }, (span) => {
    if (turn === 0) span.addEvent('gen_ai.first_token');
    span.setAttributes({
      'gen_ai.response.model': model,
      'gen_ai.response.id': `chatcmpl-demo-${turn + 1}`,
      'gen_ai.response.finish_reasons': [turn === 0 ? 'tool_calls' : 'stop'],
      'gen_ai.usage.input_tokens': turn === 0 ? 412 : 538,
      'gen_ai.usage.output_tokens': turn === 0 ? 46 : 71,
      'gen_ai.usage.cache_read.input_tokens': turn === 0 ? 0 : 384,
      'gen_ai.output.messages': JSON.stringify([{ role: 'assistant', parts: [{ type: 'text', content: ANSWER + content }] }]),
    });
  });
}

function tool(tracer, i, fail) {
  const names = ['get_weather', 'get_time'];
  const args = ['{"city":"Paris"}', '{"city":"Tokyo"}'];
  const results = ['{"temp_c":18,"sky":"cloudy"}', '{"time":"21:04"}'];
  within(tracer, 'tool.execute', SpanKind.INTERNAL, {
    'upsonic.tool.name': names[i],
    'upsonic.tool.call_id': `call_${i + 1}`,
    'gen_ai.tool.call.arguments': args[i],
  }, (span) => {
    if (fail) throw new Error('time service timed out');
    span.setAttributes({ 'upsonic.tool.success': true, 'gen_ai.tool.call.result': results[i] });
  });
}

/** One agent run of 30 spans; returns its trace id. */
export function agentRun(tracer, n, { model = 'gpt-4o', content = '', fail = false } = {}) {
  return within(tracer, 'agent.run', SpanKind.SERVER, {
    'upsonic.agent.name': 'demo-agent',
    'upsonic.agent.model': model,
    'upsonic.run_id': `run-${n}`,
    'user.id': 'user-42',
    'session.id': `session-${n % 4}`,
    'upsonic.input': QUESTION,
  }, (run) => {
    within(tracer, 'pipeline.execute', SpanKind.INTERNAL, {
      'upsonic.pipeline.total_steps': STEPS.length, 'upsonic.pipeline.streaming': false,
    }, () => {
      for (const [name, description] of STEPS) {
        within(tracer, `pipeline.step.${name}`, SpanKind.INTERNAL, {
          'upsonic.step.name': name, 'upsonic.step.description': description,
        }, (step) => {
          try {
            if (name === 'model_execution') {
              chat(tracer, model, 0, content);
              tool(tracer, 0, false);
              tool(tracer, 1, fail);
              chat(tracer, model, 1, content);
            }
            step.setAttribute('upsonic.step.status', 'COMPLETED');
          } catch (e) {
            step.setAttribute('upsonic.step.status', 'ERROR');
            throw e;
          }
        });
      }
    });
    run.setAttributes({
      'upsonic.status': 'COMPLETED', 'upsonic.output': ANSWER,
      'gen_ai.usage.input_tokens': 950, 'gen_ai.usage.output_tokens': 117,
      'upsonic.tool_call_count': 2, 'upsonic.pipeline.executed_steps': STEPS.length,
    });
    return run.spanContext().traceId;
  });
}

export function makeTracer(options = {}) {
  // startActiveSpan nests through the context manager: without one every span is a root.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const processor = new SidespanSpanProcessor(options);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName || 'js-agent' }),
    spanProcessors: [processor],
  });
  trace.setGlobalTracerProvider(provider);
  return { provider, processor, tracer: provider.getTracer('demo-agent', '0.1.0') };
}

async function main() {
  const argv = process.argv.slice(2);
  const opt = (k, d) => (argv.includes(k) ? argv[argv.indexOf(k) + 1] : d);
  const { provider, processor, tracer } = makeTracer({ socketPath: opt('--socket'), serviceName: 'js-agent' });
  const runs = Number(opt('--runs', '1'));
  for (let n = 1; n <= runs; n++) console.log(`run ${n} trace ${agentRun(tracer, n)}`);
  await provider.forceFlush();
  console.log('stats', JSON.stringify(processor.stats()));
  await provider.shutdown();
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
