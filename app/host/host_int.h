/*
 * host/host_int.h - what the loader and the services table share inside
 * host/; no other part includes it.
 */
#ifndef APP_HOST_INT_H
#define APP_HOST_INT_H

#include "dispatch/dispatch.h"

/* The registration handle: valid only while one module's init() runs. */
struct bm_reg {
	struct app_registry *registry;
	const struct app_conf *conf;
	const char *module;
	char err[256];
};

/*
 * Opens the module file path for loading: an absolute path whose real file
 * is regular, owned by root or the server's user and not writable by group
 * or others, in directories each owned by root or the server's user and
 * not writable by group or others (unless sticky, as /tmp).  The checks
 * are made on the descriptor opened, which *fd receives (new: close() it
 * after dlopen()).  Returns 0, or -1 with the reason in err.
 */
int app_module_open(const char *path, int *fd, char *err, size_t errlen);

#endif
