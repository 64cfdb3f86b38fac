/* resources.c - memory under the process's limits, threads it can start
 * (resources.h). Both are looked at when a run plans its memory, so that a
 * limit gives one line at once instead of the kernel's OOM killer (a
 * cgroup limit: allocations succeed, touching them kills) or libgomp
 * ending the process when it cannot start a thread (an address-space
 * limit). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "error.h"
#include "resources.h"

/* ---- address space ---- */

static size_t address_space_room(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return SIZE_MAX;
    unsigned long long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    const int got = f && fscanf(f, "%llu", &pages) == 1;
    if (f)
        fclose(f);
    if (!got)
        return SIZE_MAX;
    const unsigned long long used = pages * (unsigned long long)sysconf(_SC_PAGESIZE);
    return used >= rl.rlim_cur ? 0 : (size_t)(rl.rlim_cur - used);
}

/* ---- cgroups ---- */

/* The number in file dir/name (v2's "max": none), or -1. */
static long long read_number(const char *dir, const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char text[64] = "";
    const int got = fgets(text, sizeof text, f) != NULL;
    fclose(f);
    if (!got || !isdigit((unsigned char)text[0]))
        return -1;
    return strtoll(text, NULL, 10);
}

/* The sum of the given keys' values in dir/memory.stat (0 when missing). */
static long long stat_sum(const char *dir, const char *add, const char *subtract)
{
    char path[PATH_MAX + 64], key[64];
    snprintf(path, sizeof path, "%s/memory.stat", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long long value, sum = 0;
    while (fscanf(f, "%63s %lld", key, &value) == 2) {
        if (!strcmp(key, add))
            sum += value;
        else if (!strcmp(key, subtract))
            sum -= value;
    }
    fclose(f);
    return sum > 0 ? sum : 0;
}

/* Limits at or above 2^62 are v1's way of saying none. */
#define NO_LIMIT (1LL << 62)

/* The least room along dir and its parents up to the mount point `top`. */
static size_t cgroup_room_along(char *dir, size_t top, int v2)
{
    size_t room = SIZE_MAX;
    for (;;) {
        const long long limit = read_number(dir, v2 ? "memory.max" : "memory.limit_in_bytes");
        if (limit >= 0 && limit < NO_LIMIT) {
            const long long used = read_number(dir, v2 ? "memory.current" : "memory.usage_in_bytes");
            /* page cache the kernel reclaims before it kills; shared
             * memory and tmpfs, which it cannot drop, stay counted */
            const long long cache = v2 ? stat_sum(dir, "file", "shmem")
                                       : stat_sum(dir, "total_cache", "total_shmem");
            const long long held = used > cache ? used - cache : 0;
            const size_t r = used < 0 ? SIZE_MAX : held >= limit ? 0 : (size_t)(limit - held);
            room = r < room ? r : room;
        }
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < top)
            return room;
        *slash = 0;
    }
}

/* The mount point and root of the cgroup hierarchy holding the memory
 * controller (v1: a "cgroup" mount whose options name memory; v2: the
 * "cgroup2" mount); 0 when found. */
static int find_mount(int v2, char *point, char *root, size_t cap)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return -1;
    char line[4096];
    int found = -1;
    while (found != 0 && fgets(line, sizeof line, f)) {
        char r[1024], p[1024], type[64], opts[1024];
        const char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %1023s %1023s", r, p) != 2 ||
            sscanf(dash + 3, "%63s %*s %1023s", type, opts) != 2)
            continue;
        const int match = v2 ? !strcmp(type, "cgroup2")
                             : !strcmp(type, "cgroup") && strstr(opts, "memory") != NULL;
        if (match && strlen(p) < cap && strlen(r) < cap) {
            strcpy(point, p);
            strcpy(root, r);
            found = 0;
        }
    }
    fclose(f);
    return found;
}

/* The room under the hierarchy's limits (v1's memory controller or v2). */
static size_t cgroup_room(int v2)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return SIZE_MAX;
    char line[4096], path[2048] = "";
    int have = 0;
    while (!have && fgets(line, sizeof line, f)) {
        /* "id:controllers:path"; v2's line is "0::path" */
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b)
            continue;
        *b = 0;
        const char *controllers = a + 1;
        int mine = 0;
        if (v2)
            mine = !strcmp(line, "0") && !*controllers;
        else
            for (const char *c = controllers; *c && !mine; c += strcspn(c, ","), c += *c == ',')
                mine = !strncmp(c, "memory", 6) && (c[6] == ',' || !c[6]);
        if (mine && strlen(b + 1) < sizeof path) {
            strcpy(path, b + 1);
            path[strcspn(path, "\n")] = 0;
            have = 1;
        }
    }
    fclose(f);
    char point[1024], root[1024], dir[PATH_MAX + 1];
    if (!have || find_mount(v2, point, root, sizeof point) != 0)
        return SIZE_MAX;
    /* the path is relative to the hierarchy's root; the mount shows `root` */
    const size_t rl = strcmp(root, "/") ? strlen(root) : 0;
    if (strncmp(path, root, rl) != 0)
        return SIZE_MAX;
    if (snprintf(dir, sizeof dir, "%s%s", point, path + rl) >= (int)sizeof dir)
        return SIZE_MAX;
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        dir[--n] = 0;
    return cgroup_room_along(dir, strlen(point), v2);
}

void memory_room_now(memory_room *r)
{
    r->address_space = address_space_room();
    const size_t v1 = cgroup_room(0), v2 = cgroup_room(1);
    r->cgroup = v1 < v2 ? v1 : v2;
}

static double mb(size_t bytes) { return (double)bytes / (1 << 20); }

int memory_room_check(const memory_room *r, size_t bytes, const char *what, const char *detail,
                      u2net_error *err)
{
    const char *limit = NULL;
    size_t left = 0;
    if (bytes > r->address_space)
        limit = "the address-space limit (ulimit -v)", left = r->address_space;
    else if (bytes > r->cgroup)
        limit = "the cgroup's memory limit", left = r->cgroup;
    if (!limit)
        return 0;
    set_error(err, U2NET_ENOMEM, "out of memory: %s needs %.1f MB (%s), and %s leaves %.1f MB",
              what, mb(bytes), detail, limit, mb(left));
    return U2NET_ENOMEM;
}

/* ---- threads ---- */

int cores_available(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t go;
    int released;
} probe_gate;

static void *wait_at_gate(void *arg)
{
    probe_gate *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->released)
        pthread_cond_wait(&g->go, &g->lock);
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

/* The stack size libgomp gives its threads when OMP_STACKSIZE or
 * GOMP_STACKSIZE sets one (a number, kilobytes unless followed by B, K, M
 * or G), else 0: the default thread stack. */
static size_t openmp_stack_bytes(void)
{
    const char *s = getenv("OMP_STACKSIZE");
    if (!s)
        s = getenv("GOMP_STACKSIZE");
    if (!s)
        return 0;
    char *end;
    const unsigned long long n = strtoull(s, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    const int unit = toupper((unsigned char)*end);
    const unsigned long long scale = unit == 'B' ? 1 : unit == 'M' ? 1ULL << 20
                                   : unit == 'G' ? 1ULL << 30 : 1ULL << 10;
    return end == s || n > SIZE_MAX / scale ? 0 : (size_t)(n * scale);
}

/* The stack a thread gets by default (RLIMIT_STACK's, or glibc's own). */
static size_t default_stack_bytes(void)
{
    size_t bytes = 8u << 20;
    pthread_attr_t a;
    if (pthread_getattr_default_np(&a) == 0) {
        pthread_attr_getstacksize(&a, &bytes);
        pthread_attr_destroy(&a);
    }
    return bytes;
}

int threads_startable(int want, size_t reserve)
{
    if (want <= 1)
        return 1;
    probe_gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    pthread_t *t = malloc(sizeof *t * (size_t)(want - 1));
    void **stacks = calloc((size_t)(want - 1), sizeof *stacks);
    if (!t || !stacks) {
        free(t), free(stacks);
        return 1;
    }
    /* each probe thread on a stack of libgomp's size mapped here and
     * unmapped after it: glibc would keep stacks of its own mapping cached
     * after the join, holding the room the real threads need */
    const size_t stack = openmp_stack_bytes() ? openmp_stack_bytes() : default_stack_bytes();
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    int started = 0;
    while (started < want - 1) {
        void *s = mmap(NULL, stack + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (s == MAP_FAILED)
            break;
        pthread_attr_t attr;
        int ok = pthread_attr_init(&attr) == 0;
        ok = ok && pthread_attr_setstack(&attr, s, stack + page) == 0 &&
             pthread_create(&t[started], &attr, wait_at_gate, &g) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) {
            munmap(s, stack + page);
            break;
        }
        stacks[started++] = s;
    }
    /* the threads' stacks are mapped now: keep as many as leave the reserve */
    memory_room room;
    memory_room_now(&room);
    int kept = started;
    while (kept > 0 && room.address_space != SIZE_MAX &&
           room.address_space + (size_t)(started - kept) * (stack + page) < reserve)
        kept--;
    pthread_mutex_lock(&g.lock);
    g.released = 1;
    pthread_cond_broadcast(&g.go);
    pthread_mutex_unlock(&g.lock);
    for (int i = 0; i < started; i++) {
        pthread_join(t[i], NULL);
        munmap(stacks[i], stack + page);
    }
    free(t);
    free(stacks);
    const int threads = kept + 1;
    /* OpenMP's pool for this thread, while the room the probe found is free */
    #pragma omp parallel num_threads(threads)
    {
    }
    return threads;
}
