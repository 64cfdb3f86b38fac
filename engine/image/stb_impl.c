/* stb_impl.c - the one translation unit that compiles stb_image (the
 * patched copy in engine/stb/, see the note at its top) and stb_image_write
 * (Debian's libstb-dev), with the decoders the program reads and a dimension
 * cap, so the library does not depend on how a system libstb was configured. */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_NO_PSD
#define STBI_NO_PIC
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_NO_STDIO
#define STBI_WRITE_NO_STDIO
/* Sides beyond this are refused by the decoder itself; the pixel-count limit
 * is checked in image.c before decoding starts. */
#define STBI_MAX_DIMENSIONS (1 << 20)

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wtype-limits"
#include "stb/stb_image.h"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop
