/* placement.h - one arena for many buffers, each alive from one step of a
 * run to another: where each goes so that buffers alive at the same time
 * never overlap. The CPU and GPU backends both plan their memory so. */
#ifndef U2NET_PLACEMENT_H
#define U2NET_PLACEMENT_H

#include <stddef.h>

typedef struct {
    size_t floats;       /* size */
    int first, last;     /* the steps of its first and last use, inclusive */
    size_t offset;       /* in the arena: what place_by_lifetime decides */
} placed_buffer;

/* Greedy by size: each buffer, largest first, at the lowest offset that no
 * placed buffer alive at the same time covers. Returns the arena's size in
 * floats, or (size_t)-1 when out of memory. */
size_t place_by_lifetime(placed_buffer *b, int n);

#endif
