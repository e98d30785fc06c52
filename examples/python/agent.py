#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""An agent loop traced with the sidespan Python package: each run is the
30-span shape of TRACE-MODEL.md (agent.run, pipeline.execute, 24 steps, and
under model_execution a chat, two tool calls and a chat), as the C demo
agent (tools/agent-run.c) sends it.

    SIDESPAN_SOCKET=/run/sidespan/sidespan.sock python3 examples/python/agent.py --runs 3
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "client", "python"))
import sidespan  # noqa: E402

STEPS = [
    ("initialization", "Initialize the run context"),
    ("storage_connection", "Connect the storage backend"),
    ("cache_check", "Look for a cached answer"),
    ("llm_manager", "Prepare the LLM manager"),
    ("model_selection", "Select the model"),
    ("tool_setup", "Register the tools"),
    ("memory_prepare", "Load conversation memory"),
    ("system_prompt_build", "Build the system prompt"),
    ("context_build", "Build the task context"),
    ("chat_history", "Attach the chat history"),
    ("user_policy", "Apply the user input policy"),
    ("user_input_build", "Build the user input"),
    ("message_assembly", "Assemble the model messages"),
    ("call_manager_setup", "Set up the call manager"),
    ("model_execution", "Run the model and its tool calls"),
    ("response_processing", "Process the model response"),
    ("reflection", "Reflect on the answer"),
    ("task_management", "Update the task state"),
    ("reliability", "Apply the reliability layer"),
    ("agent_policy", "Apply the agent output policy"),
    ("cache_storage", "Store the answer in the cache"),
    ("finalization", "Finalize the run"),
    ("memory_save", "Save conversation memory"),
    ("call_management", "Close the call manager"),
]
QUESTION = "What is the weather in Paris and the time in Tokyo?"
ANSWER = "Paris: 18C and cloudy. Tokyo: 21:04."


def chat(step, model, turn, content="", latency=0.0):
    messages = ([{"role": "user", "parts": [{"type": "text", "content": QUESTION + content}]}]
                if turn == 0 else
                [{"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1",
                                             "response": "18C, cloudy" + content}]}])
    with step.chat(provider="openai", model=model, temperature=0.2, top_p=1.0, max_tokens=1024,
                   server_address="api.openai.com", server_port=443,
                   input_messages=messages,
                   system_instructions=[{"type": "text",
                                         "content": "You are a helpful agent."}]) as c:
        time.sleep(latency / 4)
        if turn == 0:
            c.first_token()
        time.sleep(latency)
        c.result(input_tokens=412 if turn == 0 else 538, output_tokens=46 if turn == 0 else 71,
                 cache_read_tokens=0 if turn == 0 else 384,
                 finish_reasons=["tool_calls"] if turn == 0 else ["stop"],
                 response_id="chatcmpl-demo-%d" % (turn + 1), response_model=model,
                 output_messages=[{"role": "assistant", "parts": [
                     {"type": "text", "content": ANSWER + content}]}])


def tool(step, i, latency=0.0):
    names, args = ["get_weather", "get_time"], ['{"city":"Paris"}', '{"city":"Tokyo"}']
    results = ['{"temp_c":18,"sky":"cloudy"}', '{"time":"21:04"}']
    with step.tool(names[i], "call_%d" % (i + 1), arguments=args[i]) as t:
        time.sleep(latency / 2)
        t.result(results[i])


def agent_run(provider, n, model="gpt-4o", content="", latency=0.0, fail=False):
    """One run of 30 spans; returns the root's traceparent."""
    with provider.agent_run(name="demo-agent", model=model, run_id="run-%d" % n,
                            user_id="user-42", session_id="session-%d" % (n % 4),
                            input=QUESTION) as run:
        tp = run.traceparent()
        with run.pipeline(total_steps=len(STEPS)) as pipeline:
            for name, description in STEPS:
                with pipeline.step(name, description) as step:
                    if name == "model_execution":
                        chat(step, model, 0, content, latency)
                        tool(step, 0, latency)
                        if fail:
                            raise RuntimeError("time service timed out")
                        tool(step, 1, latency)
                        chat(step, model, 1, content, latency)
        run.result(output=ANSWER, input_tokens=950, output_tokens=117, cache_read_tokens=384,
                   requests=2, tool_call_count=2, executed_steps=len(STEPS), is_streaming=False)
    return tp


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--socket", default=None)
    ap.add_argument("--service", default="demo-agent")
    ap.add_argument("--latency-ms", type=float, default=0)
    args = ap.parse_args()
    provider = sidespan.TracingProvider(socket=args.socket, service_name=args.service)
    for n in range(1, args.runs + 1):
        print("run %d traceparent %s" % (n, agent_run(provider, n,
                                                      latency=args.latency_ms / 1000)))
    ok = provider.flush(5.0)
    print("stats:", provider.stats(), "flush:", "ok" if ok else "not confirmed")
    provider.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
