/* placement.c - buffers placed in one arena by lifetime (placement.h). */
#include <stdlib.h>

#include "placement.h"

size_t place_by_lifetime(placed_buffer *b, int n)
{
    int *order = malloc(sizeof(int) * (size_t)(n ? n : 1));
    int *placed = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!order || !placed) {
        free(order);
        free(placed);
        return (size_t)-1;
    }
    /* insertion sort by size, largest first (a few hundred buffers) */
    for (int i = 0; i < n; i++) {
        int j = i;
        while (j > 0 && b[order[j - 1]].floats < b[i].floats) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    size_t total = 0;
    int n_placed = 0;
    for (int i = 0; i < n; i++) {
        placed_buffer *bf = &b[order[i]];
        size_t off = 0;
        for (int moved = 1; moved;) {
            moved = 0;
            for (int j = 0; j < n_placed; j++) {
                const placed_buffer *o = &b[placed[j]];
                const int live = !(bf->last < o->first || o->last < bf->first);
                if (live && off < o->offset + o->floats && o->offset < off + bf->floats) {
                    off = o->offset + o->floats;
                    moved = 1;
                }
            }
        }
        bf->offset = off;
        placed[n_placed++] = order[i];
        if (off + bf->floats > total)
            total = off + bf->floats;
    }
    free(order);
    free(placed);
    return total;
}
