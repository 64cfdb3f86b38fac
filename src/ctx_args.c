/* ctx_args.c - the options that choose how a context runs (ctx_args.h). */
#include <stdio.h>
#include <string.h>

#include "ctx_args.h"
#include "util.h"

void ctx_args_default(ctx_args *a)
{
    u2net_ctx_opts_default(&a->opts);
    a->isa = NULL;
}

int ctx_args_parse(ctx_args *a, int argc, char **argv, int *i, long threads_min)
{
    const char *opt = argv[*i];
    const int takes_value = !strcmp(opt, "--device") || !strcmp(opt, "--threads") ||
                            !strcmp(opt, "--isa") || !strcmp(opt, "--gpu");
    if (!strcmp(opt, "--reference")) {
        a->opts.reference = 1;
        return 1;
    }
    if (!strcmp(opt, "--fast")) {
        a->opts.fast = 1;
        return 1;
    }
    if (!takes_value)
        return 0;
    if (*i + 1 >= argc) {
        print_error("%s: missing value", opt);
        return -1;
    }
    const char *v = argv[++*i];
    long n;
    if (!strcmp(opt, "--device")) {
        if (device_from_name(v, &a->opts.device) != 0) {
            print_error("--device: '%s' is not cpu or cuda", v);
            return -1;
        }
    } else if (!strcmp(opt, "--threads")) {
        if (parse_int(v, threads_min, 1024, &n) != 0) {
            print_error("--threads: '%s' is not a thread count (%ld..1024)", v, threads_min);
            return -1;
        }
        a->opts.threads = (int)n;
    } else if (!strcmp(opt, "--isa")) {
        if (isa_from_name(v, &a->opts.isa) != 0) {
            print_error("--isa: '%s' is not avx512, avx2, neon or portable", v);
            return -1;
        }
        a->isa = v;
    } else {
        if (parse_int(v, 0, 1023, &n) != 0) {
            print_error("--gpu: '%s' is not a device index (0..1023)", v);
            return -1;
        }
        a->opts.gpu = (int)n;
    }
    return 1;
}

u2net_ctx *ctx_args_new_context(const ctx_args *a, const u2net_model *m, int *status)
{
    u2net_error err;
    u2net_ctx *c = u2net_ctx_new_opts(m, &a->opts, &err);
    if (!c) {
        *status = report_context_error(&err);
        return NULL;
    }
    if (a->isa && !a->opts.reference && a->opts.device == U2NET_DEVICE_CPU &&
        check_isa(a->isa, u2net_ctx_backend_name(c)) != 0) {
        u2net_ctx_free(c);
        *status = 1;
        return NULL;
    }
    const int threads = u2net_ctx_threads(c);
    if (a->opts.threads > threads && threads > 0)
        fprintf(stderr, "note: --threads %d: this process may run on %d core%s (its CPU "
                "affinity), so %d thread%s\n", a->opts.threads, threads, threads == 1 ? "" : "s",
                threads, threads == 1 ? "" : "s");
    return c;
}
