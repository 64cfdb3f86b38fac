/* progress.h - a one-line progress bar on stderr: count/total, images per
 * second and the time left, redrawn in place. */
#ifndef U2NET_PROGRESS_H
#define U2NET_PROGRESS_H

#include <stddef.h>

typedef struct {
    int enabled;    /* draw at all (stderr is a terminal and not quiet) */
    int shown;      /* a bar is on the screen now */
    size_t total, done;
    double start;   /* now_seconds() at progress_start */
} progress;

/* Starts counting, with done of total finished already; draws nothing
 * unless enabled. */
void progress_start(progress *p, size_t total, size_t done, int enabled);
/* One more item finished: counts it and redraws. */
void progress_step(progress *p);
/* Erases the bar so that a message can be printed on a clean line; the next
 * progress_redraw puts it back. */
void progress_clear(progress *p);
void progress_redraw(progress *p);
/* Leaves the final bar on its own line. */
void progress_end(progress *p);

#endif
