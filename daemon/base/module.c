/* SPDX-License-Identifier: MIT */
#include "base/module.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "ss-macro.h"

#ifndef SS_MODULE_DIR
#define SS_MODULE_DIR "/usr/local/lib/sidespan"
#endif

/* Modules loaded so far; never unloaded (a daemon loads one or two, once). */
static struct {
        char name[16];
        void *handle;
} loaded[4];

/* The directory of the running executable into dir; false when unknown. */
static bool exe_dir(char *dir, size_t size)
{
        ssize_t n = readlink("/proc/self/exe", dir, size - 1);
        char *slash;

        if (n <= 0 || (size_t)n >= size - 1)
                return false;
        dir[n] = '\0';
        slash = strrchr(dir, '/');
        if (!slash)
                return false;
        *slash = '\0';
        return true;
}

/* Where module name is to be loaded from, into path. */
static void module_path(const char *name, char *path, size_t size)
{
        const char *env = getenv("SIDESPAN_MODULE_DIR");
        char dir[PATH_MAX];

        if (env && *env) {
                snprintf(path, size, "%s/sidespan-%s.so", env, name);
                return;
        }
        if (exe_dir(dir, sizeof(dir))) {
                snprintf(path, size, "%s/sidespan-%s.so", dir, name);
                if (access(path, R_OK) == 0)
                        return;
        }
        snprintf(path, size, "%s/sidespan-%s.so", SS_MODULE_DIR, name);
}

static void *module_open(const char *name)
{
        char path[PATH_MAX + 32];
        size_t free_slot = SS_ELEMENTSOF(loaded);
        void *h;

        for (size_t i = 0; i < SS_ELEMENTSOF(loaded); i++) {
                if (loaded[i].handle && strcmp(loaded[i].name, name) == 0)
                        return loaded[i].handle;
                if (!loaded[i].handle && free_slot == SS_ELEMENTSOF(loaded))
                        free_slot = i;
        }
        module_path(name, path, sizeof(path));
        h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                ss_log(SS_LOG_ERR,
                       "cannot load the %s module event=module-failed module=%s path=%s "
                       "error=\"%s\"",
                       name, name, path, dlerror());
                return NULL;
        }
        ss_log(SS_LOG_DEBUG, "loaded the %s module event=module-loaded module=%s path=%s", name,
               name, path);
        if (free_slot < SS_ELEMENTSOF(loaded)) {
                snprintf(loaded[free_slot].name, sizeof(loaded[free_slot].name), "%s", name);
                loaded[free_slot].handle = h;
        }
        return h;
}

int ss_module_fn_get(const char *name, const char *sym, ss_module_fn *ret)
{
        void *h = module_open(name), *p;

        if (!h)
                return -ENOENT;
        p = dlsym(h, sym);
        if (!p) {
                ss_log(SS_LOG_ERR, "the %s module lacks %s event=module-failed module=%s symbol=%s",
                       name, sym, name, sym);
                return -ENOENT;
        }
        /* POSIX: a data pointer from dlsym() converts to a function pointer. */
        memcpy(ret, &p, sizeof(*ret));
        return 0;
}

void ss_module_exit_all(void)
{
        for (size_t i = 0; i < SS_ELEMENTSOF(loaded); i++) {
                void *p = loaded[i].handle ? dlsym(loaded[i].handle, "ss_module_exit") : NULL;
                void (*fn)(void);

                if (!p)
                        continue;
                memcpy(&fn, &p, sizeof(fn));
                fn();
        }
}
