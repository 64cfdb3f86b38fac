/* options.h - the command line of the image command, `u2net [OPTIONS]
 * INPUT... -o OUTPUT` (u2net --help). Parsing has no side effects: it prints
 * nothing, touches no file and never exits, so tests/fuzz/fuzz_cli.c can run
 * it on any argv. */
#ifndef U2NET_OPTIONS_H
#define U2NET_OPTIONS_H

#include <stddef.h>

#include "u2net.h"

/* What the command line asked for; the strings point into argv. */
typedef struct {
    const char **inputs;
    size_t n_inputs;
    const char *output;
    u2net_output_type types[U2NET_OUT_COUNT];
    int n_types;
    const char *model;  /* NULL: the default model */
    long threads;       /* 0: all cores */
    u2net_device device;
    int recursive, quiet, verbose, overwrite, skip_existing;
    int jpeg;           /* --format jpg */
    long jpeg_quality;  /* 0: the library's default */
    size_t max_pixels;
    const char *background_image;
    u2net_mask_opts mask;
    u2net_render_opts render;
    char error[512];    /* after a usage error: one line saying what is wrong */
} options;

typedef enum {
    PARSE_RUN,          /* a complete, consistent command line */
    PARSE_HELP,         /* -h or --help was given */
    PARSE_VERSION,      /* --version was given */
    PARSE_USAGE_ERROR,  /* o->error says what is wrong */
    PARSE_NO_MEMORY
} parse_result;

/* Parses argv (argv[0] the program's name) into o, defaults first. Whatever
 * the result, free o with options_free. */
parse_result options_parse(int argc, char **argv, options *o);
void options_free(options *o);

/* Whether an option of the image command (its name, as "--size", without
 * "=value") takes a value: how `u2net stream` passes its options on to
 * options_parse without knowing them one by one. */
int options_takes_value(const char *name);

#endif
