/* fileio.c - writing a file so that its path never holds a partial file:
 * the bytes go to a temporary file beside it, which is renamed over the path
 * only once complete. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Creates PATH.tmp.<pid>.<nonce> exclusively with mode 0666 less the umask
 * (mkstemp would make it 0600, and changing the umask is not thread-safe). */
static int create_temp(const char *path, char *tmp, size_t cap)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        const unsigned long nonce = (unsigned long)ts.tv_nsec ^ ((unsigned long)(uintptr_t)tmp >> 4) ^
                                    (unsigned long)attempt * 2654435761u;
        snprintf(tmp, cap, "%s.tmp.%ld.%lx", path, (long)getpid(), nonce);
        const int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

int u2net_write_file(const char *path, const void *data, size_t len, u2net_error *err)
{
    const size_t cap = strlen(path) + 64;
    char *tmp = malloc(cap);
    if (!tmp) {
        set_error(err, U2NET_ENOMEM, "%s: out of memory", path);
        return U2NET_ENOMEM;
    }
    const int fd = create_temp(path, tmp, cap);
    if (fd < 0) {
        set_error(err, U2NET_EIO, "%s: cannot create: %s", path, strerror(errno));
        free(tmp);
        return U2NET_EIO;
    }
    const unsigned char *p = data;
    size_t left = len;
    int saved = 0;
    while (left > 0 && !saved) {
        const ssize_t w = write(fd, p, left);
        if (w < 0 && errno != EINTR)
            saved = errno;
        else if (w > 0)
            p += w, left -= (size_t)w;
    }
    if (close(fd) != 0 && !saved)
        saved = errno;
    if (!saved && rename(tmp, path) != 0)
        saved = errno;
    if (saved) {
        unlink(tmp);
        set_error(err, U2NET_EIO, "%s: cannot write: %s", path, strerror(saved));
    }
    free(tmp);
    return saved ? U2NET_EIO : 0;
}
