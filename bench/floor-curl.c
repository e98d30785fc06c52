/* SPDX-License-Identifier: MIT */
/*
 * floor-curl: the resident memory of a process that does nothing but what the OTLP/HTTP
 * exporter's library must do, for bench/bench-scale.sh to print beside the daemon's idle
 * RSS: libcurl as Debian builds it (OpenSSL, with the TLS, Kerberos, LDAP and SSH libraries
 * it is linked with), set up, and then one POST of an empty ExportTraceServiceRequest.
 *
 *   floor-curl [URL [CA_FILE]]
 *
 * Prints a "floor:" line after curl_global_init() and curl_easy_init(), and with URL another
 * 2 s after the POST was answered (CA_FILE: the certificate an https URL is verified with).
 * Exits 1 when the POST was not answered 200. A benchmark helper: it prints figures and
 * asserts nothing.
 */
#include <stdio.h>
#include <stdlib.h>

#include <curl/curl.h>

#include "floor.h"

/* The response body, read and dropped. */
static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
        (void)p;
        (void)ctx;
        return size * n;
}

/* One POST to url, as the exporter sends one (through a multi handle, protobuf, empty). */
static int post(CURL *e, const char *url, const char *ca_file)
{
        struct curl_slist *headers =
            curl_slist_append(NULL, "Content-Type: application/x-protobuf");
        CURLM *m = curl_multi_init();
        CURLcode code = CURLE_FAILED_INIT;
        long status = 0;
        int running = 1, left;
        CURLMsg *msg;

        if (!m || !headers) {
                curl_slist_free_all(headers);
                curl_multi_cleanup(m);
                return -1;
        }
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
        if (ca_file)
                curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
        curl_multi_add_handle(m, e);
        while (running && curl_multi_perform(m, &running) == CURLM_OK)
                if (running)
                        curl_multi_poll(m, NULL, 0, 100, NULL);
        while ((msg = curl_multi_info_read(m, &left)))
                if (msg->msg == CURLMSG_DONE)
                        code = msg->data.result;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(m, e);
        curl_multi_cleanup(m);
        curl_slist_free_all(headers);
        if (code != CURLE_OK || status != 200) {
                fprintf(stderr, "floor-curl: POST %s: %s, HTTP %ld\n", url,
                        curl_easy_strerror(code), status);
                return -1;
        }
        return 0;
}

int main(int argc, char **argv)
{
        char what[512];
        CURL *e;

        if (argc > 3 || (argc > 1 && argv[1][0] == '-')) {
                fprintf(stderr, "usage: floor-curl [URL [CA_FILE]]\n");
                return 2;
        }
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(e = curl_easy_init())) {
                fprintf(stderr, "floor-curl: libcurl could not be set up\n");
                return 1;
        }
        floor_print("libcurl", "after curl_global_init and curl_easy_init");
        if (argc > 1) {
                if (post(e, argv[1], argc > 2 ? argv[2] : NULL) < 0)
                        return 1;
                floor_settle();
                snprintf(what, sizeof(what), "2 s after one POST to %s", argv[1]);
                floor_print("libcurl", what);
        }
        curl_easy_cleanup(e);
        curl_global_cleanup();
        return 0;
}
