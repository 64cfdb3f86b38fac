/* error.h - filling in the u2net_error every failing call returns. */
#ifndef U2NET_ERROR_H
#define U2NET_ERROR_H

#include "u2net.h"

/* Sets err (when not NULL) to code and the formatted one-line message. */
void set_error(u2net_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
