/*
 * store/cli-services.h - botmatic-keys' commands for third-party services
 * (SPEC §12): service-link, services, services revoke, services
 * rotate-key.  Called from botmatic-keys' dispatcher with the store it
 * opened (borrowed) and the arguments after the command.
 */
#ifndef BM_STORE_CLI_SERVICES_H
#define BM_STORE_CLI_SERVICES_H

struct store;

/*
 * Runs cmd ("service-link" or "services") with argc arguments.  Prints
 * results on stdout, one error line on stderr.  Returns the exit status:
 * 0 done, 1 not found, 2 error.  Tokens are printed only with
 * --show-tokens.
 */
int store_cli_services(struct store *s, const char *cmd, int argc, char **argv);

#endif
