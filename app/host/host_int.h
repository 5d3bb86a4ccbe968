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

#endif
