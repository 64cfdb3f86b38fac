/* progress.c - the progress bar. Drawn with a carriage return and "erase to
 * end of line", so it needs a terminal; the caller decides whether there is
 * one. */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util.h"

/* Widest bar drawn, in cells. */
#define BAR_CELLS 30

static int terminal_columns(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* H:MM:SS or M:SS; "--:--" when not known. */
static void format_duration(char *buf, size_t n, double seconds)
{
    if (!(seconds >= 0) || seconds > 99 * 3600.0) {
        snprintf(buf, n, "--:--");
        return;
    }
    const long t = (long)(seconds + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void progress_start(progress *p, size_t total, size_t done, int enabled)
{
    p->enabled = enabled;
    p->shown = 0;
    p->total = total;
    p->done = done < total ? done : total;
    p->start = now_seconds();
    progress_redraw(p);
}

void progress_step(progress *p)
{
    if (p->done < p->total)
        p->done++;
    progress_redraw(p);
}

void progress_clear(progress *p)
{
    if (!p->shown)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    p->shown = 0;
}

void progress_redraw(progress *p)
{
    if (!p->enabled)
        return;
    const double elapsed = now_seconds() - p->start;
    char rate[32], when[32], text[160];
    if (p->done > 0 && elapsed > 0) {
        const double per_second = p->done / elapsed;
        snprintf(rate, sizeof rate, "%.*f img/s", per_second < 10 ? 2 : 1, per_second);
        if (p->done == p->total) {
            format_duration(when, sizeof when, elapsed);
            snprintf(text, sizeof text, "%zu/%zu  %s  in %s", p->done, p->total, rate, when);
        } else {
            format_duration(when, sizeof when, (p->total - p->done) / per_second);
            snprintf(text, sizeof text, "%zu/%zu  %s  ETA %s", p->done, p->total, rate, when);
        }
    } else {
        snprintf(text, sizeof text, "%zu/%zu  -- img/s  ETA --:--", p->done, p->total);
    }
    /* one line, never wrapped: a wrapped line could not be redrawn by "\r" */
    const int cols = terminal_columns() - 1;
    const int text_len = (int)strlen(text);
    int cells = cols - text_len - 3;
    if (cells > BAR_CELLS)
        cells = BAR_CELLS;
    char bar[BAR_CELLS + 4] = "";
    if (cells >= 10) {
        const int full = p->total ? (int)((double)cells * p->done / p->total) : cells;
        bar[0] = '[';
        for (int i = 0; i < cells; i++)
            bar[1 + i] = i < full ? '#' : '.';
        bar[1 + cells] = ']';
        bar[2 + cells] = ' ';
        bar[3 + cells] = '\0';
    }
    const int room = cols - (int)strlen(bar);
    fprintf(stderr, "\r%s%.*s\033[K", bar, room > 0 ? room : 0, text);
    fflush(stderr);
    p->shown = 1;
}

void progress_end(progress *p)
{
    if (!p->enabled)
        return;
    if (!p->shown)
        progress_redraw(p);
    fputc('\n', stderr);
    fflush(stderr);
    p->shown = 0;
}
