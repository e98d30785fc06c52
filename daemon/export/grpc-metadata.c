/* SPDX-License-Identifier: MIT */
#include "export/grpc-metadata.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "export/grpc-support.h"

/* Why gRPC would refuse the header name: value, or NULL when it is fine. */
static const char *header_problem(const char *name, const char *value, size_t value_len)
{
        grpc_slice k = grpc_slice_from_static_string(name);
        grpc_slice v = grpc_slice_from_static_buffer(value, value_len);

        if (!grpc_header_key_is_legal(k))
                return "not a legal gRPC metadata name (a-z, 0-9, '-', '_', '.')";
        if (ss_grpc_reserved_name(name))
                return "set by the transport itself";
        if (!grpc_is_binary_header(k) && !grpc_header_nonbin_value_is_legal(v))
                return "a value gRPC does not allow (printable ASCII only)";
        return NULL;
}

static int header_add(ss_grpc_metadata *m, const char *line)
{
        char *name = NULL, shown[64];
        const char *value, *why;
        size_t len;
        int r = ss_grpc_header_split(line, &name, &value, &len);

        if (r == -EINVAL) {
                ss_log(SS_LOG_ERR,
                       "otlp-grpc: header is not \"Name: value\": %s event=config-invalid "
                       "exporter=otlp-grpc key=headers",
                       line ? line : "(null)");
                return r;
        }
        if (r < 0)
                return r;
        why = header_problem(name, value, len);
        if (why) {
                ss_log_text(shown, sizeof(shown), name, strlen(name));
                ss_log(SS_LOG_ERR,
                       "otlp-grpc: header %s: %s event=config-invalid exporter=otlp-grpc "
                       "key=headers",
                       shown, why);
                free(name);
                return -EINVAL;
        }
        m->md[m->n].key = grpc_slice_from_copied_string(name);
        m->md[m->n].value = grpc_slice_from_copied_buffer(value, len);
        m->n++;
        free(name);
        return 0;
}

int ss_grpc_metadata_build(ss_grpc_metadata *m, const ss_grpc_config *cfg)
{
        int r = 0;

        *m = (ss_grpc_metadata){0};
        if (cfg->n_headers == 0)
                return 0;
        m->md = calloc(cfg->n_headers, sizeof(*m->md));
        if (!m->md)
                return -ENOMEM;
        for (size_t i = 0; i < cfg->n_headers && r == 0; i++)
                r = header_add(m, cfg->headers[i]);
        if (r < 0)
                ss_grpc_metadata_free(m);
        return r;
}

void ss_grpc_metadata_free(ss_grpc_metadata *m)
{
        for (size_t i = 0; i < m->n; i++) {
                grpc_slice_unref(m->md[i].key);
                grpc_slice_unref(m->md[i].value);
        }
        free(m->md);
        *m = (ss_grpc_metadata){0};
}
