/* fuzz_cli.c - libFuzzer target for the image command's option parser
 * (src/options.c). The input is argv after the program's name, arguments
 * separated by NUL bytes. Besides crashes, it checks what a successful parse
 * promises: inputs, an output, 1..U2NET_OUT_COUNT distinct types and values
 * within their documented ranges; and that a usage error says why.
 * Seeds: seeds/cli. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

enum { MAX_ARGS = 256 };

static void check_parsed(const options *o)
{
    if (o->n_inputs < 1 || !o->output || !*o->output)
        abort();
    if (o->n_types < 1 || o->n_types > U2NET_OUT_COUNT)
        abort();
    for (int i = 0; i < o->n_types; i++) {
        if ((int)o->types[i] < 0 || o->types[i] >= U2NET_OUT_COUNT)
            abort();
        for (int j = 0; j < i; j++)
            if (o->types[i] == o->types[j])
                abort();
    }
    const u2net_mask_opts *m = &o->mask;
    if (m->net_width < 0 || m->net_width > U2NET_MAX_SIDE || m->net_height < 0 ||
        m->net_height > U2NET_MAX_SIDE ||
        (long long)m->net_width * m->net_height > U2NET_MAX_PIXELS)
        abort();
    if (!(m->threshold >= 0 && m->threshold <= 1) || !(m->feather >= 0 && m->feather <= 1000))
        abort();
    if (m->refine && !(m->bg_threshold >= 0 && m->bg_threshold < m->fg_threshold &&
                       m->fg_threshold <= 255))
        abort();
    if (o->max_pixels < 1 || o->threads < 0 || o->threads > 1024 || o->jpeg_quality < 0 ||
        o->jpeg_quality > 100 || o->render.padding < 0 || o->render.padding > 65535)
        abort();
    if (o->overwrite && o->skip_existing)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    /* a NUL-terminated copy, split at the NULs into arguments */
    char *text = malloc(n + 1);
    if (!text)
        return 0;
    memcpy(text, data, n);
    text[n] = '\0';
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "u2net";
    for (char *p = text; p <= text + n && argc <= MAX_ARGS; p += strlen(p) + 1)
        argv[argc++] = p;
    argv[argc] = NULL;
    options o;
    const parse_result r = options_parse(argc, argv, &o);
    if (r == PARSE_RUN)
        check_parsed(&o);
    else if (r == PARSE_USAGE_ERROR && (!o.error[0] || strchr(o.error, '\n')))
        abort();
    options_free(&o);
    free(text);
    return 0;
}
