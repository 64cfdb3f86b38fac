/* fileio.c - writing a file so that its path never holds a partial file:
 * the bytes go to a hidden temporary file in the same folder (so the final
 * move stays on one filesystem and folder scans skip it), which is moved
 * into place only once complete. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "image_internal.h"

/* Creates DIR/.u2net-<pid>-<nonce> beside path, exclusively, with mode 0666
 * less the umask (mkstemp would make it 0600, and changing the umask is not
 * thread-safe). tmp gets its name; returns the descriptor or -1. */
static int create_temp(const char *path, char *tmp, size_t cap)
{
    const char *slash = strrchr(path, '/');
    const int dir_len = slash ? (int)(slash - path) + 1 : 0;
    for (int attempt = 0; attempt < 100; attempt++) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        const unsigned long nonce = (unsigned long)ts.tv_nsec ^ ((unsigned long)(uintptr_t)tmp >> 4) ^
                                    (unsigned long)attempt * 2654435761u;
        snprintf(tmp, cap, "%.*s.u2net-%ld-%lx", dir_len, path, (long)getpid(), nonce);
        const int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* Moves the complete temporary file to path: with replace by rename; without
 * by link, which refuses an existing path atomically (a check then rename
 * where the filesystem has no hard links). Returns 0 or an errno value. */
static int move_into_place(const char *tmp, const char *path, int replace)
{
    if (replace)
        return rename(tmp, path) == 0 ? 0 : errno;
    if (link(tmp, path) == 0) {
        unlink(tmp);
        return 0;
    }
    if (errno != EPERM && errno != EOPNOTSUPP && errno != ENOSYS)
        return errno;
    struct stat st;
    if (lstat(path, &st) == 0)
        return EEXIST;
    return rename(tmp, path) == 0 ? 0 : errno;
}

int u2net_write_file(const char *path, const void *data, size_t len, int replace,
                     u2net_error *err)
{
    const size_t cap = strlen(path) + 64;
    char *tmp = malloc(cap);
    if (!tmp) {
        set_error(err, U2NET_ENOMEM, "%s: out of memory", path);
        return U2NET_ENOMEM;
    }
    const int fd = create_temp(path, tmp, cap);
    if (fd < 0) {
        set_error(err, U2NET_EIO, "%s: cannot write: %s", path, strerror(errno));
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
    if (!saved)
        saved = move_into_place(tmp, path, replace);
    if (saved) {
        unlink(tmp);
        if (saved == EEXIST && !replace)
            set_error(err, U2NET_EEXIST, "%s: exists", path);
        else
            set_error(err, U2NET_EIO, "%s: cannot write: %s", path, strerror(saved));
    }
    free(tmp);
    return !saved ? 0 : saved == EEXIST && !replace ? U2NET_EEXIST : U2NET_EIO;
}
