/* builtin_model.c - weights/u2netp.u2nc linked in (builtin_model.h).
 *
 * The assembler's .incbin copies the file into read-only data at build
 * time; .balign puts it on a 64-byte boundary, as the model file's tensor
 * offsets assume of a mapped file, so model.c reads its float16 weights in
 * place. The Makefile compiles this file from the repository's root, where
 * the path below starts, and sets U2NET_WITH_BUILTIN_MODEL. */
#include <stdint.h>

#include "builtin_model.h"

#ifndef U2NET_WITH_BUILTIN_MODEL
#define U2NET_WITH_BUILTIN_MODEL 1
#endif

#if U2NET_WITH_BUILTIN_MODEL

__asm__(".pushsection .rodata\n"
        ".balign 64\n"
        ".globl u2net_builtin_model_start\n"
        ".hidden u2net_builtin_model_start\n"
        "u2net_builtin_model_start:\n"
        ".incbin \"weights/u2netp.u2nc\"\n"
        ".globl u2net_builtin_model_end\n"
        ".hidden u2net_builtin_model_end\n"
        "u2net_builtin_model_end:\n"
        ".popsection\n");

extern const unsigned char u2net_builtin_model_start[], u2net_builtin_model_end[];

const unsigned char *builtin_model(size_t *bytes)
{
    *bytes = (size_t)((uintptr_t)u2net_builtin_model_end - (uintptr_t)u2net_builtin_model_start);
    return u2net_builtin_model_start;
}

#else

const unsigned char *builtin_model(size_t *bytes)
{
    *bytes = 0;
    return NULL;
}

#endif
