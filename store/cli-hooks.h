/*
 * store/cli-hooks.h - botmatic-keys hooks and secret set: the webhooks an
 * installation registered at the external service (SPEC §11), and the
 * secret that service gave.  Private to botmatic-keys.
 */
#ifndef BM_STORE_CLI_HOOKS_H
#define BM_STORE_CLI_HOOKS_H

struct store;

/*
 * "hooks list INSTALL_ID": the registered webhooks as JSON lines
 * ({"id","type","topic","address"}); "hooks reconcile INSTALL_ID": the
 * reconcile queued as a job for the server's delivery processes (printed
 * {"queued":true,"job":n}).  argc and argv are what follows "hooks".
 * Returns the exit status: 0 done, 1 no such installation, 2 error (one
 * line on stderr).
 */
int store_cli_hooks(struct store *s, int argc, char **argv);

/*
 * "secret set INSTALL_ID": one line read from stdin (never from the
 * command line, which other users can see) is kept as the secret the
 * external service gave (shopify, github, stripe sign with it); an empty
 * line forgets it.  Returns the exit status as above.
 */
int store_cli_secret_set(struct store *s, const char *install_id);

#endif
