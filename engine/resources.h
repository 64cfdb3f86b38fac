/* resources.h - what the process may still take before a run plans on it:
 * memory under its limits, and threads it can start. */
#ifndef U2NET_RESOURCES_H
#define U2NET_RESOURCES_H

#include <stddef.h>

#include "u2net.h"

/* Memory the process may still take, in bytes (SIZE_MAX: no limit). */
typedef struct {
    size_t address_space;  /* RLIMIT_AS (ulimit -v) less what the process maps now */
    size_t cgroup;         /* its cgroup's memory limit (v2 memory.max or v1
                              memory.limit_in_bytes, the tightest on the path to
                              the root) less what the cgroup holds beyond its page
                              cache, which the kernel reclaims before it kills */
} memory_room;
void memory_room_now(memory_room *r);

/* Whether `bytes` more fit in r; when not, err says so in one line: the
 * run's size `what`, how much it needs (`detail`: where it goes) and which
 * limit leaves how much. */
int memory_room_check(const memory_room *r, size_t bytes, const char *what, const char *detail,
                      u2net_error *err);

/* The cores the process may run on: its CPU affinity mask. */
int cores_available(void);

/* How many of `want` OpenMP threads the process can run now (at least
 * 1), leaving `reserve` bytes of room: it starts want - 1 threads, keeps
 * as many as started with the room left, then runs an empty parallel
 * region of that many on the calling thread, so that OpenMP's own pool
 * exists before the run needs it. (libgomp ends the process when it cannot
 * start a thread; a thread's stack is its largest allocation, 8 MB of
 * address space by default.) */
int threads_startable(int want, size_t reserve);

/* context.c: the memory the caller of c's next runs takes besides the
 * network's plan (the image path's buffers, image_path_bytes), for the
 * backend's check and thread start (backend.h, reserve). */
void context_reserve_memory(u2net_ctx *c, size_t bytes);

#endif
