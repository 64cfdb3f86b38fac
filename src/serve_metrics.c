/* serve_metrics.c - the server's counters and their Prometheus text
 * (serve_metrics.h). */
#include "serve_metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve_text.h"

/* The statuses the server gives, each counted apart; any other in the last. */
static const int statuses[] = {200, 400, 404, 405, 408, 413, 415, 500, 503, 504, 0};
#define N_STATUSES (int)(sizeof statuses / sizeof *statuses)
/* Latency bucket bounds of /api/remove, in seconds (+Inf besides). */
static const double bounds[] = {0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define N_BOUNDS (int)(sizeof bounds / sizeof *bounds)

typedef struct {
    unsigned long long answered[ROUTE_COUNT][N_STATUSES];
    unsigned long long buckets[N_BOUNDS + 1];  /* not cumulative; the last is +Inf */
    double latency_sum;
    unsigned long long latency_count, dropped;
    int in_flight;
} counts;

struct serve_metrics {
    pthread_mutex_t lock;
    counts c;
};

const char *serve_route_path(serve_route r)
{
    static const char *const paths[ROUTE_COUNT] = {"/", "/api/remove", "/api/models", "/health",
                                                   "/metrics", "other"};
    return paths[r];
}

serve_metrics *serve_metrics_new(void)
{
    serve_metrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->lock, NULL);
    return m;
}

void serve_metrics_free(serve_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void serve_metrics_started(serve_metrics *m)
{
    pthread_mutex_lock(&m->lock);
    m->c.in_flight++;
    pthread_mutex_unlock(&m->lock);
}

void serve_metrics_answered(serve_metrics *m, serve_route r, int status, double seconds)
{
    int s = 0;
    while (s < N_STATUSES - 1 && statuses[s] != status)
        s++;
    int b = 0;
    while (b < N_BOUNDS && seconds > bounds[b])
        b++;
    pthread_mutex_lock(&m->lock);
    m->c.answered[r][s]++;
    if (r == ROUTE_REMOVE) {
        m->c.buckets[b]++;
        m->c.latency_sum += seconds;
        m->c.latency_count++;
    }
    pthread_mutex_unlock(&m->lock);
}

void serve_metrics_ended(serve_metrics *m, int answered)
{
    pthread_mutex_lock(&m->lock);
    m->c.in_flight--;
    m->c.dropped += !answered;
    pthread_mutex_unlock(&m->lock);
}

int serve_metrics_in_flight(serve_metrics *m)
{
    pthread_mutex_lock(&m->lock);
    const int n = m->c.in_flight;
    pthread_mutex_unlock(&m->lock);
    return n;
}

/* One number from a "Name:   N kB" line of /proc/self/status, in bytes. */
static size_t status_kb(const char *name)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    size_t v = 0;
    const size_t n = strlen(name);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, name, n) && line[n] == ':') {
            v = (size_t)strtoull(line + n + 1, NULL, 10) * 1024;
            break;
        }
    fclose(f);
    return v;
}

void serve_process_memory(size_t *rss, size_t *peak)
{
    *rss = status_kb("VmRSS");
    *peak = status_kb("VmHWM");
}

char *serve_metrics_text(serve_metrics *m, const serve_workers_load *load, size_t *len)
{
    counts copy;
    pthread_mutex_lock(&m->lock);
    copy = m->c;
    pthread_mutex_unlock(&m->lock);
    size_t rss, peak;
    serve_process_memory(&rss, &peak);
    text_buf t = {0};
    unsigned long long errors = 0;
    text_appendf(&t, "# HELP u2net_requests_total Requests answered, by path and status.\n"
                     "# TYPE u2net_requests_total counter\n");
    for (int r = 0; r < ROUTE_COUNT; r++)
        for (int s = 0; s < N_STATUSES; s++) {
            const unsigned long long n = copy.answered[r][s];
            if (!n)
                continue;
            if (statuses[s] == 0 || statuses[s] >= 400)
                errors += n;
            if (statuses[s])
                text_appendf(&t, "u2net_requests_total{path=\"%s\",code=\"%d\"} %llu\n",
                             serve_route_path((serve_route)r), statuses[s], n);
            else
                text_appendf(&t, "u2net_requests_total{path=\"%s\",code=\"other\"} %llu\n",
                             serve_route_path((serve_route)r), n);
        }
    text_appendf(&t, "# HELP u2net_request_errors_total Requests answered with a status of 400 "
                     "or more.\n# TYPE u2net_request_errors_total counter\n"
                     "u2net_request_errors_total %llu\n", errors);
    text_appendf(&t, "# HELP u2net_requests_dropped_total Requests that ended without an answer "
                     "(client gone, or a limit broken mid-body).\n"
                     "# TYPE u2net_requests_dropped_total counter\n"
                     "u2net_requests_dropped_total %llu\n", copy.dropped);
    text_appendf(&t, "# HELP u2net_request_duration_seconds Time from a request's headers to "
                     "its answer, /api/remove.\n"
                     "# TYPE u2net_request_duration_seconds histogram\n");
    unsigned long long cumulative = 0;
    for (int b = 0; b <= N_BOUNDS; b++) {
        cumulative += copy.buckets[b];
        if (b < N_BOUNDS)
            text_appendf(&t, "u2net_request_duration_seconds_bucket{le=\"%g\"} %llu\n", bounds[b],
                         cumulative);
        else
            text_appendf(&t, "u2net_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                         cumulative);
    }
    text_appendf(&t, "u2net_request_duration_seconds_sum %.6f\n"
                     "u2net_request_duration_seconds_count %llu\n",
                 copy.latency_sum, copy.latency_count);
    text_appendf(&t, "# HELP u2net_requests_in_flight Requests begun and not yet ended.\n"
                     "# TYPE u2net_requests_in_flight gauge\nu2net_requests_in_flight %d\n",
                 copy.in_flight);
    text_appendf(&t, "# HELP u2net_queue_jobs Images waiting for a worker.\n"
                     "# TYPE u2net_queue_jobs gauge\nu2net_queue_jobs %d\n"
                     "# HELP u2net_queue_capacity Images that may wait at most.\n"
                     "# TYPE u2net_queue_capacity gauge\nu2net_queue_capacity %d\n"
                     "# HELP u2net_workers_busy Workers processing an image.\n"
                     "# TYPE u2net_workers_busy gauge\nu2net_workers_busy %d\n"
                     "# HELP u2net_workers Worker threads.\n"
                     "# TYPE u2net_workers gauge\nu2net_workers %d\n",
                 load->queued, load->capacity, load->busy, load->workers);
    text_appendf(&t, "# HELP process_resident_memory_bytes Resident memory.\n"
                     "# TYPE process_resident_memory_bytes gauge\n"
                     "process_resident_memory_bytes %zu\n"
                     "# HELP u2net_peak_resident_memory_bytes Peak resident memory.\n"
                     "# TYPE u2net_peak_resident_memory_bytes gauge\n"
                     "u2net_peak_resident_memory_bytes %zu\n", rss, peak);
    return text_take(&t, len);
}
