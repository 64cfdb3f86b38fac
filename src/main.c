/* main.c - the u2net program: dispatches to its subcommands. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "u2net.h"
#include "util.h"

static const char usage[] =
    "u2net " U2NET_VERSION_STRING " - salient object / background removal with U2Net\n"
    "\n"
    "usage: u2net tensor -m MODEL -i IN.f32 --height H --width W -o OUT.f32 [--sides]\n"
    "       u2net --help | --version\n"
    "\n"
    "Run 'u2net tensor --help' for the details of a subcommand.\n";

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        puts("u2net " U2NET_VERSION_STRING);
        return 0;
    }
    if (!strcmp(argv[1], "tensor"))
        return cmd_tensor(argc - 1, argv + 1);
    die_msg("unknown command '%s' (see u2net --help)", argv[1]);
    return 2;
}
