/* commands.h - the program's commands. Each takes argv with argv[0] the
 * command's name and returns the process exit status. */
#ifndef U2NET_COMMANDS_H
#define U2NET_COMMANDS_H

/* `u2net tensor`: the network on a raw float32 tensor. */
int cmd_tensor(int argc, char **argv);

/* `u2net [OPTIONS] INPUT... -o OUTPUT`: background removal on images. */
int cmd_remove(int argc, char **argv);

/* `u2net bench`: times the network on a fixed input (bench/README.md). */
int cmd_bench(int argc, char **argv);

/* `u2net models`: the models -m NAME can find, built-in first. */
int cmd_models(int argc, char **argv);

/* `u2net serve`: background removal over HTTP, with a web page. */
int cmd_serve(int argc, char **argv);

/* `u2net stream`: background removal on raw or Y4M frames from a pipe. */
int cmd_stream(int argc, char **argv);

#endif
