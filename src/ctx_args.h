/* ctx_args.h - the command-line options that choose how a context runs,
 * shared by `u2net tensor` and `u2net bench`:
 *   --device cpu|cuda   --threads N   --isa avx512|avx2|neon|portable
 *   --reference         --fast (CUDA: TF32)   --gpu N (CUDA device) */
#ifndef U2NET_CTX_ARGS_H
#define U2NET_CTX_ARGS_H

#include "u2net.h"

typedef struct {
    u2net_ctx_opts opts;
    const char *isa;   /* the --isa given, or NULL */
} ctx_args;

void ctx_args_default(ctx_args *a);

/* Whether argv[*i] is one of these options: 1 when it is and was parsed
 * (*i moved past its value), 0 when it is not one of them, -1 after a
 * message when its value is bad or missing (threads_min: 0 or 1, the
 * smallest --threads the command takes). */
int ctx_args_parse(ctx_args *a, int argc, char **argv, int *i, long threads_min);

/* A context for model m as a asks; NULL after a message (*status: the
 * exit status: 2 for a device this build or machine cannot give, 1
 * otherwise, a CPU without the --isa asked for included). */
u2net_ctx *ctx_args_new_context(const ctx_args *a, const u2net_model *m, int *status);

#endif
