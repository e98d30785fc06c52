/* SPDX-License-Identifier: MIT */
/*
 * The smallest useful agent trace: one run with one model call, configured
 * from the environment (UPSONIC_OTEL_ENABLED=1 SIDESPAN_SOCKET=...). README.md
 * quotes this file; it is built so the quote cannot rot.
 */
#include <sidespan.h>
#include <stdio.h>

int main(void)
{
        static const char *const reasons[] = {"stop"};
        sidespan_chat_result chat_result;
        sidespan_run_result run_result;
        sidespan_span *run, *chat;
        sidespan_client *c;
        int r;

        r = sidespan_client_open_env(&c); /* a no-op client unless UPSONIC_OTEL_ENABLED */
        if (r < 0) {
                fprintf(stderr, "quickstart: %s\n", sidespan_strerror(r));
                return 1;
        }
        sidespan_agent_run_start(c, "support-bot", "gpt-4o", "run-1", "user-7", NULL,
                                 "What is the weather in Paris?", &run);
        sidespan_chat_start(c, run, "openai", "gpt-4o", NULL, &chat);
        sidespan_chat_first_token(chat);

        sidespan_chat_result_init(&chat_result);
        chat_result.input_tokens = 412;
        chat_result.output_tokens = 46;
        chat_result.finish_reasons = reasons;
        chat_result.n_finish_reasons = 1;
        sidespan_chat_end(chat, &chat_result);

        sidespan_run_result_init(&run_result);
        run_result.output = "Sunny, 21 C.";
        sidespan_agent_run_end(run, &run_result);

        sidespan_client_close(&c); /* flushes; safe to call twice */
        return 0;
}
