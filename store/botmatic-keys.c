/*
 * store/botmatic-keys.c - the botmatic-keys program: everything is in
 * store/cli.c, which the server's master also runs for a tool that hands
 * its command over.
 */
#include "config.h"

#include "store/store.h"

int
main(int argc, char **argv)
{
	return store_cli_main(argc, argv);
}
