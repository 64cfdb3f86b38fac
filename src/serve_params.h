/* serve_params.h - the parameters of one `POST /api/remove` request of
 * `u2net serve`, from its query string and form fields: rembg's (model, a,
 * af, ab, ae, om, ppm, bgc) and this program's own, named as the image
 * command's options without the dashes (type, threshold, fg-threshold, ...;
 * '_' may stand for '-'). Parsing has no side effects: it reads no file,
 * whatever a value says. */
#ifndef U2NET_SERVE_PARAMS_H
#define U2NET_SERVE_PARAMS_H

#include <stddef.h>

#include "u2net.h"

/* Most models one server holds (-m given this many times). */
#define SERVE_MAX_MODELS 8

typedef struct {
    int model;                 /* index into the server's models (0: the first, the default) */
    u2net_output_type type;    /* (rgba) */
    int jpeg;                  /* format=jpg, for the types without alpha */
    int jpeg_quality;          /* 0: the library's default */
    u2net_mask_opts mask;
    u2net_render_opts render;  /* render.background is always NULL: colours only */
    int has_bgc;               /* rembg's bgc=R,G,B,A: the cutout over this colour and alpha */
    unsigned char bgc[4];
    char error[384];           /* after a refusal: one line saying what is wrong */
    /* what was given, for the consistency checks of serve_params_finish */
    long fg, bg;               /* fg-threshold / bg-threshold, or -1 */
    int refine, guided, alpha_matting, morph_radius_given;
} serve_params;

/* Defaults first (model 0, rgba, the library's defaults). */
void serve_params_init(serve_params *p);

/* Takes one parameter. model_names are the loaded models' names, in order.
 * Returns 0, or -1 with p->error saying what is wrong with it. */
int serve_params_set(serve_params *p, const char *key, const char *value,
                     const char *const *model_names, int n_models);

/* After the last parameter: resolves what follows from what (as the image
 * command does) and checks the whole. Returns 0, or -1 with p->error. */
int serve_params_finish(serve_params *p);

#endif
