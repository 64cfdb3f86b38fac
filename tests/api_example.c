/* api_example.c - the library used as the README shows: cut the subject out
 * of one image with the public API alone. Built by the tests against the
 * installed library (pkg-config) to prove the install works.
 *
 *   api_example MODEL INPUT OUTPUT.png
 */
#include <stdio.h>
#include <u2net.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL INPUT OUTPUT.png\n", argv[0]);
        return 2;
    }
    u2net_error err;
    u2net_image img = {0}, cut = {0};
    u2net_matte matte = {0};
    u2net_mask_opts mo;
    u2net_render_opts ro;
    u2net_mask_opts_default(&mo);
    u2net_render_opts_default(&ro);
    int rc = 1;
    u2net_model *model = u2net_model_load(argv[1], &err);
    u2net_ctx *ctx = model ? u2net_ctx_new(model, 0, &err) : NULL;
    if (ctx && u2net_image_load(argv[2], 0, &img, &err) == 0 &&
        u2net_matte_image(ctx, &img, &mo, &matte, &err) == 0 &&
        u2net_render(&img, &matte, U2NET_OUT_RGBA, &ro, &cut, &err) == 0 &&
        u2net_image_save(argv[3], &cut, 0, &err) == 0)
        rc = 0;
    else
        fprintf(stderr, "api_example: %s\n", err.msg);
    u2net_image_free(&cut);
    u2net_matte_free(&matte);
    u2net_image_free(&img);
    u2net_ctx_free(ctx);
    u2net_model_free(model);
    return rc;
}
