/* builtin_model.h - the model file linked into the library: the trained
 * U2NetP (weights/u2netp.u2nc, float16), so that the program and the
 * library work with no model file at hand. */
#ifndef U2NET_BUILTIN_MODEL_H
#define U2NET_BUILTIN_MODEL_H

#include <stddef.h>

/* Its bytes, 64-byte aligned and read-only, and their count in *bytes; NULL
 * (and 0) in a library built without it (make BUILTIN_MODEL=0). */
const unsigned char *builtin_model(size_t *bytes);

#endif
