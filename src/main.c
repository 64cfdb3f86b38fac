/* main.c - the u2net program: `u2net tensor ...` runs the raw network; any
 * other command line is the image command (u2net --help). */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "u2net.h"

static const char short_usage[] =
    "usage: u2net [OPTIONS] INPUT... -o OUTPUT\n"
    "       u2net tensor -m MODEL -i IN.f32 --height H --width W -o OUT.f32 [--sides]\n"
    "       u2net --help | --version\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(short_usage, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "tensor"))
        return cmd_tensor(argc - 1, argv + 1);
    if (!strcmp(argv[1], "bench"))
        return cmd_bench(argc - 1, argv + 1);
    return cmd_remove(argc, argv);
}
