/*
 * worker.h - a responder: one process running the FCGX_Accept_r loop.
 *
 * The listening socket is non-blocking and shared by every responder: a
 * responder waits in ppoll() with SIGTERM unblocked only there, so a stop
 * request never interrupts a request in progress.  On SIGTERM it serves
 * what is already queued (accept until EAGAIN), then exits 0.
 */
#ifndef APP_WORKER_H
#define APP_WORKER_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "module.h"
#include "negcache.h"
#include "mapping/mapping.h"
#include "registry.h"

enum app_slot_state {
	APP_SLOT_FREE = 0,   /* no process */
	APP_SLOT_STARTING,   /* forked, initialising */
	APP_SLOT_IDLE,       /* waiting for a connection */
	APP_SLOT_BUSY,       /* serving a request */
	APP_SLOT_STOPPING,   /* draining before exit */
	APP_SLOT__MAX
};

/*
 * One responder's public state, in memory shared with the master (mapped
 * before fork).  The responder writes state, requests and busy_since; the
 * master only reads them, to know a new responder is ready and, with the
 * keystore, to notice one that stopped making progress.
 */
struct app_slot {
	_Atomic int state;             /* enum app_slot_state */
	_Atomic uint64_t requests;     /* requests finished */
	_Atomic int64_t busy_since;    /* CLOCK_MONOTONIC ms of the current request */
	_Atomic int64_t db_since;      /* ms since the current keystore call, or 0 */
	_Atomic int purge;             /* set after a forget: the master purges */
};

/* What a new responder inherits from the master. */
struct app_worker_args {
	int listen_fd;
	const struct app_conf *conf;
	const struct app_registry *reg;
	struct app_modules *mods;
	struct app_slot *slot;
	struct app_negcache *neg;   /* shared refusal cache */
	const struct mapping *map;  /* BM_MAPPINGS or NULL */
};

/* Runs a responder; never returns (exits 0 on a clean stop, 1 on error). */
void app_worker_main(const struct app_worker_args *args)
    __attribute__((noreturn));

/*
 * Imports every external contact of the installation install_id once, in
 * this process, as a responder would (botmatic-fcgi --import-contacts).
 * Prints the result as JSON on stdout.  Returns 0 when it succeeded, 1
 * otherwise (logged), 2 when its store handle was left for a recovery.
 */
int app_worker_import(const struct app_worker_args *args,
    const char *install_id);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t app_now_ms(void);

#endif
