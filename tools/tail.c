/* SPDX-License-Identifier: MIT */
/*
 * sidespan tail: SUBSCRIBE, then show each finished trace the daemon keeps
 * as a tree (children by start time) with a waterfall bar per span scaled to
 * the trace, tokens and cost on agent and chat rows; or one JSON object per
 * trace with --json. The daemon drops what this reader cannot keep up with
 * and says so in the next trace; the tail says it too.
 */
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"

static const char usage_tail[] =
    "Usage: sidespan tail [--service NAME] [--agent NAME] [--status error|ok]\n"
    "                     [--min-duration MS] [--json] [--no-color] [--count N]\n"
    "                     [--timeout MS]\n"
    "\n"
    "Shows every trace the daemon keeps, as it finishes: a tree of its spans\n"
    "with a waterfall bar each, scaled to the trace's duration, and tokens,\n"
    "cost and model on agent and chat rows. Filters (applied by the daemon):\n"
    "  --service NAME       traces with a span of this service.name\n"
    "  --agent NAME         traces with a span whose upsonic.agent.name is NAME\n"
    "  --status error|ok    traces with a failed span, or with none\n"
    "  --min-duration MS    traces spanning at least MS milliseconds\n"
    "Output:\n"
    "  --json               one JSON object per trace and line, for scripts\n"
    "  --no-color           no colours (also when NO_COLOR is set or stdout is\n"
    "                       not a terminal)\n"
    "  --count N            exit 0 after N traces\n"
    "  --timeout MS         stop after MS: exit 0, or 1 when --count was not met\n"
    "A reader too slow for the traffic misses traces (the daemon never waits\n"
    "for it); the output says how many. Exit 1 when the daemon goes away.\n";

typedef struct tail_opts {
        const char *service;
        const char *agent;
        const char *status;
        long min_duration_ms;
        bool json;
        bool color;
        bool utf8;
        long count; /* 0: no end */
        long timeout_ms;
        int width; /* of the waterfall */
} tail_opts;

/* ---- arguments -------------------------------------------------------------------------- */

static int parse_num(const char *opt, const char *v, long *ret)
{
        char *end;
        long n;

        errno = 0;
        n = v ? strtol(v, &end, 10) : -1;
        if (!v || errno || *end || end == v || n < 0 || n > 86400000) {
                fprintf(stderr, "sidespan tail: %s: not a number from 0 to 86400000: '%s'\n", opt,
                        v ? v : "");
                return -EINVAL;
        }
        *ret = n;
        return 0;
}

static int parse_str(const char *opt, const char *v, const char **ret)
{
        if (!v || !*v || strlen(v) > SS_SUB_MAX_STR) {
                fprintf(stderr, "sidespan tail: %s: needs a name of 1 to %u bytes\n", opt,
                        SS_SUB_MAX_STR);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

/* 0 to run, 1 for --help (printed), -EINVAL. */
static int parse(int argc, char **argv, tail_opts *o)
{
        for (int i = 0; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                int r;

                if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
                        fputs(usage_tail, stdout);
                        return 1;
                }
                if (!strcmp(a, "--json") || !strcmp(a, "--no-color")) {
                        *(a[2] == 'j' ? &o->json : &o->color) = a[2] == 'j';
                        continue;
                }
                if (!strcmp(a, "--service"))
                        r = parse_str(a, v, &o->service);
                else if (!strcmp(a, "--agent"))
                        r = parse_str(a, v, &o->agent);
                else if (!strcmp(a, "--status")) {
                        r = v && (!strcmp(v, "error") || !strcmp(v, "ok")) ? 0 : -EINVAL;
                        o->status = v;
                        if (r < 0)
                                fprintf(stderr,
                                        "sidespan tail: --status: 'error' or 'ok', not '%s'\n",
                                        v ? v : "");
                } else if (!strcmp(a, "--min-duration"))
                        r = parse_num(a, v, &o->min_duration_ms);
                else if (!strcmp(a, "--count"))
                        r = parse_num(a, v, &o->count);
                else if (!strcmp(a, "--timeout"))
                        r = parse_num(a, v, &o->timeout_ms);
                else {
                        fprintf(stderr, "sidespan tail: unknown argument '%s'\n%s", a, usage_tail);
                        return -EINVAL;
                }
                if (r < 0)
                        return r;
                i++;
        }
        return 0;
}

/* ---- SUBSCRIBE -------------------------------------------------------------------------- */

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
        msgpack_pack_str_with_body(pk, k, strlen(k));
        msgpack_pack_str_with_body(pk, v, strlen(v));
}

static int subscribe(cli *c, const tail_opts *o)
{
        msgpack_sbuffer sb;
        msgpack_packer pk;
        uint32_t n = 0;
        ss_buf b;
        int r;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        if (o->service && ++n)
                pack_kv_str(&pk, SS_SUB_SERVICE, o->service);
        if (o->agent && ++n)
                pack_kv_str(&pk, SS_SUB_AGENT, o->agent);
        if (o->status && ++n)
                pack_kv_str(&pk, SS_SUB_STATUS, o->status);
        if (o->min_duration_ms && ++n) {
                msgpack_pack_str_with_body(&pk, SS_SUB_MIN_DUR_MS, strlen(SS_SUB_MIN_DUR_MS));
                msgpack_pack_uint64(&pk, (uint64_t)o->min_duration_ms);
        }
        ss_rawmap filter = {.count = n, .data = (const uint8_t *)sb.data, .len = sb.size};
        ss_buf_init(&b, 4096);
        r = ss_wire_put_subscribe(&b, 4096, &filter);
        if (r >= 0)
                r = cli_send(c, &b);
        ss_buf_free(&b);
        msgpack_sbuffer_destroy(&sb);
        return r;
}

/* ---- one trace -------------------------------------------------------------------------- */

typedef struct node {
        ss_tap_span s;
        int first_child, next_sibling; /* -1: none */
} node;

typedef struct trace {
        node *v;
        uint32_t n;
        uint64_t start_ns, end_ns;
        int *roots;
        uint32_t n_roots;
} trace;

static bool same_id(const uint8_t *a, const uint8_t *b)
{
        return a && b && memcmp(a, b, SS_SPAN_ID_LEN) == 0;
}

static int by_start(const void *a, const void *b, void *ctx)
{
        const node *v = ctx;
        const node *x = &v[*(const int *)a], *y = &v[*(const int *)b];

        return (x->s.start_ns > y->s.start_ns) - (x->s.start_ns < y->s.start_ns);
}

/* Link children to parents, each list in start order; spans whose parent is not here (a
 * remote parent, another chunk of the trace) are roots. */
static int build(trace *t, const msgpack_object_array *spans)
{
        int *order;

        t->v = calloc(spans->size ? spans->size : 1, sizeof(*t->v));
        t->roots = calloc(spans->size ? spans->size : 1, sizeof(*t->roots));
        order = calloc(spans->size ? spans->size : 1, sizeof(*order));
        if (!t->v || !t->roots || !order) {
                free(order);
                return -ENOMEM;
        }
        t->start_ns = UINT64_MAX;
        for (uint32_t i = 0; i < spans->size; i++) {
                node *nd = &t->v[t->n];

                if (ss_wire_tap_span(&spans->ptr[i], &nd->s) < 0)
                        continue; /* a newer daemon's shape: skip the span, not the trace */
                nd->first_child = nd->next_sibling = -1;
                t->start_ns = nd->s.start_ns < t->start_ns ? nd->s.start_ns : t->start_ns;
                t->end_ns = nd->s.end_ns > t->end_ns ? nd->s.end_ns : t->end_ns;
                order[t->n] = (int)t->n;
                t->n++;
        }
        qsort_r(order, t->n, sizeof(*order), by_start, t->v);
        /* Backwards, pushing on the front: every list ends in start order. */
        for (uint32_t k = t->n; k-- > 0;) {
                node *nd = &t->v[order[k]];
                uint32_t p;

                for (p = 0; p < t->n && !same_id(nd->s.parent_id, t->v[p].s.span_id); p++)
                        ;
                if (p < t->n && (int)p != order[k]) {
                        nd->next_sibling = t->v[p].first_child;
                        t->v[p].first_child = order[k];
                } else {
                        t->roots[t->n_roots++] = order[k];
                }
        }
        /* Roots were pushed backwards too: put them in start order. */
        for (uint32_t i = 0; i < t->n_roots / 2; i++) {
                int x = t->roots[i];

                t->roots[i] = t->roots[t->n_roots - 1 - i];
                t->roots[t->n_roots - 1 - i] = x;
        }
        free(order);
        return 0;
}

static void trace_free(trace *t)
{
        free(t->v);
        free(t->roots);
}

static const msgpack_object *attr(const ss_tap_span *s, const char *key)
{
        const msgpack_object_kv *kv = ss_wire_kv_find(s->attrs, s->n_attrs, key, strlen(key));

        return kv ? &kv->val : NULL;
}

static bool attr_num(const ss_tap_span *s, const char *key, double *ret)
{
        const msgpack_object *v = attr(s, key);

        if (!v)
                return false;
        if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                *ret = (double)v->via.u64;
        else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                *ret = (double)v->via.i64;
        else if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64)
                *ret = v->via.f64;
        else
                return false;
        return true;
}

static void print_hex(const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                printf("%02x", p[i]);
}

/* ---- JSON ------------------------------------------------------------------------------- */

static void json_value(const msgpack_object *v)
{
        switch (v->type) {
        case MSGPACK_OBJECT_STR:
                cli_json_str(v->via.str.ptr, v->via.str.size);
                break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
                printf("%llu", (unsigned long long)v->via.u64);
                break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
                printf("%lld", (long long)v->via.i64);
                break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
                if (isfinite(v->via.f64))
                        printf("%.17g", v->via.f64);
                else
                        printf("null");
                break;
        case MSGPACK_OBJECT_BOOLEAN:
                printf(v->via.boolean ? "true" : "false");
                break;
        default:
                printf("null");
                break;
        }
}

static void json_span(const ss_tap_span *s, int depth)
{
        static const char *const statuses[] = {"UNSET", "OK", "ERROR"};

        printf("{\"span_id\":\"");
        print_hex(s->span_id, SS_SPAN_ID_LEN);
        printf("\",\"parent_id\":");
        if (s->parent_id) {
                putchar('"');
                print_hex(s->parent_id, SS_SPAN_ID_LEN);
                putchar('"');
        } else
                printf("null");
        printf(",\"name\":");
        cli_json_str(s->name.ptr, s->name.len);
        printf(",\"kind\":%d,\"start_ns\":%llu,\"end_ns\":%llu,\"duration_ms\":%.3f,"
               "\"status\":\"%s\",\"depth\":%d,\"service\":",
               (int)s->kind, (unsigned long long)s->start_ns, (unsigned long long)s->end_ns,
               s->end_ns > s->start_ns ? (double)(s->end_ns - s->start_ns) / 1e6 : 0.0,
               statuses[s->status_code], depth);
        cli_json_str(s->service.ptr, s->service.len);
        printf(",\"attributes\":{");
        for (uint32_t i = 0; i < s->n_attrs; i++) {
                printf(i ? "," : "");
                cli_json_str(s->attrs[i].key.via.str.ptr, s->attrs[i].key.via.str.size);
                putchar(':');
                json_value(&s->attrs[i].val);
        }
        printf("}}");
}

/* Spans in tree order (depth first, children by start), each with its depth. */
static void json_walk(const trace *t, int i, int depth, bool *first)
{
        for (; i >= 0; i = t->v[i].next_sibling) {
                printf(*first ? "" : ",");
                *first = false;
                json_span(&t->v[i].s, depth);
                json_walk(t, t->v[i].first_child, depth + 1, first);
        }
}

static void print_json(const trace *t, uint64_t dropped, uint64_t omitted)
{
        bool first = true;

        printf("{\"trace_id\":\"");
        if (t->n)
                print_hex(t->v[0].s.trace_id, SS_TRACE_ID_LEN);
        printf("\",\"duration_ms\":%.3f,\"dropped\":%llu,\"omitted\":%llu,\"spans\":[",
               t->end_ns > t->start_ns ? (double)(t->end_ns - t->start_ns) / 1e6 : 0.0,
               (unsigned long long)dropped, (unsigned long long)omitted);
        for (uint32_t r = 0; r < t->n_roots; r++)
                json_walk(t, t->roots[r], 0, &first);
        printf("]}\n");
}

/* ---- the tree --------------------------------------------------------------------------- */

#define NAME_W_MIN 24
#define NAME_W_MAX 56
#define MAX_INDENT 24 /* levels drawn; deeper ones are drawn at this depth */

typedef struct style {
        const char *reset, *dim, *bold, *red, *agent, *chat, *tool, *other;
        const char *tee, *elbow, *pipe, *blank, *bar, *ellipsis, *us;
} style;

static style style_for(const tail_opts *o)
{
        style st = {"", "", "", "", "", "", "", ""};

        if (o->color)
                st = (style){"\033[0m",  "\033[2m",  "\033[1m",  "\033[31m",
                             "\033[35m", "\033[36m", "\033[33m", "\033[34m"};
        if (o->utf8) {
                st.tee = "├─ ", st.elbow = "└─ ", st.pipe = "│  ", st.blank = "   ";
                st.bar = "█", st.ellipsis = "…", st.us = "µs";
        } else {
                st.tee = "|- ", st.elbow = "`- ", st.pipe = "|  ", st.blank = "   ";
                st.bar = "=", st.ellipsis = "~", st.us = "us";
        }
        return st;
}

typedef enum row_kind { ROW_OTHER, ROW_AGENT, ROW_CHAT, ROW_TOOL } row_kind;

static row_kind kind_of(const ss_tap_span *s)
{
        if (s->name.len == 9 && !memcmp(s->name.ptr, "agent.run", 9))
                return ROW_AGENT;
        if (s->name.len == 12 && !memcmp(s->name.ptr, "tool.execute", 12))
                return ROW_TOOL;
        if ((s->name.len > 5 && !memcmp(s->name.ptr, "chat ", 5)) ||
            attr(s, "gen_ai.request.model"))
                return ROW_CHAT;
        return ROW_OTHER;
}

static void fmt_duration(char *out, size_t n, uint64_t ns, const style *st)
{
        if (ns < 1000000)
                snprintf(out, n, "%llu %s", (unsigned long long)(ns / 1000), st->us);
        else if (ns < 1000000000)
                snprintf(out, n, "%.1f ms", (double)ns / 1e6);
        else
                snprintf(out, n, "%.2f s", (double)ns / 1e9);
}

/* Columns of a UTF-8 string: its bytes that do not continue a character. */
static size_t columns(const char *p, size_t n)
{
        size_t c = 0;

        for (size_t i = 0; i < n; i++)
                c += ((unsigned char)p[i] & 0xc0) != 0x80;
        return c;
}

/* The widest tree prefix plus name, for the name column. */
static size_t name_width(const trace *t, int i, int depth)
{
        size_t w = 0;

        for (; i >= 0; i = t->v[i].next_sibling) {
                size_t d = (size_t)(depth < MAX_INDENT ? depth : MAX_INDENT) * 3 +
                           columns(t->v[i].s.name.ptr, t->v[i].s.name.len);
                size_t c = name_width(t, t->v[i].first_child, depth + 1);

                w = d > w ? d : w;
                w = c > w ? c : w;
        }
        return w;
}

typedef struct render {
        const trace *t;
        const tail_opts *o;
        style st;
        int name_w;
        char prefix[MAX_INDENT * 8 + 1]; /* the ancestors' rails */
        size_t prefix_len;
        int prefix_cols;
} render;

static void print_bar(const render *r, const ss_tap_span *s, const char *colour)
{
        double total = (double)(r->t->end_ns - r->t->start_ns);
        int w = r->o->width, from = 0, len = w;

        if (total > 0) {
                from = (int)((double)(s->start_ns - r->t->start_ns) / total * w);
                len = (int)ceil((double)(s->end_ns > s->start_ns ? s->end_ns - s->start_ns : 0) /
                                total * w);
        }
        from = from < 0 ? 0 : from >= w ? w - 1 : from;
        len = len < 1 ? 1 : len > w - from ? w - from : len;
        printf("%*s%s", from, "", colour);
        for (int i = 0; i < len; i++)
                fputs(r->st.bar, stdout);
        printf("%s%*s", r->st.reset, w - from - len, "");
}

static void print_extras(const render *r, const ss_tap_span *s, row_kind k)
{
        const msgpack_object *v;
        double in, out, cost;

        if (k == ROW_AGENT && (v = attr(s, "upsonic.agent.name")) && v->type == MSGPACK_OBJECT_STR)
                printf(" %.*s", (int)v->via.str.size, v->via.str.ptr);
        if (k == ROW_TOOL && (v = attr(s, "upsonic.tool.name")) && v->type == MSGPACK_OBJECT_STR)
                printf(" %.*s", (int)v->via.str.size, v->via.str.ptr);
        if (k == ROW_CHAT &&
            (((v = attr(s, "gen_ai.response.model")) && v->type == MSGPACK_OBJECT_STR) ||
             ((v = attr(s, "gen_ai.request.model")) && v->type == MSGPACK_OBJECT_STR)))
                printf(" %.*s", (int)v->via.str.size, v->via.str.ptr);
        if ((k == ROW_AGENT || k == ROW_CHAT) && attr_num(s, "gen_ai.usage.input_tokens", &in) &&
            attr_num(s, "gen_ai.usage.output_tokens", &out))
                printf(" tokens %.0f in / %.0f out", in, out);
        if ((k == ROW_AGENT && attr_num(s, "upsonic.total_cost", &cost)) ||
            (k == ROW_CHAT && attr_num(s, "gen_ai.usage.cost", &cost)))
                printf(" $%.4f", cost);
        if (s->status_code == SS_STATUS_ERROR) {
                printf(" %s%sERROR", r->st.bold, r->st.red);
                if ((v = attr(s, "error.type")) && v->type == MSGPACK_OBJECT_STR)
                        printf(" %.*s", (int)v->via.str.size, v->via.str.ptr);
                fputs(r->st.reset, stdout);
        }
}

static void print_row(render *r, const ss_tap_span *s, const char *connector)
{
        static const size_t ellipsis_cols = 1;
        const char *colours[] = {r->st.other, r->st.agent, r->st.chat, r->st.tool};
        row_kind k = kind_of(s);
        int room = r->name_w - r->prefix_cols - (connector[0] ? 3 : 0);
        size_t cols = columns(s->name.ptr, s->name.len), bytes = s->name.len;
        char dur[32];

        printf("%s%s%s%s", r->st.dim, r->prefix, connector, r->st.reset);
        if (room < 1)
                room = 1;
        if (cols > (size_t)room) {
                /* Cut at a character: keep room - 1 columns and mark the cut. */
                for (bytes = 0, cols = 0; bytes < s->name.len && cols < (size_t)room - 1; bytes++)
                        cols += ((unsigned char)s->name.ptr[bytes] & 0xc0) != 0x80;
                while (bytes < s->name.len && ((unsigned char)s->name.ptr[bytes] & 0xc0) == 0x80)
                        bytes++;
                printf("%s%.*s%s%s", s->status_code == SS_STATUS_ERROR ? r->st.red : "", (int)bytes,
                       s->name.ptr, r->st.ellipsis, r->st.reset);
                cols += ellipsis_cols;
        } else {
                printf("%s%.*s%s", s->status_code == SS_STATUS_ERROR ? r->st.red : "", (int)bytes,
                       s->name.ptr, r->st.reset);
        }
        fmt_duration(dur, sizeof(dur), s->end_ns > s->start_ns ? s->end_ns - s->start_ns : 0,
                     &r->st);
        /* Padded by columns, not bytes: "µs" is one column in two bytes. */
        printf("%*s %s%*s%s%s  ", room - (int)cols, "", r->st.dim,
               9 - (int)columns(dur, strlen(dur)), "", dur, r->st.reset);
        print_bar(r, s, colours[k]);
        print_extras(r, s, k);
        putchar('\n');
}

static void walk(render *r, int i, int depth)
{
        for (; i >= 0; i = r->t->v[i].next_sibling) {
                bool last = r->t->v[i].next_sibling < 0;
                size_t saved_len = r->prefix_len;
                int saved_cols = r->prefix_cols;

                print_row(r, &r->t->v[i].s, depth == 0 ? "" : last ? r->st.elbow : r->st.tee);
                if (depth > 0 && depth < MAX_INDENT) {
                        const char *rail = last ? r->st.blank : r->st.pipe;
                        size_t n = strlen(rail);

                        memcpy(r->prefix + r->prefix_len, rail, n + 1);
                        r->prefix_len += n;
                        r->prefix_cols += 3;
                }
                walk(r, r->t->v[i].first_child, depth + 1);
                r->prefix_len = saved_len;
                r->prefix_cols = saved_cols;
                r->prefix[r->prefix_len] = '\0';
        }
}

static void print_tree(const trace *t, const tail_opts *o, uint64_t omitted)
{
        render r = {.t = t, .o = o, .st = style_for(o)};
        const ss_tap_span *root = t->n_roots ? &t->v[t->roots[0]].s : NULL;
        size_t w = 0;
        char dur[32];

        if (!root)
                return;
        for (uint32_t i = 0; i < t->n_roots; i++) {
                size_t c = name_width(t, t->roots[i], 0);

                w = c > w ? c : w;
        }
        r.name_w = w < NAME_W_MIN ? NAME_W_MIN : w > NAME_W_MAX ? NAME_W_MAX : (int)w;
        fmt_duration(dur, sizeof(dur), t->end_ns - t->start_ns, &r.st);
        printf("%strace ", r.st.bold);
        print_hex(root->trace_id, SS_TRACE_ID_LEN);
        printf("%s  %.*s  %u span%s  %s", r.st.reset, (int)root->service.len, root->service.ptr,
               t->n, t->n == 1 ? "" : "s", dur);
        if (omitted)
                printf("  (%llu more not shown)", (unsigned long long)omitted);
        putchar('\n');
        for (uint32_t i = 0; i < t->n_roots; i++)
                walk(&r, t->roots[i], 0);
        putchar('\n');
}

/* ---- the loop --------------------------------------------------------------------------- */

static int show(const ss_msg *m, const tail_opts *o, uint64_t *dropped_seen)
{
        trace t = {0};
        int r = build(&t, m->trace.spans);

        if (r < 0) {
                trace_free(&t);
                return r;
        }
        if (m->trace.dropped > *dropped_seen && !o->json)
                fprintf(stderr,
                        "sidespan tail: %llu trace(s) not shown: this reader was too slow for "
                        "the traffic\n",
                        (unsigned long long)(m->trace.dropped - *dropped_seen));
        *dropped_seen = m->trace.dropped;
        if (o->json)
                print_json(&t, m->trace.dropped, m->trace.omitted);
        else
                print_tree(&t, o, m->trace.omitted);
        fflush(stdout);
        trace_free(&t);
        return 0;
}

static void terminal_setup(tail_opts *o)
{
        struct winsize ws;
        const char *nc = getenv("NO_COLOR");
        bool tty = isatty(STDOUT_FILENO);

        setlocale(LC_CTYPE, "");
        o->utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
        o->color = o->color && tty && !(nc && *nc);
        o->width = 40;
        /* The bar takes what the name column, duration and a short tail of figures leave. */
        if (tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                o->width = ws.ws_col > 120 ? 40 : ws.ws_col > 90 ? 24 : 12;
}

int cli_tail(cli *c, int argc, char **argv)
{
        tail_opts o = {.color = true};
        uint64_t dropped_seen = 0;
        int64_t deadline;
        long shown = 0;
        int r;

        r = parse(argc, argv, &o);
        if (r != 0)
                return r > 0 ? 0 : 2;
        terminal_setup(&o);
        if (!c->socket_path && cli_default_socket(c) < 0)
                return 1;
        if (cli_connect(c) < 0)
                return 1;
        r = subscribe(c, &o);
        deadline = o.timeout_ms ? cli_now_ms() + o.timeout_ms : CLI_FOREVER;
        while (r >= 0 && (!o.count || shown < o.count)) {
                msgpack_unpacked u;
                uint8_t *copy = NULL;
                ss_msg m;

                msgpack_unpacked_init(&u);
                r = cli_recv(c, SS_MSG_TRACE, deadline, &u, &copy, &m);
                if (r >= 0 && (r = show(&m, &o, &dropped_seen)) >= 0)
                        shown++;
                msgpack_unpacked_destroy(&u);
                free(copy);
        }
        if (r == -ETIMEDOUT)
                return o.count ? 1 : 0;
        if (r < 0) {
                fprintf(stderr, "sidespan tail: %s: %s\n", c->socket_path,
                        r == -ECONNRESET ? "the daemon closed the connection" : strerror(-r));
                return 1;
        }
        return 0;
}
