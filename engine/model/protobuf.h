/* protobuf.h - reading protobuf's wire format, the encoding of ONNX files:
 * a message is a run of fields, each a varint key (field number << 3 | wire
 * type) and a value: a varint, 8 or 4 fixed bytes, or a varint length and
 * that many bytes (a string, a nested message or a packed array). Every
 * length is checked against the bytes that are left, so a reader never
 * looks outside the buffer it was given; nothing is allocated. */
#ifndef U2NET_PROTOBUF_H
#define U2NET_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_BYTES = 2, PB_FIXED32 = 5 };

typedef struct {
    const unsigned char *data;
    size_t len;
} pb_bytes;

/* One field: its number, wire type and value. A varint's value is in
 * varint; the payload of the other wire types (4 or 8 bytes for the fixed
 * ones) is in bytes. */
typedef struct {
    uint64_t number;
    int wire;
    uint64_t varint;
    pb_bytes bytes;
} pb_field;

/* A position in a message; error says what was wrong once pb_next fails. */
typedef struct {
    const unsigned char *at, *end;
    const char *error;
} pb_reader;

void pb_reader_init(pb_reader *r, pb_bytes message);

/* Reads the next field: 1 with *f filled in, 0 at the end of the message,
 * -1 when the bytes are not a message (r->error names the problem: a
 * truncated or over-long varint, a length past the end, field number 0, an
 * unknown wire type). */
int pb_next(pb_reader *r, pb_field *f);

/* Reads one varint at *at, before end, and advances *at; 0, or -1 when it
 * is truncated or longer than 10 bytes. Bits past the 64th are dropped. */
int pb_read_varint(const unsigned char **at, const unsigned char *end, uint64_t *value);

/* The fixed-width values of a PB_FIXED32 or PB_FIXED64 field, or of one
 * element of a packed array, little-endian. */
uint32_t pb_le32(const unsigned char *p);
uint64_t pb_le64(const unsigned char *p);

#endif
