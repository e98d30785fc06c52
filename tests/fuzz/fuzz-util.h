/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the fuzz targets share: the libFuzzer entry points, an assertion that
 * crashes (so libFuzzer keeps the input and the replay suite counts it), a
 * reader that takes bytes off the front of an input, and checks of decoded
 * messages and of both OTLP encodings. Single-threaded, like libFuzzer's
 * calls into a target.
 */

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "model/span.h"
#include "ss-wire.h"

/* The libFuzzer interface (tests/fuzz/replay.c calls the same functions). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Abort with the failed condition: a crash both libFuzzer and the replay suite record. */
#define FZ_ASSERT(cond)                                                                            \
        do {                                                                                       \
                if (!(cond))                                                                       \
                        fz_fail(__FILE__, __LINE__, #cond);                                        \
        } while (0)

_Noreturn void fz_fail(const char *file, int line, const char *what);

/* Bytes taken off the front of an input; past its end every read yields zeros. */
typedef struct fz_in {
        const uint8_t *p;
        size_t n;
} fz_in;

static inline uint8_t fz_u8(fz_in *in)
{
        uint8_t v = 0;

        if (in->n) {
                v = *in->p++;
                in->n--;
        }
        return v;
}

static inline uint16_t fz_u16(fz_in *in)
{
        uint16_t hi = fz_u8(in);

        return (uint16_t)(hi << 8 | fz_u8(in));
}

static inline uint64_t fz_u64(fz_in *in)
{
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = v << 8 | fz_u8(in);
        return v;
}

/* Up to want bytes, pointing into the input; *ret_len says how many there were. */
static inline const uint8_t *fz_bytes(fz_in *in, size_t want, size_t *ret_len)
{
        const uint8_t *p = in->p;

        if (want > in->n)
                want = in->n;
        in->p += want;
        in->n -= want;
        *ret_len = want;
        return p;
}

/*
 * Check what ss_wire_decode() returned for payload[0..len): the return code
 * is one it documents and, on success, every field the message type defines
 * is present, in range, and points inside the payload. Reads every byte a
 * decoded field points to, so a wrong length shows under ASan.
 */
void fz_check_decoded(const uint8_t *payload, size_t len, int r, const ss_msg *m);

/* msgpack_unpacked_init(u), then ss_wire_decode() checked by fz_check_decoded(): its result.
 * The caller destroys u. */
int fz_decode(const uint8_t *payload, size_t len, msgpack_unpacked *u, ss_msg *m);

/*
 * Encode spans[0..n) with both OTLP encoders and check the results: the
 * protobuf request unpacks again and holds the spans with their ids, times,
 * attribute and event counts; the JSON is one line of strict JSON in
 * well-formed UTF-8 (fz_json_valid()).
 */
void fz_check_encoders(ss_span *const *spans, size_t n);

/* The same for spans whose strings were not sanitised (built around the model): the protobuf
 * request is checked for its shape only, the JSON as above. */
void fz_check_json_encoder(ss_span *const *spans, size_t n);

/* Every string of a sanitised attribute value (model/value.h) well-formed and NUL-terminated,
 * strings and bins at most max_len bytes (0: any), nesting at most SS_ATTR_DEPTH_MAX. */
void fz_check_value(const msgpack_object *v, uint32_t max_len, unsigned depth);
