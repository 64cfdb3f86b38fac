/* main.c - the u2net program: `u2net tensor ...` runs the raw network,
 * `u2net models` lists the models; any other command line is the image
 * command (u2net --help). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "u2net.h"

static const char short_usage[] =
    "usage: u2net [OPTIONS] INPUT... -o OUTPUT\n"
    "       u2net tensor -m MODEL -i IN.f32 --height H --width W -o OUT.f32 [--sides]\n"
    "       u2net models\n"
    "       u2net serve [--host ADDR] [--port N] [-m MODEL]... [--workers N]\n"
    "       u2net stream WIDTH HEIGHT [OPTIONS] < FRAMES\n"
    "       u2net --help | --version\n";

/* libgomp's threads, by default, spin up to about 300,000 times at every
 * barrier before they sleep. The engine passes thousands of barriers a run;
 * when another process holds one of the cores, the spinning thread keeps its
 * core from the thread it waits for, and a 2-thread run on 2 cores became 10
 * to 20 times slower (U2NetP 320: 2,966 ms against 314 ms with waiting
 * threads asleep; ONNX Runtime 641 ms), where a short spin costs nothing on
 * an idle machine (168 ms either way; sleeping at once costs 2-4%). libgomp
 * reads its settings from the environment before main, so the program sets
 * a short spin and runs itself again, unless the user has chosen a wait
 * policy or a spin count; if that fails it runs on as it is. A program that
 * embeds the library chooses for itself (README.md). */
static void prefer_short_openmp_spin(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
        return;
    /* under valgrind /proc/self/exe is valgrind itself, which refuses to be
     * run so; its preload library is how a program can tell */
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload"))
        return;
    if (setenv("GOMP_SPINCOUNT", "2000", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
}

int main(int argc, char **argv)
{
    prefer_short_openmp_spin(argv);
    if (argc < 2) {
        fputs(short_usage, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "tensor"))
        return cmd_tensor(argc - 1, argv + 1);
    if (!strcmp(argv[1], "bench"))
        return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(argv[1], "models"))
        return cmd_models(argc - 1, argv + 1);
    if (!strcmp(argv[1], "serve"))
        return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "stream"))
        return cmd_stream(argc - 1, argv + 1);
    return cmd_remove(argc, argv);
}
