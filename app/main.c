/*
 * botmatic-fcgi - the Botmatic integration server, a pre-forked FastCGI
 * application.  Configuration comes from the environment (--help).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "server/server.h"

extern char **environ;

static void
main_usage(FILE *fp)
{
	fprintf(fp, "usage: botmatic-fcgi [--help | --version | "
	    "--import-contacts INSTALL_ID]\n\n"
	    "Serves Botmatic webhooks over FastCGI behind nginx or Apache.\n"
	    "Signals: TERM/INT stop gracefully, HUP reloads configuration, "
	    "mappings\nand modules, replacing responders one at a time.\n"
	    "--import-contacts imports every external contact of one "
	    "installation\n(its install id: botmatic-keys installs) and "
	    "exits; safe while the server runs.\n\n");
	app_conf_usage(fp);
}

int
main(int argc, char **argv)
{
	if (argc > 1) {
		if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
			main_usage(stdout);
			return 0;
		}
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
