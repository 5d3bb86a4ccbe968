/*
 * delivery/delivery.h - the delivery processes (SPEC §9): forked and
 * supervised by the master like responders (a slot, the store opened
 * after fork, a death checked like a responder's), each draining the
 * durable queue of the store: it leases the job due first, runs it through
 * contact sync (app_sync_deliver) and writes the outcome with its effect in
 * one transaction.  Depends on core, outbound, keystore, dispatch, sync and
 * host.
 *
 * With the generic REST consumer, up to BM_DELIVERY_CONCURRENCY contact
 * events at once per process, their calls in one curl multi handle
 * (app_sync_flight_start); module consumers (struct bm_consumer) are
 * blocking functions and cannot be multiplexed: their jobs, imports and
 * the external service's changes run one at a time between rounds.
 * BM_DELIVERY_PROCS sets how many processes run side by side.  A job a
 * process holds when it is killed is leased: the lease lapses and another
 * one runs it again (at least once; POSTs carry an Idempotency-Key).
 */
#ifndef APP_DELIVERY_H
#define APP_DELIVERY_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/core.h"
#include "dispatch/dispatch.h"
#include "host/host.h"

/* What a new delivery process inherits from the master (borrowed). */
struct app_delivery_args {
	const struct app_conf *conf;
	const struct app_registry *reg;
	struct app_modules *mods;
	const struct mapping *map;    /* BM_MAPPINGS (contact sync is on) */
	const struct app_events *events; /* BM_EVENTS, or NULL */
	_Atomic int64_t *progress;    /* its slot's keystore progress mark,
	                                 watched by the master's watchdog */
	pid_t master;                 /* exits when its parent is no longer
	                                 this process */
};

/*
 * Runs a delivery process; never returns.  SIGTERM: nothing more is
 * claimed, the jobs in progress finish (their calls are bounded by the
 * timeouts), then exit 0.  Exits 1
 * when the store asks for recovery (the master checks and restarts).
 */
void app_delivery_main(const struct app_delivery_args *args)
    __attribute__((noreturn));

#endif
