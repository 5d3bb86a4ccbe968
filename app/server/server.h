/*
 * server/server.h - the processes: the pre-fork master (generations and
 * reload, supervision of responders and the keystore watchdog), the
 * responder loop, and the listening socket.  The top of app/: it may use
 * every other part; main.c is its only user.  Sections: master,
 * responders, listening socket.
 */
#ifndef APP_SERVER_H
#define APP_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/core.h"
#include "delivery/delivery.h"
#include "events/events.h"
#include "fcgi/fcgi.h"
#include "host/host.h"

/*
 * The master: owns the listening socket, forks the
 * responders, restarts one that dies (with a backoff so a crash loop does
 * not spin), stops gracefully on SIGTERM/SIGINT and reloads on SIGHUP by
 * replacing responders one at a time.  It holds no database handle.
 */

/*
 * Runs the server with the environment envp (kept for reloads).  Returns
 * the process exit status: 0 after a graceful stop, 1 when the start
 * failed (reason logged).
 */
int app_master_run(char *const *envp);

/*
 * Runs one import of every external contact of installation install_id
 * in this process (botmatic-fcgi --import-contacts), with the server's
 * configuration.  Safe while the server runs.  Returns the exit status.
 */
int app_master_import(char *const *envp, const char *install_id);

/*
 * botmatic-fcgi -t: loads the configuration, the modules and the mappings
 * as a start would and checks that BM_DB_HOME can be used (an existing
 * directory this user may enter and write, or one it may create), without
 * opening a socket or the store, so a running server is left alone.
 * Prints "botmatic-fcgi: configuration ok" on stdout, or the error line(s)
 * on stderr and "botmatic-fcgi: configuration test failed".  Returns the
 * exit status, 0 or 1.
 */
int app_master_check(char *const *envp);

/*
 * Tells systemd (Type=notify) what the master is doing: READY=1 once
 * serving, RELOADING=1 during a SIGHUP reload, STATUS= lines for
 * `systemctl status`.  Built without libsystemd (configure says so), or
 * run outside systemd (no NOTIFY_SOCKET), it does nothing.  Sends one
 * notification, the printf-formatted state lines; failures are ignored:
 * systemd's view is a convenience, never a reason to stop serving.
 */
void app_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The responders: one process running the FCGX_Accept_r loop.
 *
 * The listening socket is non-blocking and shared by every responder: a
 * responder waits in ppoll() with SIGTERM unblocked only there, so a stop
 * request never interrupts a request in progress.  On SIGTERM it serves
 * what is already queued (accept until EAGAIN), then exits 0; when its
 * slot's handover is set, it exits after its current request instead.
 */

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
 * keystore, to notice one that stopped making progress.  The master writes
 * handover before a SIGTERM that retires one responder while the others
 * keep serving (pool shrink, reload): it then finishes its request and
 * leaves the waiting connections to them instead of draining the backlog,
 * which under a steady load might never empty.
 */
struct app_slot {
	_Atomic int state;             /* enum app_slot_state */
	_Atomic int handover;          /* set by the master, see above */
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
	const struct app_settings *settings; /* BM_SETTINGS or NULL */
	const struct app_events *events; /* BM_EVENTS or NULL */
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


/*
 * The listening socket: created from BM_LISTEN (a unix
 * socket path or host:port), or inherited (fd 0 from spawn-fcgi or
 * mod_fcgid, fd 3 from systemd with LISTEN_FDS).
 */

struct app_listener {
	int fd;           /* the listening socket, non-blocking */
	char *path;       /* unix socket path we created (unlinked at stop) */
	char desc[300];   /* for the log */
};

/*
 * Opens or adopts the socket.  Returns 0, or -1 with the reason in err.
 */
int app_listen_open(struct app_listener *l, const struct app_conf *conf,
    char *err, size_t errlen);

/* Closes the socket; unlinks a path we created when unlink_path is set. */
void app_listen_close(struct app_listener *l, int unlink_path);

#endif
