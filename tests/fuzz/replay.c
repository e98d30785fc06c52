/* SPDX-License-Identifier: MIT */
/*
 * The main of a fuzz target built without libFuzzer (STYLE.md rule 14): a
 * Check suite with one check per input, each input read into a buffer of
 * exactly its size and handed to LLVMFuzzerTestOneInput(). Arguments are
 * files or directories (every regular file in them, in name order). Check
 * forks per check, so an input that crashes the target counts as one error
 * and the others still run; the index of each check is printed with its
 * file first, so "replay_one:N" in a failure names the input.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz-util.h"
#include "ss-check.h"

/* LLVMFuzzerInitialize() is optional, as for libFuzzer. */
#pragma weak LLVMFuzzerInitialize

static char **files;
static int n_files;

static int add_file(const char *path)
{
        char **f = realloc(files, (size_t)(n_files + 1) * sizeof(*files));

        if (!f || !(f[n_files] = strdup(path)))
                return -ENOMEM;
        files = f;
        n_files++;
        return 0;
}

static int regular_file(const struct dirent *d)
{
        return d->d_name[0] != '.';
}

static int add_dir(const char *dir)
{
        struct dirent **list;
        int n = scandir(dir, &list, regular_file, alphasort), r = 0;

        if (n < 0)
                return -errno;
        for (int i = 0; i < n; i++) {
                char path[4096];
                struct stat st;

                snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
                if (r == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode))
                        r = add_file(path);
                free(list[i]);
        }
        free(list);
        return r;
}

/* The whole file in a malloc'd buffer of exactly its size (so ASan sees a read past it). */
static uint8_t *slurp(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "rb");
        uint8_t *data = NULL;
        long len;

        if (!f)
                return NULL;
        if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
                data = malloc(len ? (size_t)len : 1);
                if (data && fread(data, 1, (size_t)len, f) != (size_t)len) {
                        free(data);
                        data = NULL;
                }
                *ret_len = (size_t)len;
        }
        fclose(f);
        return data;
}

START_TEST(replay_one)
{
        size_t len = 0;
        uint8_t *data = slurp(files[_i], &len);

        ck_assert_msg(data != NULL, "cannot read %s", files[_i]);
        ck_assert_int_eq(LLVMFuzzerTestOneInput(data, len), 0);
        free(data);
}
END_TEST

int main(int argc, char **argv)
{
        const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
        Suite *s = suite_create(name);
        TCase *tc = tcase_create("corpus");
        int r;

        for (int i = 1; i < argc; i++) {
                struct stat st;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %s: %s\n", name, argv[i], strerror(errno));
                        return EXIT_FAILURE;
                }
                r = S_ISDIR(st.st_mode) ? add_dir(argv[i]) : add_file(argv[i]);
                if (r < 0) {
                        fprintf(stderr, "%s: %s: %s\n", name, argv[i], strerror(-r));
                        return EXIT_FAILURE;
                }
        }
        if (n_files == 0) {
                fprintf(stderr, "%s: no input files\n", name);
                return EXIT_FAILURE;
        }
        for (int i = 0; i < n_files; i++)
                printf("replay_one:%d: %s\n", i, files[i]);
        fflush(stdout);
        /* Once, as libFuzzer does; forked checks inherit what it set up. */
        if (LLVMFuzzerInitialize)
                LLVMFuzzerInitialize(&argc, &argv);
        tcase_add_loop_test(tc, replay_one, 0, n_files);
        suite_add_tcase(s, tc);
        r = ss_check_run(s);
        for (int i = 0; i < n_files; i++)
                free(files[i]);
        free(files);
        return r;
}
