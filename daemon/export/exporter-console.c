/* SPDX-License-Identifier: MIT */
#include "export/exporter-console.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/hashmap.h"
#include "base/log.h"
#include "export/writer.h"
#include "ss-id.h"
#include "ss-macro.h"

#define MAX_DEPTH_SHOWN 24
#define MAX_STR_SHOWN   60

/* One trace's text: a deep trace of long names stays well under this. */
#define CONSOLE_MAX_TEXT ((size_t)16 << 20)

typedef struct console_exporter {
        ss_exporter base;
        ss_writer writer;
} console_exporter;

/* The attributes worth a glance, in the order shown. */
static const char *const key_attrs[] = {
    "upsonic.agent.name",         "upsonic.status",
    "gen_ai.request.model",       "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens", "gen_ai.response.finish_reasons",
    "upsonic.total_cost",         "upsonic.tool_call_count",
    "upsonic.tool.name",          "upsonic.tool.success",
    "upsonic.step.status",        "sidespan.orphaned",
};

static const char *kind_name(unsigned kind)
{
        static const char *const names[] = {"", "", "server", "client", "producer", "consumer"};

        return kind < SS_ELEMENTSOF(names) ? names[kind] : "";
}

static void print_duration(ss_buf *out, uint64_t ns)
{
        if (ns < 1000000)
                ss_buf_printf(out, "%.0f us", (double)ns / 1e3);
        else if (ns < 1000000000)
                ss_buf_printf(out, "%.1f ms", (double)ns / 1e6);
        else
                ss_buf_printf(out, "%.3f s", (double)ns / 1e9);
}

static void print_value(ss_buf *out, const msgpack_object *v)
{
        switch (v->type) {
        case MSGPACK_OBJECT_STR: {
                int n = v->via.str.size > MAX_STR_SHOWN ? MAX_STR_SHOWN : (int)v->via.str.size;

                ss_buf_printf(out, "\"%.*s%s\"", n, v->via.str.ptr,
                              v->via.str.size > MAX_STR_SHOWN ? "..." : "");
                break;
        }
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
                ss_buf_printf(out, "%" PRIu64, v->via.u64);
                break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
                ss_buf_printf(out, "%" PRId64, v->via.i64);
                break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
                ss_buf_printf(out, "%.6g", v->via.f64);
                break;
        case MSGPACK_OBJECT_BOOLEAN:
                ss_buf_printf(out, "%s", v->via.boolean ? "true" : "false");
                break;
        case MSGPACK_OBJECT_ARRAY:
                ss_buf_printf(out, "[");
                for (uint32_t i = 0; i < v->via.array.size; i++) {
                        if (i)
                                ss_buf_printf(out, ", ");
                        print_value(out, &v->via.array.ptr[i]);
                }
                ss_buf_printf(out, "]");
                break;
        default:
                ss_buf_printf(out, "{...}");
                break;
        }
}

/* The tree's left margin: one column per ancestor, open while that ancestor has siblings to come.
 */
static void print_prefix(ss_buf *out, const bool *last, unsigned depth)
{
        unsigned shown = depth > MAX_DEPTH_SHOWN ? MAX_DEPTH_SHOWN : depth;

        ss_buf_printf(out, "  ");
        if (depth == 0)
                return;
        for (unsigned d = 1; d < shown; d++)
                ss_buf_printf(out, "%s", last[d] ? "   " : "│  ");
        ss_buf_printf(out, "%s", last[shown] ? "└─ " : "├─ ");
}

static void print_span(ss_buf *out, const ss_span *s, const bool *last, unsigned depth)
{
        print_prefix(out, last, depth);
        ss_buf_printf(out, "%.*s", (int)s->name.size, s->name.ptr);
        if (*kind_name(s->kind))
                ss_buf_printf(out, " [%s]", kind_name(s->kind));
        ss_buf_printf(out, "  ");
        print_duration(out, s->end_ns - s->start_ns);
        if (s->status_code == SS_STATUS_ERROR)
                ss_buf_printf(out, "  ERROR%s%.*s", s->status_msg.size ? ": " : "",
                              (int)s->status_msg.size, s->status_msg.ptr);
        for (size_t i = 0; i < SS_ELEMENTSOF(key_attrs); i++) {
                const msgpack_object *v = ss_attrs_get(&s->attrs, key_attrs[i]);

                if (!v)
                        continue;
                ss_buf_printf(out, "  %s=", key_attrs[i]);
                print_value(out, v);
        }
        ss_buf_printf(out, "\n");
}

static int by_start(const void *a, const void *b)
{
        const ss_span *x = *(ss_span *const *)a, *y = *(ss_span *const *)b;

        return x->start_ns < y->start_ns ? -1 : x->start_ns > y->start_ns;
}

typedef struct tree {
        ss_span **spans; /* sorted by start time */
        size_t *first;   /* first child index + 1, 0 = none */
        size_t *last;    /* last child index + 1 */
        size_t *next;    /* next sibling index + 1 */
        bool *child;     /* has a parent in this trace */
} tree;

/* Link children to parents in start order; a span whose parent is not here is a root. */
static int tree_build(tree *t, size_t n)
{
        ss_map index;
        int r = 0;

        qsort(t->spans, n, sizeof(*t->spans), by_start);
        ss_map_init(&index, SS_SPAN_ID_LEN);
        for (size_t i = 0; i < n && r == 0; i++)
                r = ss_map_put(&index, t->spans[i]->span_id, (void *)(uintptr_t)(i + 1));
        for (size_t i = 0; i < n && r == 0; i++) {
                const ss_span *s = t->spans[i];
                size_t p = s->has_parent ? (uintptr_t)ss_map_get(&index, s->parent_id) : 0;

                if (!p || p == i + 1)
                        continue;
                t->child[i] = true;
                if (t->last[p - 1])
                        t->next[t->last[p - 1] - 1] = i + 1;
                else
                        t->first[p - 1] = i + 1;
                t->last[p - 1] = i + 1;
        }
        ss_map_free(&index);
        return r;
}

/* Depth-first print from root without recursion (a trace may be deep); every span once. */
static void print_from(ss_buf *out, const tree *t, size_t root, size_t *stack, unsigned *depth,
                       bool *printed)
{
        bool last[MAX_DEPTH_SHOWN + 1] = {false};
        size_t top = 0;

        stack[top] = root + 1;
        depth[top++] = 0;
        printed[root] = true;
        while (top) {
                size_t i = stack[--top] - 1, c, mark = top;
                unsigned d = depth[top];

                last[d > MAX_DEPTH_SHOWN ? MAX_DEPTH_SHOWN : d] = t->next[i] == 0;
                print_span(out, t->spans[i], last, d);
                /* Push children in reverse so the first child prints first. */
                for (c = t->first[i]; c; c = t->next[c - 1]) {
                        if (printed[c - 1])
                                continue;
                        printed[c - 1] = true;
                        stack[top] = c;
                        depth[top++] = d + 1;
                }
                for (size_t a = mark, b = top; b > a + 1; a++, b--) {
                        size_t ts = stack[a];
                        stack[a] = stack[b - 1];
                        stack[b - 1] = ts;
                }
        }
}

/* The roots first; then spans no root reaches (their parents form a cycle), so that every
 * span counted as shown is shown. */
static void tree_print(ss_buf *out, const tree *t, size_t n, size_t *stack, unsigned *depth,
                       bool *printed)
{
        for (size_t root = 0; root < n; root++)
                if (!t->child[root])
                        print_from(out, t, root, stack, depth, printed);
        for (size_t i = 0; i < n; i++)
                if (!printed[i])
                        print_from(out, t, i, stack, depth, printed);
}

static void print_header(ss_buf *out, ss_span *const *spans, size_t n)
{
        const msgpack_object *svc = ss_attrs_get(&spans[0]->resource->attrs, "service.name");
        uint64_t start = UINT64_MAX, end = 0;
        char hex[2 * SS_TRACE_ID_LEN + 1];

        for (size_t i = 0; i < n; i++) {
                start = spans[i]->start_ns < start ? spans[i]->start_ns : start;
                end = spans[i]->end_ns > end ? spans[i]->end_ns : end;
        }
        ss_hex(hex, spans[0]->trace_id, SS_TRACE_ID_LEN);
        ss_buf_printf(out, "trace %s  service=%.*s  %zu span%s  ", hex,
                      svc && svc->type == MSGPACK_OBJECT_STR ? (int)svc->via.str.size : 1,
                      svc && svc->type == MSGPACK_OBJECT_STR ? svc->via.str.ptr : "?", n,
                      n == 1 ? "" : "s");
        print_duration(out, end - start);
        ss_buf_printf(out, "\n");
}

/* Render one trace as a tree into out. 0, or -ENOMEM when it cannot be laid out. */
static int render(ss_buf *out, ss_span *const *spans, size_t n)
{
        tree t = {0};
        size_t *stack = NULL;
        unsigned *depth = NULL;
        bool *printed = NULL;
        int r = -ENOMEM;

        t.spans = malloc(n * sizeof(*t.spans));
        t.first = calloc(n, sizeof(size_t));
        t.last = calloc(n, sizeof(size_t));
        t.next = calloc(n, sizeof(size_t));
        t.child = calloc(n, sizeof(bool));
        stack = malloc(n * sizeof(*stack));
        depth = malloc(n * sizeof(*depth));
        printed = calloc(n, sizeof(*printed));
        if (!t.spans || !t.first || !t.last || !t.next || !t.child || !stack || !depth || !printed)
                goto done;
        memcpy(t.spans, spans, n * sizeof(*spans));
        r = tree_build(&t, n);
        if (r < 0)
                goto done;
        print_header(out, spans, n);
        tree_print(out, &t, n, stack, depth, printed);
done:
        free(t.spans);
        free(t.first);
        free(t.last);
        free(t.next);
        free(t.child);
        free(stack);
        free(depth);
        free(printed);
        return r;
}

static void console_add(ss_exporter *e, ss_span *const *spans, size_t n)
{
        console_exporter *c = (console_exporter *)e;
        ss_buf text;
        int r;

        e->stats.spans_in += n;
        if (n == 0)
                return;
        ss_buf_init(&text, CONSOLE_MAX_TEXT);
        e->stats.requests++;
        r = render(&text, spans, n);
        if (r == 0)
                r = ss_writer_write(&c->writer, &text, n);
        if (r < 0)
                ss_exporter_dropped(&c->base, n,
                                    r == -ENOBUFS ? "the output is not keeping up" : strerror(-r));
        ss_buf_free(&text);
}

static void console_flush(ss_exporter *e)
{
        /* Nothing is held back: every trace is handed to the writer as it comes. */
}

static bool console_busy(const ss_exporter *e)
{
        return ss_writer_busy(&((const console_exporter *)e)->writer);
}

static void on_writer_closed(void *ctx)
{
        console_exporter *c = ctx;

        ss_exporter_free(&c->base, c);
}

static void console_destroy(ss_exporter *e)
{
        ss_writer_close(&((console_exporter *)e)->writer, on_writer_closed);
}

static const ss_exporter_ops console_ops = {
    .add = console_add,
    .flush = console_flush,
    .busy = console_busy,
    .destroy = console_destroy,
};

int ss_console_exporter_new(uv_loop_t *loop, int fd, ss_exporter **ret)
{
        console_exporter *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;
        c->base = (ss_exporter){.ops = &console_ops, .name = "console"};
        r = ss_writer_open(&c->writer, loop, fd, false, SS_WRITER_MAX_QUEUED_DEFAULT,
                           ss_exporter_written, c);
        if (r < 0) {
                ss_log(SS_LOG_ERR,
                       "console exporter: cannot write to fd %d event=exporter-failed "
                       "exporter=console fd=%d error=\"%s\"",
                       fd, fd, uv_strerror(r));
                free(c);
                return r;
        }
        *ret = &c->base;
        return 0;
}
