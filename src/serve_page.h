/* serve_page.h - the web page `u2net serve` sends for GET / (the file
 * src/serve_page.html, built into the program). */
#ifndef U2NET_SERVE_PAGE_H
#define U2NET_SERVE_PAGE_H

#include <stddef.h>

/* The page and its length in bytes. */
const char *serve_page(size_t *len);

#endif
