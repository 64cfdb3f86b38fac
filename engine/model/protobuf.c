/* protobuf.c - the wire-format reader of protobuf.h. */
#include "protobuf.h"

void pb_reader_init(pb_reader *r, pb_bytes message)
{
    r->at = message.data;
    r->end = message.data + message.len;
    r->error = NULL;
}

int pb_read_varint(const unsigned char **at, const unsigned char *end, uint64_t *value)
{
    uint64_t v = 0;
    const unsigned char *p = *at;
    /* 10 bytes carry 70 bits: enough for any 64-bit value */
    for (int shift = 0; shift < 70; shift += 7) {
        if (p >= end)
            return -1;
        const unsigned char b = *p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            *at = p;
            *value = v;
            return 0;
        }
    }
    return -1;
}

uint32_t pb_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t pb_le64(const unsigned char *p)
{
    return (uint64_t)pb_le32(p) | (uint64_t)pb_le32(p + 4) << 32;
}

int pb_next(pb_reader *r, pb_field *f)
{
    if (r->error)
        return -1;
    if (r->at >= r->end)
        return 0;
    uint64_t key;
    if (pb_read_varint(&r->at, r->end, &key) != 0) {
        r->error = "a field key is truncated or longer than 10 bytes";
        return -1;
    }
    f->number = key >> 3;
    f->wire = (int)(key & 7);
    f->varint = 0;
    f->bytes.data = r->at;
    f->bytes.len = 0;
    if (f->number == 0) {
        r->error = "field number 0";
        return -1;
    }
    const size_t left = (size_t)(r->end - r->at);
    switch (f->wire) {
    case PB_VARINT:
        if (pb_read_varint(&r->at, r->end, &f->varint) != 0) {
            r->error = "a varint is truncated or longer than 10 bytes";
            return -1;
        }
        return 1;
    case PB_FIXED64:
    case PB_FIXED32: {
        const size_t n = f->wire == PB_FIXED64 ? 8 : 4;
        if (left < n) {
            r->error = "a fixed-width value is truncated";
            return -1;
        }
        f->bytes.len = n;
        r->at += n;
        return 1;
    }
    case PB_BYTES: {
        uint64_t n;
        if (pb_read_varint(&r->at, r->end, &n) != 0) {
            r->error = "a length is truncated or longer than 10 bytes";
            return -1;
        }
        if (n > (uint64_t)(r->end - r->at)) {
            r->error = "a length runs past the end of its message";
            return -1;
        }
        f->bytes.data = r->at;
        f->bytes.len = (size_t)n;
        r->at += n;
        return 1;
    }
    default:
        r->error = "an unknown wire type (3, 4, 6 or 7)";
        return -1;
    }
}
