/* commands.h - the program's subcommands. Each takes argv with argv[0] the
 * subcommand's name and returns the process exit status. */
#ifndef U2NET_COMMANDS_H
#define U2NET_COMMANDS_H

int cmd_tensor(int argc, char **argv);

#endif
