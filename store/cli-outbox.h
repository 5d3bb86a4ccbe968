/*
 * store/cli-outbox.h - botmatic-keys outbox: the delivery queue from the
 * shell (SPEC §9).  Private to botmatic-keys.
 */
#ifndef BM_STORE_CLI_OUTBOX_H
#define BM_STORE_CLI_OUTBOX_H

struct store;

/*
 * Runs "outbox [show ID | retry ID|--dead | cancel ID]" on s with argc
 * arguments after the word outbox (argv borrowed).  Prints JSON lines on
 * stdout, never a token.  Returns the exit status: 0 done, 1 no such job,
 * 2 error (one line on stderr).
 */
int store_cli_outbox(struct store *s, int argc, char **argv);

#endif
