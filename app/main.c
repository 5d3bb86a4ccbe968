/*
 * botmatic-fcgi - the Botmatic integration server, a pre-forked FastCGI
 * application.  Configuration comes from the environment (--help).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

extern char **environ;

static void
main_usage(FILE *fp)
{
	fprintf(fp, "usage: botmatic-fcgi [--help | --version | -t | "
	    "--import-contacts INSTALL_ID]\n\n"
	    "Serves Botmatic webhooks over FastCGI behind nginx or Apache.\n"
	    "Signals: TERM/INT stop gracefully, HUP reloads configuration, "
	    "mappings\nand modules, replacing responders one at a time.\n"
	    "--import-contacts imports every external contact of one "
	    "installation\n(its install id: botmatic-keys installs) and "
	    "exits; safe while the server runs.\n"
	    "-t checks the configuration, modules, mappings and BM_DB_HOME as a "
	    "start\nwould, without opening a socket or the store, and exits 0 "
	    "or 1.\n\n");
	app_conf_usage(fp);
}

int
main(int argc, char **argv)
{
	const char *fmt = getenv("BM_LOG_FORMAT");

	/*
	 * Lines written before the configuration is read (its own errors)
	 * take the format asked for too; the configuration then sets it.
	 */
	app_log_set_json(fmt != NULL && strcmp(fmt, "json") == 0);
	if (argc > 1) {
		if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
			main_usage(stdout);
			return 0;
		}
		if ((strcmp(argv[1], "-t") == 0 ||
		    strcmp(argv[1], "--test") == 0) && argc == 2)
			return app_master_check(environ);
		if (strcmp(argv[1], "--import-contacts") == 0 && argc == 3)
			return app_master_import(environ, argv[2]);
		if (strcmp(argv[1], "--version") == 0) {
			printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
			return 0;
		}
		fprintf(stderr, "botmatic-fcgi: unknown argument %s (see --help)\n",
		    argv[1]);
		return 2;
	}
	return app_master_run(environ);
}
