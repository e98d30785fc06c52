/* SPDX-License-Identifier: MIT */
#include "trace/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "model/state.h"
#include "ss-id.h"
#include "trace/internal.h"

/*
 * The file: [magic, version, saved_ns, [session...]], where a session is
 * [key, pid, uid, detached_ns, orphan_at_ns, sample_rate, include_content,
 * spans_started, spans_finished, resource, [[span, roll-up or nil]...]].
 */
#define STATE_MAGIC    "sidespan-state"
#define STATE_VERSION  1u
#define STATE_FIELDS   4u
#define SESSION_FIELDS 11u

/* ---- saving ----------------------------------------------------------------------------- */

typedef struct saver {
        msgpack_packer pk;
        uint64_t now;
        uint64_t grace_ns;
        ss_session *s; /* the session being written */
        size_t spans;
        uint32_t sessions;
        int err; /* the first error; later writes are skipped */
} saver;

static void pk_check(saver *sv, int r)
{
        if (r != 0 && sv->err == 0)
                sv->err = -ENOMEM;
}

static int pack_bool(msgpack_packer *pk, bool b)
{
        return b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

/* ss_map_foreach callback: one open span of sv->s and, for a run, its roll-up so far. */
static void pack_span(void *value, void *ctx)
{
        saver *sv = ctx;
        ss_span *sp = value;
        ss_rollup *run = sp->rollup;

        if (sv->err)
                return;
        pk_check(sv, msgpack_pack_array(&sv->pk, 2));
        pk_check(sv, ss_span_pack(sp, &sv->pk));
        pk_check(sv, run ? ss_rollup_pack(run, &sv->pk) : msgpack_pack_nil(&sv->pk));
        sv->spans++;
}

/* ss_map_foreach callback: a session with spans open. */
static void pack_session(void *value, void *ctx)
{
        saver *sv = ctx;
        ss_session *s = value;
        msgpack_packer *pk = &sv->pk;
        /* A client still connected leaves now: its grace period starts with the restart. */
        uint64_t detached = s->attached ? sv->now : s->detached_ns;
        uint64_t orphan_at = s->attached ? sv->now + sv->grace_ns : s->orphan_at_ns;

        if (s->open.n == 0 || sv->err)
                return;
        pk_check(sv,
                 msgpack_pack_array(pk, SESSION_FIELDS) |
                     msgpack_pack_bin_with_body(pk, s->key, SS_SESSION_KEY_LEN) |
                     msgpack_pack_int64(pk, s->proc->pid) | msgpack_pack_uint64(pk, s->proc->uid) |
                     msgpack_pack_uint64(pk, detached) | msgpack_pack_uint64(pk, orphan_at) |
                     msgpack_pack_double(pk, s->sample_rate) | pack_bool(pk, s->include_content) |
                     msgpack_pack_uint64(pk, s->spans_started) |
                     msgpack_pack_uint64(pk, s->spans_finished));
        pk_check(sv, ss_resource_pack(s->resource, pk));
        pk_check(sv, msgpack_pack_array(pk, s->open.n));
        sv->s = s;
        ss_map_foreach(&s->open, pack_span, sv);
}

/* ss_map_foreach callback: count the sessions with spans open. */
static void count_open(void *value, void *ctx)
{
        *(uint32_t *)ctx += ((ss_session *)value)->open.n > 0;
}

/* Write all of buf to a new file at path, durably: a temporary name, fsync, rename, and
 * the directory's fsync. 0 or -errno. */
static int write_file(const char *path, const char *buf, size_t len)
{
        char *tmp = NULL, *dir = NULL, *slash;
        int fd = -1, r = 0;

        if (asprintf(&tmp, "%s.tmp", path) < 0 || !(dir = strdup(path))) {
                r = -ENOMEM;
                goto out;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                r = -errno;
                goto out;
        }
        for (size_t off = 0; off < len;) {
                ssize_t n = write(fd, buf + off, len - off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        goto out;
                }
                off += (size_t)n;
        }
        if (fsync(fd) < 0 || rename(tmp, path) < 0) {
                r = -errno;
                goto out;
        }
        slash = strrchr(dir, '/');
        if (slash)
                *(slash == dir ? slash + 1 : slash) = '\0';
        close(fd);
        fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0)
                (void)fsync(fd); /* the rename is durable; a failure here loses nothing yet */
out:
        if (fd >= 0)
                close(fd);
        if (r < 0 && tmp)
                (void)unlink(tmp);
        free(tmp);
        free(dir);
        return r;
}

int ss_assembler_save(ss_assembler *a, const char *path)
{
        msgpack_sbuffer sb;
        saver sv = {.now = ss_now_ns(), .grace_ns = a->cfg.orphan_grace_ms * 1000000ull};
        int r;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&sv.pk, &sb, msgpack_sbuffer_write);
        ss_map_foreach(&a->sessions, count_open, &sv.sessions);
        pk_check(&sv, msgpack_pack_array(&sv.pk, STATE_FIELDS) |
                          msgpack_pack_str_with_body(&sv.pk, STATE_MAGIC, strlen(STATE_MAGIC)) |
                          msgpack_pack_uint32(&sv.pk, STATE_VERSION) |
                          msgpack_pack_uint64(&sv.pk, sv.now) |
                          msgpack_pack_array(&sv.pk, sv.sessions));
        ss_map_foreach(&a->sessions, pack_session, &sv);
        r = sv.err ? sv.err : write_file(path, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
        if (r < 0) {
                ss_log(SS_LOG_ERR,
                       "cannot save %zu open spans to %s: %s: they end as orphans "
                       "event=state-save-failed path=\"%s\" spans=%zu error=\"%s\"",
                       a->open_spans, path, strerror(-r), path, a->open_spans, strerror(-r));
                return r;
        }
        ss_log(SS_LOG_INFO,
               "saved %zu open spans of %u clients to %s event=state-saved path=\"%s\" "
               "spans=%zu sessions=%u bytes=%zu",
               sv.spans, sv.sessions, path, path, sv.spans, sv.sessions, sb.size);
        return (int)(sv.spans > INT32_MAX ? INT32_MAX : sv.spans);
}

/* ---- restoring -------------------------------------------------------------------------- */

static bool is_uint(const msgpack_object *o)
{
        return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
}

static bool session_ok(const msgpack_object *o)
{
        const msgpack_object *f = o->via.array.ptr;

        return o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == SESSION_FIELDS &&
               f[0].type == MSGPACK_OBJECT_BIN && f[0].via.bin.size == SS_SESSION_KEY_LEN &&
               (is_uint(&f[1]) || f[1].type == MSGPACK_OBJECT_NEGATIVE_INTEGER) && is_uint(&f[2]) &&
               is_uint(&f[3]) && is_uint(&f[4]) && f[5].type == MSGPACK_OBJECT_FLOAT64 &&
               f[6].type == MSGPACK_OBJECT_BOOLEAN && is_uint(&f[7]) && is_uint(&f[8]) &&
               f[10].type == MSGPACK_OBJECT_ARRAY;
}

/* One [span, roll-up or nil] into s: open again, in its trace, with the trace's head
 * decision as its span carries it. */
static int restore_span(ss_assembler *a, ss_session *s, const msgpack_object *o)
{
        const msgpack_object *f = o->via.array.ptr;
        ss_rollup *run = NULL;
        ss_span *sp = NULL;
        ss_trace *t;
        int r;

        if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2)
                return -EBADMSG;
        if ((r = ss_span_unpack(&f[0], s->resource, &sp)) < 0 ||
            (f[1].type != MSGPACK_OBJECT_NIL && (r = ss_rollup_unpack(&f[1], &run)) < 0))
                goto fail;
        r = -EEXIST;
        if (ss_map_get(&s->open, sp->span_id))
                goto fail;
        r = -ENOMEM;
        t = ss_tt_get(&a->tt, sp->trace_id, true);
        if (!t)
                goto fail;
        if (!t->decided) {
                t->decided = true;
                t->head_rate = sp->head_rate;
                t->head_drop = sp->head_drop;
                t->discard = sp->discard;
        }
        if (ss_map_put(&s->open, sp->span_id, sp) < 0) {
                ss_tt_discard(&a->tt, t);
                goto fail;
        }
        if (ss_tt_opened(&a->tt, t, s) < 0) {
                ss_map_remove(&s->open, sp->span_id);
                ss_tt_discard(&a->tt, t);
                goto fail;
        }
        sp->rollup = run;
        a->open_spans++;
        s->proc->open_spans++;
        return 0;
fail:
        ss_rollup_free(run);
        ss_span_unref(sp);
        return r;
}

static int restore_session(ss_assembler *a, const msgpack_object *o, size_t *spans)
{
        const msgpack_object *f = o->via.array.ptr;
        const msgpack_object_array *open;
        ss_resource *res;
        ss_session *s;
        int r;

        if (!session_ok(o))
                return -EBADMSG;
        if (ss_map_get(&a->sessions, f[0].via.bin.ptr))
                return -EEXIST;
        r = ss_resource_unpack(&f[9], &res);
        if (r < 0)
                return r;
        s = ss_session_restore(a, (const uint8_t *)f[0].via.bin.ptr, (pid_t)f[1].via.i64,
                               (uid_t)f[2].via.u64, res);
        if (!s)
                return -ENOMEM;
        s->detached_ns = f[3].via.u64;
        s->orphan_at_ns = f[4].via.u64;
        s->sample_rate = f[5].via.f64;
        s->include_content = f[6].via.boolean;
        s->spans_started = f[7].via.u64;
        s->spans_finished = f[8].via.u64;
        open = &f[10].via.array;
        for (uint32_t i = 0; i < open->size; i++) {
                r = restore_span(a, s, &open->ptr[i]);
                if (r == -ENOMEM)
                        a->stats.no_memory++;
                *spans += r == 0;
        }
        ss_session_restored(s);
        return 0;
}

/* The whole file at path in a malloc'd buffer. -ENOENT when there is none. */
static int read_file(const char *path, char **ret, size_t *ret_len)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;
        struct stat st;
        char *buf = NULL;
        size_t off = 0;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                goto out;
        }
        if ((uint64_t)st.st_size > SS_STATE_MAX_BYTES) {
                r = -EFBIG;
                goto out;
        }
        buf = malloc((size_t)st.st_size + 1);
        if (!buf) {
                r = -ENOMEM;
                goto out;
        }
        while (off < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? -errno : -EBADMSG;
                        goto out;
                }
                off += (size_t)n;
        }
        *ret = buf;
        *ret_len = off;
        buf = NULL;
out:
        free(buf);
        close(fd);
        return r;
}

static const msgpack_object *state_sessions(const msgpack_object *o)
{
        const msgpack_object *f = o->via.array.ptr;

        if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != STATE_FIELDS ||
            f[0].type != MSGPACK_OBJECT_STR || f[0].via.str.size != strlen(STATE_MAGIC) ||
            memcmp(f[0].via.str.ptr, STATE_MAGIC, strlen(STATE_MAGIC)) != 0 || !is_uint(&f[1]) ||
            f[1].via.u64 != STATE_VERSION || !is_uint(&f[2]) || f[3].type != MSGPACK_OBJECT_ARRAY)
                return NULL;
        return &f[3];
}

/* The file could not be used: keep it aside for a person, out of the next start's way. */
static int set_aside(const char *path, const char *why, int err)
{
        char *bad = NULL;

        if (asprintf(&bad, "%s.bad", path) >= 0)
                (void)rename(path, bad);
        ss_log(SS_LOG_ERR,
               "state file %s %s (moved to %s.bad): open spans of the last run are lost "
               "event=state-restore-failed path=\"%s\" error=\"%s\"",
               path, why, path, path, why);
        free(bad);
        return err;
}

int ss_assembler_restore(ss_assembler *a, const char *path)
{
        msgpack_unpacked u;
        const msgpack_object *sessions;
        size_t len = 0, off = 0, spans = 0, bad = 0;
        char *buf = NULL;
        int r = read_file(path, &buf, &len);

        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return set_aside(path, r == -EFBIG ? "is too large" : strerror(-r), r);
        msgpack_unpacked_init(&u);
        /* Checked first: msgpack-c allocates what a damaged count declares. */
        if (ss_msgpack_check_max((const uint8_t *)buf, len, UINT32_MAX) < 0 ||
            msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS ||
            !(sessions = state_sessions(&u.data))) {
                msgpack_unpacked_destroy(&u);
                free(buf);
                return set_aside(path, "is not a sidespan state file", -EBADMSG);
        }
        for (uint32_t i = 0; i < sessions->via.array.size; i++)
                bad += restore_session(a, &sessions->via.array.ptr[i], &spans) < 0;
        ss_log(SS_LOG_INFO,
               "restored %zu open spans of %u clients from %s (%zu damaged records skipped) "
               "event=state-restored path=\"%s\" spans=%zu sessions=%u skipped=%zu",
               spans, sessions->via.array.size, path, bad, path, spans, sessions->via.array.size,
               bad);
        msgpack_unpacked_destroy(&u);
        free(buf);
        if (unlink(path) < 0)
                ss_log(SS_LOG_WARNING,
                       "cannot remove the state file %s: %s event=state-remove-failed "
                       "path=\"%s\" error=\"%s\"",
                       path, strerror(errno), path, strerror(errno));
        return (int)(spans > INT32_MAX ? INT32_MAX : spans);
}
