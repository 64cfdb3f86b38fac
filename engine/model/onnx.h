/* onnx.h - reading an ONNX export of a U2Net-family network into the
 * engine's model file format. */
#ifndef U2NET_ONNX_H
#define U2NET_ONNX_H

#include <stddef.h>

#include "u2net.h"

/* Whether a file's first bytes may be an ONNX model: a ModelProto starts
 * with its ir_version, field 1 as a varint (key byte 0x08). */
int onnx_sniff(const unsigned char *file, size_t size);

/* Reads the ONNX model in file[0, size) and builds, in a new 64-byte
 * aligned buffer (free() it), the version-2 model file that
 * `tools/convert.py` writes from the same file: the same network read from
 * the graph, BatchNormalization folded the same way, the converter's
 * default name and processing; float16 storage (as `--fp16`) when every
 * weight and bias is float16 and no BatchNormalization is folded, float32
 * otherwise. Returns 0, or -1 with err naming path and, where there is one,
 * the node at fault. */
int onnx_model_image(const char *path, const unsigned char *file, size_t size,
                     unsigned char **image, size_t *image_bytes, u2net_error *err);

#endif
