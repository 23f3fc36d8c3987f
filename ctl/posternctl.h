/*
 * posternctl.h - posternctl's commands that take arguments, one file
 * each (posternctl_queue.c, ...), dispatched from posternctl.c's
 * subcommands[] table.
 */
#ifndef POSTERN_POSTERNCTL_H
#define POSTERN_POSTERNCTL_H

#define EXIT_USAGE 64

/* subcmd_fn - run "posternctl [-c config] NAME ARGS..."; argv[0] is NAME;
 * returns the exit status */
typedef int subcmd_fn(const char *config, int argc, char **argv);

/* posternctl_queue.c - "queue list|show|flush|hold|release|delete|requeue" */
int posternctl_queue(const char *config, int argc, char **argv);

/* posternctl_route.c - "route ADDRESS [--sender ADDR]" and
 * "dkim-generate DOMAIN SELECTOR [--ed25519] [--dir DIR]" */
int posternctl_route(const char *config, int argc, char **argv);
int posternctl_dkim_generate(const char *config, int argc, char **argv);

/* posternctl_hashpw.c - "hash-password": a yescrypt hash for smtp_user */
int posternctl_hash_password(const char *config, int argc, char **argv);

#endif
