/* error.c - filling in u2net_error. */
#include <stdarg.h>
#include <stdio.h>

#include "error.h"

void set_error(u2net_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}
