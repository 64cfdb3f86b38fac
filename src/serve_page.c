/* serve_page.c - src/serve_page.html built into the program (serve_page.h)
 * by the assembler's .incbin, so the server reads no file to send it. The
 * Makefile compiles this file from the repository's root, where the path
 * below starts, and again when the page changes. */
#include "serve_page.h"

#include <stdint.h>

__asm__(".pushsection .rodata\n"
        ".globl u2net_serve_page_start\n"
        ".hidden u2net_serve_page_start\n"
        "u2net_serve_page_start:\n"
        ".incbin \"src/serve_page.html\"\n"
        ".globl u2net_serve_page_end\n"
        ".hidden u2net_serve_page_end\n"
        "u2net_serve_page_end:\n"
        ".popsection\n");

extern const char u2net_serve_page_start[], u2net_serve_page_end[];

const char *serve_page(size_t *len)
{
    *len = (size_t)((uintptr_t)u2net_serve_page_end - (uintptr_t)u2net_serve_page_start);
    return u2net_serve_page_start;
}
