#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server/server.h"
#include "store/store.h"

/*
 * Slots: BM_WORKERS_MAX responders taking requests, as many old ones
 * finishing their last request after a reload, and a margin for a second
 * reload in a row.
 */
#define MASTER_SLOTS_EXTRA 8
/*
 * While requests wait and every responder is busy, the pool grows by 1, 2,
 * 4... responders a tick, at most this many at once (php-fpm's spawn rate,
 * fpm_pctl_perform_idle_server_maintenance).
 */
#define MASTER_GROW_MAX 32
/*
 * ... and only while the responders' requests wait on something: when,
 * over the last tick, the busy ones took at least this long per request
 * finished (Little's law: busy x tick / requests).  A CPU-bound load,
 * a fraction of a millisecond a request, would gain nothing from more
 * processes than cores and lose to their switching (measured: echo at
 * 64 connections fell from 13,600 to 5,900 requests/s with 64 of them).
 */
#define MASTER_GROW_SERVICE_MS 10
/* A responder that dies younger than this counts as a crash-loop step. */
#define MASTER_FAST_DEATH_MS 2000
#define MASTER_BACKOFF_MIN_MS 100
#define MASTER_BACKOFF_MAX_MS 10000
/* How long a new responder may take to become ready during a reload. */
#define MASTER_READY_TIMEOUT_MS 10000
/* The failchk checker and the recovery run under these timeouts. */
#define MASTER_CHECK_TIMEOUT_MS 5000
#define MASTER_RECOVER_TIMEOUT_MS 60000
/* Slots for the other kinds of children (tool commands, the purge). */
#define MASTER_SLOTS_OTHER 8
/* How long a starting master waits for a tool's command to end. */
#define MASTER_LOCK_WAIT_MS 30000
/* Keys a purge batch deletes: a few ms, well within the watchdog. */
#define MASTER_PURGE_BATCH 1000
/* A failed purge is tried again after this. */
#define MASTER_PURGE_RETRY_MS 5000

/* What a child of the master is; all are supervised the same way. */
enum master_kind {
	MASTER_RESPONDER = 0, /* serves requests */
	MASTER_TOOL,          /* runs a command handed over by botmatic-keys */
	MASTER_PURGE,         /* deletes forgotten data in batches */
	MASTER_DELIVERY,      /* delivers the queued jobs (SPEC §9) */
	MASTER_KIND__MAX
};


/* The master's private bookkeeping for one slot. */
struct master_proc {
	pid_t pid;             /* 0: free */
	unsigned generation;   /* configuration it was forked with */
	int64_t started;       /* ms */
	int64_t kill_at;       /* ms when SIGTERMed: SIGKILL after the timeout */
	int retiring;          /* SIGTERM sent by a reload or stop */
	uint64_t seen;         /* its request count at the last tick */
	int64_t active_at;     /* ms it was last seen busy or finishing one */
	enum master_kind kind;
	struct store_control_req *req; /* MASTER_TOOL: whom to answer */
};

/* One loaded configuration: conf, modules and what they registered. */
struct master_gen {
	struct app_conf conf;
	struct app_registry *reg;
	struct app_modules *mods;
	struct map_registry *transforms; /* built-ins and the modules' */
	struct mapping *map;             /* BM_MAPPINGS, or NULL */
	struct app_settings *settings;   /* BM_SETTINGS, or NULL */
	struct app_events *events;       /* BM_EVENTS, or NULL */
};

struct master {
	char *const *envp;
	struct app_listener lst;
	struct master_gen cur;
	unsigned generation;
	struct app_slot *slots;           /* shared with responders */
	struct app_negcache *neg;         /* shared with responders */
	struct master_proc *procs;        /* nslots, the master's own */
	int nslots;
	unsigned pool_max;                /* BM_WORKERS_MAX at start */
	unsigned target;                  /* responders the pool wants now */
	unsigned grow;                    /* next growth step */
	int waited;                       /* a request waited at the last tick */
	int64_t counted_at;               /* ms of the last master_count */
	int stopping;
	int reloading;
	int ready;                        /* READY=1 sent for the first generation */
	int64_t next_spawn;               /* backoff: no spawn before */
	unsigned fast_deaths;             /* consecutive */
	unsigned escalations;             /* recoveries run */
	int exit_code;
	pid_t pid;                        /* the master's, for its children */
	struct store_lock *lock;          /* store.lock, held for our life */
	int ctl_fd;                       /* control.sock, or -1 */
	int purge_wanted;                 /* a forget happened: purge */
	int64_t next_purge;               /* no purge child before */
	int store_bad;                    /* a recovery failed */
	int clean_stop;                   /* stopped with every child gone */
	int others;                       /* tool and purge children running */
	int64_t next_delivery;            /* no delivery process before (ms) */
};

static void master_check_store(struct master *m);
static void master_other_ended(struct master *m, int i, int status,
    int64_t now);
static void master_retire(struct master *m, int i, int64_t now);

/* The master, for the children's memory checkers (app_master_run()). */
static struct master *volatile master_self;

/* The shared slots, for the responders gauge of the status (metrics). */
static const struct app_slot *master_shm_slots;
static int master_shm_nslots;

/* The shared mapping: nslots slots, then the counters (metrics.c). */
static size_t
master_shm_size(int nslots)
{
	return sizeof(struct app_slot) * (size_t)nslots + app_metrics_size();
}

/* Counts the responders by state (app_metrics_states_fn). */
static void
master_count_states(uint64_t count[APP_RESP__MAX])
{
	static const int map[APP_SLOT__MAX] = {
		-1, APP_RESP_STARTING, APP_RESP_IDLE, APP_RESP_BUSY,
		APP_RESP_STOPPING
	};
	int i, st;

	for (i = 0; master_shm_slots != NULL && i < master_shm_nslots; i++) {
		st = atomic_load(&master_shm_slots[i].state);
		if (st > APP_SLOT_FREE && st < APP_SLOT__MAX)
			count[map[st]]++;
	}
}

static void
master_conf_warn(const char *msg)
{
	app_log(BM_LOG_WARN, NULL, "conf", "%s", msg);
}

static void
master_gen_free(struct master_gen *g)
{
	app_settings_free(g->settings);
	app_events_free(g->events);
	map_free(g->map);
	map_registry_free(g->transforms);
	app_modules_unload(g->mods);
	app_registry_free(g->reg);
	app_conf_free(&g->conf);
	memset(g, 0, sizeof(*g));
}

/*
 * Loads BM_MAPPINGS with the built-in transforms and those the modules
 * registered.  Returns 0, or -1 with the file, entry and reason logged.
 */
static int
master_gen_mappings(struct master_gen *g)
{
	struct map_error merr;
	char err[256];
	size_t i;

	if ((g->transforms = map_registry_new()) == NULL) {
		app_log(BM_LOG_ERROR, NULL, "mapping", "out of memory");
		return -1;
	}
	for (i = 0; i < g->reg->ntransforms; i++) {
		const struct app_transform *t = &g->reg->transforms[i];
		if (map_registry_add(g->transforms, t->name, t->fn, err,
		    sizeof(err)) < 0) {
			app_log(BM_LOG_ERROR, NULL, "mapping", "transform %s of "
			    "module %s: %s", t->name, t->module, err);
			return -1;
		}
	}
	if ((g->map = map_load_file(g->conf.mappings, g->transforms,
	    &merr)) == NULL) {
		app_log(BM_LOG_ERROR, NULL, "mapping", "BM_MAPPINGS: %s",
		    merr.text);
		return -1;
	}
	app_log(BM_LOG_INFO, NULL, "mapping", "%s: %zu fields, ext id key %s",
	    g->conf.mappings, map_count(g->map), map_id_name(g->map, MAP_EXT));
	return 0;
}

/*
 * Loads configuration, modules and registrations into g: everything that
 * can be done once is done here, before any fork.  Returns 0, or -1 with
 * the reason logged as one line.
 */
static int
master_gen_load(struct master_gen *g, char *const *envp)
{
	char err[1024];

	memset(g, 0, sizeof(*g));
	if (app_conf_load(&g->conf, envp, err, sizeof(err),
	    master_conf_warn) < 0) {
		app_log(BM_LOG_ERROR, NULL, "conf", "%s", err);
		return -1;
	}
	app_log_set_level(g->conf.log_level);
	app_log_set_json(g->conf.log_json);
	if ((g->reg = app_registry_new()) == NULL) {
		app_log(BM_LOG_ERROR, NULL, "master", "out of memory");
		goto fail;
	}
	if (app_modules_load(&g->conf, g->reg, &g->mods, err,
	    sizeof(err)) < 0) {
		app_log(BM_LOG_ERROR, NULL, "module", "%s", err);
		goto fail;
	}
	if (g->conf.mappings != NULL && master_gen_mappings(g) < 0)
		goto fail;
	/* Like the mappings: a form that cannot be served stops the start
	 * (or the reload), naming the file and the reason. */
	if (g->conf.settings != NULL) {
		if (app_settings_load(g->conf.settings, &g->settings, err,
		    sizeof(err)) < 0) {
			app_log(BM_LOG_ERROR, NULL, "settings", "BM_SETTINGS: %s",
			    err);
			goto fail;
		}
		app_log(BM_LOG_INFO, NULL, "settings", "%s: %zu fields, framed "
		    "by %s", g->conf.settings, app_settings_count(g->settings),
		    g->conf.botmatic_origin);
	}
	/* Like the mappings: refused at start with the file, the event and
	 * the reason; a reload with a bad file keeps the running one. */
	if (g->conf.events != NULL) {
		if (app_events_load(g->conf.events, &g->events, err,
		    sizeof(err)) < 0) {
			app_log(BM_LOG_ERROR, NULL, "events", "BM_EVENTS: %s",
			    err);
			goto fail;
		}
		if (app_events_register(g->events, &g->conf, g->reg, err,
		    sizeof(err)) < 0) {
			app_log(BM_LOG_ERROR, NULL, "events", "BM_EVENTS: %s",
			    err);
			goto fail;
		}
		app_log(BM_LOG_INFO, NULL, "events", "%s: %zu events",
		    g->conf.events, g->events->n);
	}
	if (g->conf.mappings != NULL) {
		if (app_sync_register(g->reg, err, sizeof(err)) < 0) {
			app_log(BM_LOG_ERROR, NULL, "master", "%s", err);
			goto fail;
		}
		if (strcmp(g->conf.ext_consumer, "rest") == 0 &&
		    g->conf.ext_base_url == NULL) {
			app_log(BM_LOG_ERROR, NULL, "conf", "BM_EXT_BASE_URL: "
			    "required when BM_MAPPINGS is set with the REST "
			    "consumer (BM_EXT_CONSUMER=rest)");
			goto fail;
		}
		if (strncmp(g->conf.ext_consumer, "module:", 7) == 0 &&
		    app_registry_consumer(g->reg, g->conf.ext_consumer + 7) ==
		    NULL) {
			app_log(BM_LOG_ERROR, NULL, "conf", "BM_EXT_CONSUMER: no "
			    "loaded module registered a consumer named \"%s\"",
			    g->conf.ext_consumer + 7);
			goto fail;
		}
	}
	if (g->conf.auth == APP_AUTH_MODULE &&
	    app_registry_auth(g->reg, g->conf.auth_module) == NULL) {
		app_log(BM_LOG_ERROR, NULL, "conf", "BM_AUTH: no loaded module "
		    "registered an auth function named \"%s\"",
		    g->conf.auth_module);
		goto fail;
	}
	return 0;
fail:
	master_gen_free(g);
	return -1;
}

/*
 * What every child of the master does first: die with the master (a
 * SIGKILLed master must not leave children holding the store and the
 * socket; the check of the parent catches a master that died before the
 * prctl), drop the master's control connections, and take the name ps
 * and top show for its kind (as nginx's "worker process"), which is also
 * how a test or an operator tells a responder from a passing purge.
 */
static void
master_child_setup(struct master *m, enum master_kind kind)
{
	static const char *const comm[MASTER_KIND__MAX] = {
		[MASTER_RESPONDER] = "bm-responder",
		[MASTER_TOOL] = "bm-tool",
		[MASTER_PURGE] = "bm-purge",
		[MASTER_DELIVERY] = "bm-delivery",
	};
	sigset_t none;
	int i;

	(void)prctl(PR_SET_NAME, comm[kind]);
	app_log_set_pid();
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != m->pid)
		_exit(1);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (m->ctl_fd >= 0)
		close(m->ctl_fd);
	for (i = 0; i < m->nslots; i++)
		if (m->procs[i].req != NULL && m->procs[i].req->conn >= 0)
			close(m->procs[i].req->conn);
}

/* A free slot, or -1 (logged). */
static int
master_free_slot(struct master *m)
{
	int i;

	for (i = 0; i < m->nslots && m->procs[i].pid != 0; i++)
		continue;
	if (i == m->nslots) {
		app_log(BM_LOG_ERROR, NULL, "master", "no free slot");
		return -1;
	}
	atomic_store(&m->slots[i].state, APP_SLOT_STARTING);
	atomic_store(&m->slots[i].requests, 0);
	atomic_store(&m->slots[i].busy_since, 0);
	atomic_store(&m->slots[i].db_since, 0);
	atomic_store(&m->slots[i].purge, 0);
	atomic_store(&m->slots[i].handover, 0);
	return i;
}

/* Forks one responder into a free slot.  Returns 0, or -1 (logged). */
static int
master_spawn(struct master *m, int64_t now)
{
	struct app_worker_args args;
	pid_t pid;
	int i;

	if ((i = master_free_slot(m)) < 0)
		return -1;
	if ((pid = fork()) < 0) {
		app_log_errno(BM_LOG_ERROR, NULL, "master", "fork");
		atomic_store(&m->slots[i].state, APP_SLOT_FREE);
		return -1;
	}
	if (pid == 0) {
		master_child_setup(m, MASTER_RESPONDER);
		args.listen_fd = m->lst.fd;
		args.conf = &m->cur.conf;
		args.reg = m->cur.reg;
		args.mods = m->cur.mods;
		args.slot = &m->slots[i];
		args.neg = m->neg;
		args.map = m->cur.map;
		args.settings = m->cur.settings;
		args.events = m->cur.events;
		app_worker_main(&args);
	}
	m->procs[i].pid = pid;
	m->procs[i].generation = m->generation;
	m->procs[i].started = now;
	m->procs[i].kill_at = 0;
	m->procs[i].retiring = 0;
	m->procs[i].seen = 0;
	m->procs[i].active_at = now;
	m->procs[i].kind = MASTER_RESPONDER;
	app_metrics_add(APP_METRIC_RESPONDER_STARTS, 0, 0, 1);
	app_log(BM_LOG_INFO, NULL, "master", "responder %ld started",
	    (long)pid);
	return 0;
}

static const char *
master_kind_name(enum master_kind k)
{
	return k == MASTER_TOOL ? "tool command" : k == MASTER_PURGE ?
	    "purge" : k == MASTER_DELIVERY ? "delivery process" : "responder";
}

/* The purge child: batches until nothing is forgotten, or SIGTERM. */
static volatile sig_atomic_t master_purge_stop;

static void
master_purge_term(int sig)
{
	(void)sig;
	master_purge_stop = 1;
}

static void __attribute__((noreturn))
master_purge_main(struct master *m, struct app_slot *slot)
{
	struct app_keystore ks;
	char err[512];
	size_t n = 0, total = 0, batches = 0;
	int more = 1, rc = 0;

	signal(SIGTERM, master_purge_term);
	if (app_ks_open(&ks, &m->cur.conf, &slot->db_since, err,
	    sizeof(err)) < 0) {
		app_log(BM_LOG_ERROR, NULL, "purge", "%s", err);
		_exit(1);
	}
	/* Each batch is a short transaction timed in the slot: the
	 * watchdog sees progress, however large the purge. */
	while (more && !master_purge_stop && !ks.broken) {
		if (app_ks_purge_step(&ks, MASTER_PURGE_BATCH, &n, &more) < 0) {
			rc = 1;
			break;
		}
		total += n;
		batches++;
	}
	if (rc == 0 && !more && total > 0)
		app_log(BM_LOG_INFO, NULL, "purge", "done: %zu keys of forgotten "
		    "installations deleted in %zu batches", total, batches);
	if (app_ks_close(&ks) < 0)
		rc = 1;
	_exit(rc);
}

/*
 * A tool's command, in a child: the same code as botmatic-keys (store/
 * cli.c) on our BM_DB_HOME, or a contact import as --import-contacts does
 * it, with our configuration.  Returns the exit status.
 */
static int
master_tool_main(struct master *m, struct store_control_req *req)
{
	struct app_worker_args args;
	struct app_slot slot;
	char *argv[20];
	int k, argc = 0, rc;

	for (k = 0; k < 3; k++)
		if (dup2(req->fds[k], k) < 0)
			_exit(2);
	/* argv: "-t" SECONDS COMMAND ARGS..., as store_cli_main() sends. */
	argv[argc++] = "botmatic-keys";
	for (k = 0; k < req->argc && argc < 19; k++)
		argv[argc++] = req->argv[k];
	argv[argc] = NULL;
	if (req->argc == 4 && strcmp(req->argv[2], "import-contacts") == 0) {
		memset(&args, 0, sizeof(args));
		memset(&slot, 0, sizeof(slot));
		args.listen_fd = -1;
		args.conf = &m->cur.conf;
		args.reg = m->cur.reg;
		args.mods = m->cur.mods;
		args.slot = &slot;
		args.neg = m->neg;
		args.map = m->cur.map;
		args.settings = m->cur.settings;
		args.events = m->cur.events;
		rc = app_worker_import(&args, req->argv[3]);
		fflush(stdout);
		return rc;
	}
	/* The command opens the store with the server's key, which may come
	 * from BM_ENV_FILE (this child's environment is its own). */
	if (m->cur.conf.secret_key_file != NULL)
		(void)setenv("BM_SECRET_KEY_FILE",
		    m->cur.conf.secret_key_file, 1);
	else
		(void)unsetenv("BM_SECRET_KEY_FILE");
	rc = store_cli_run(m->cur.conf.db_home,
	    m->cur.conf.durability == APP_DURABILITY_SYNC ?
	    STORE_DURABILITY_SYNC : STORE_DURABILITY_WRITE, argc, argv);
	fflush(stdout);
	return rc;
}

/*
 * Forks a child of another kind: the purge, or a tool's command (req,
 * whose fds become its stdin, stdout and stderr).  Returns 0, or -1
 * (logged; req is then the caller's).
 */
static int
master_spawn_other(struct master *m, enum master_kind kind,
    struct store_control_req *req, int64_t now)
{
	pid_t pid;
	int i;

	if ((i = master_free_slot(m)) < 0)
		return -1;
	if ((pid = fork()) < 0) {
		app_log_errno(BM_LOG_ERROR, NULL, "master", "fork");
		atomic_store(&m->slots[i].state, APP_SLOT_FREE);
		return -1;
	}
	if (pid == 0) {
		master_child_setup(m, kind);
		if (kind == MASTER_PURGE)
			master_purge_main(m, &m->slots[i]);
		_exit(master_tool_main(m, req));
	}
	m->procs[i].pid = pid;
	m->procs[i].generation = m->generation;
	m->procs[i].started = now;
	m->procs[i].kill_at = 0;
	m->procs[i].retiring = 0;
	m->procs[i].kind = kind;
	m->procs[i].req = req;
	m->others++;
	/* Its slot serves the watchdog only: not a responder in the status. */
	atomic_store(&m->slots[i].state, APP_SLOT_FREE);
	if (req != NULL) {
		/* The child has them; only the connection stays here. */
		for (int k = 0; k < 3; k++) {
			close(req->fds[k]);
			req->fds[k] = -1;
		}
		app_log(BM_LOG_INFO, NULL, "master", "tool command \"%s\" of "
		    "pid %ld runs in %ld", req->argc > 2 ? req->argv[2] : "?",
		    req->pid, (long)pid);
	}
	return 0;
}

/*
 * Forks one delivery process into a free slot: supervised as every child
 * (reaped, its death checked, restarted, the watchdog on its keystore
 * calls), neither counted nor retired by the pool.  Returns 0, or -1
 * (logged).
 */
static int
master_spawn_delivery(struct master *m, int64_t now)
{
	struct app_delivery_args args;
	pid_t pid, self = getpid();
	int i;

	if ((i = master_free_slot(m)) < 0)
		return -1;
	/* Not a responder: its slot serves the watchdog only. */
	atomic_store(&m->slots[i].state, APP_SLOT_FREE);
	if ((pid = fork()) < 0) {
		app_log_errno(BM_LOG_ERROR, NULL, "master", "fork");
		return -1;
	}
	if (pid == 0) {
		master_child_setup(m, MASTER_DELIVERY);
		app_listen_close(&m->lst, 0);
		memset(&args, 0, sizeof(args));
		args.conf = &m->cur.conf;
		args.reg = m->cur.reg;
		args.mods = m->cur.mods;
		args.map = m->cur.map;
		args.events = m->cur.events;
		args.progress = &m->slots[i].db_since;
		args.master = self;
		app_delivery_main(&args);
	}
	memset(&m->procs[i], 0, sizeof(m->procs[i]));
	m->procs[i].pid = pid;
	m->procs[i].generation = m->generation;
	m->procs[i].started = now;
	m->procs[i].active_at = now;
	m->procs[i].kind = MASTER_DELIVERY;
	app_log(BM_LOG_INFO, NULL, "master", "delivery process %ld started",
	    (long)pid);
	return 0;
}

/*
 * Keeps BM_DELIVERY_PROCS delivery processes of the current configuration
 * (contact sync or integration events on: jobs exist only then); those of an older one are
 * retired after a reload: a job one holds finishes or its lease lapses.
 */
static void
master_tick_delivery(struct master *m, int64_t now)
{
	int i, live = 0;

	for (i = 0; i < m->nslots; i++) {
		struct master_proc *p = &m->procs[i];
		if (p->pid == 0 || p->kind != MASTER_DELIVERY || p->retiring)
			continue;
		if (p->generation != m->generation)
			master_retire(m, i, now);
		else
			live++;
	}
	if ((m->cur.map == NULL && m->cur.events == NULL) ||
	    now < m->next_delivery)
		return;
	while (live < (int)m->cur.conf.delivery_procs &&
	    master_spawn_delivery(m, now) == 0)
		live++;
}

/* Takes the commands botmatic-keys handed over, each in a child. */
static void
master_control(struct master *m, int64_t now)
{
	struct store_control_req *req;
	char err[256];
	int rc;

	/*
	 * At most MASTER_SLOTS_OTHER - 1 commands at once (a slot stays for
	 * the purge): the others wait in the socket's backlog, their tools
	 * waiting for an answer, until one ends.
	 */
	while (m->ctl_fd >= 0 &&
	    (m->stopping || m->others < MASTER_SLOTS_OTHER - 1) &&
	    (rc = store_control_accept(m->ctl_fd, &req, err, sizeof(err))) != 0) {
		if (rc < 0) {
			app_log(BM_LOG_WARN, NULL, "control", "%s", err);
			continue;
		}
		if (m->stopping) {
			store_control_reply(req, STORE_CONTROL_KILLED + SIGTERM);
			store_control_free(req);
			continue;
		}
		if (master_spawn_other(m, MASTER_TOOL, req, now) < 0) {
			store_control_reply(req, 2);
			store_control_free(req);
		}
	}
}

/* Starts the purge when something was forgotten and none runs. */
static void
master_purge(struct master *m, int64_t now)
{
	int i, running = 0;

	for (i = 0; i < m->nslots; i++) {
		if (m->procs[i].pid != 0 && m->procs[i].kind == MASTER_PURGE)
			running = 1;
		if (atomic_exchange(&m->slots[i].purge, 0))
			m->purge_wanted = 1;
	}
	if (!m->purge_wanted || running || now < m->next_purge)
		return;
	m->purge_wanted = 0;
	if (master_spawn_other(m, MASTER_PURGE, NULL, now) < 0)
		m->next_purge = now + MASTER_PURGE_RETRY_MS;
}

/* SIGTERMs one responder, with the handover when the others serve on. */
static void
master_retire(struct master *m, int i, int64_t now)
{
	atomic_store(&m->slots[i].handover, !m->stopping);
	m->procs[i].retiring = 1;
	m->procs[i].kill_at = now + (int64_t)m->cur.conf.shutdown_timeout *
	    1000;
	kill(m->procs[i].pid, SIGTERM);
}

/*
 * A responder ended.  The keystore issue adds the Berkeley DB check here
 * (failchk in a short-lived process, escalation when it is not clean).
 */
static void
master_reaped(struct master *m, int i, int status, int64_t now)
{
	struct master_proc *p = &m->procs[i];
	int64_t lived = now - p->started;
	int expected = p->retiring || m->stopping;

	if (p->kind != MASTER_RESPONDER) {
		master_other_ended(m, i, status, now);
		return;
	}
	if (WIFSIGNALED(status))
		app_log(expected ? BM_LOG_INFO : BM_LOG_WARN, NULL, "master",
		    "responder %ld killed by signal %d", (long)p->pid,
		    WTERMSIG(status));
	else
		app_log(expected && WEXITSTATUS(status) == 0 ? BM_LOG_INFO :
		    BM_LOG_WARN, NULL, "master", "responder %ld exited with "
		    "status %d", (long)p->pid, WEXITSTATUS(status));
	/*
	 * A crash loop is a responder dying young by itself (an exit status,
	 * a fault).  SIGKILL comes from outside (an operator, the OOM
	 * killer): the replacement starts at once.
	 */
	if (!expected && lived < MASTER_FAST_DEATH_MS &&
	    !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
		int64_t delay = MASTER_BACKOFF_MIN_MS;
		unsigned k;

		m->fast_deaths++;
		for (k = 1; k < m->fast_deaths && delay < MASTER_BACKOFF_MAX_MS;
		    k++)
			delay *= 2;
		if (delay > MASTER_BACKOFF_MAX_MS)
			delay = MASTER_BACKOFF_MAX_MS;
		m->next_spawn = now + delay;
		app_log(BM_LOG_WARN, NULL, "master", "responders are dying at "
		    "start (%u in a row): next start in %lld ms",
		    m->fast_deaths, (long long)delay);
	}
	atomic_store(&m->slots[i].state, APP_SLOT_FREE);
	app_metrics_add(APP_METRIC_RESPONDER_EXITS, expected ? APP_EXIT_EXPECTED :
	    APP_EXIT_UNEXPECTED, 0, 1);
	memset(p, 0, sizeof(*p));
	/*
	 * A responder that did not close its handle may have died inside
	 * Berkeley DB, holding locks.  Only a clean failchk lets the others
	 * carry on; anything else is recovered from scratch (BDB-NOTES).
	 */
	if (!(expected && WIFEXITED(status) && WEXITSTATUS(status) == 0))
		master_check_store(m);
}

/*
 * A tool command or the purge ended: answer the tool, free the slot, and
 * check the store when it may have died inside Berkeley DB.
 */
static void
master_other_ended(struct master *m, int i, int status, int64_t now)
{
	struct master_proc *p = &m->procs[i];
	enum master_kind kind = p->kind;
	int clean;

	if (p->req != NULL) {
		store_control_reply(p->req, WIFEXITED(status) ?
		    WEXITSTATUS(status) : STORE_CONTROL_KILLED +
		    WTERMSIG(status));
		store_control_free(p->req);
		/* A tool may have forgotten something. */
		m->purge_wanted = 1;
	}
	/* A tool's 0 and 1 (found / not found) and a purge's 0 mean the
	 * handle was closed. */
	clean = WIFEXITED(status) && (WEXITSTATUS(status) == 0 ||
	    (kind == MASTER_TOOL && WEXITSTATUS(status) == 1));
	if (!clean) {
		app_log(BM_LOG_WARN, NULL, "master", "%s %ld %s %d",
		    master_kind_name(kind), (long)p->pid, WIFSIGNALED(status) ?
		    "killed by signal" : "exited with status",
		    WIFSIGNALED(status) ? WTERMSIG(status) :
		    WEXITSTATUS(status));
		if (kind == MASTER_PURGE) {
			m->purge_wanted = 1;
			m->next_purge = now + MASTER_PURGE_RETRY_MS;
		}
	}
	if (kind == MASTER_DELIVERY) {
		clean = WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
		    (p->retiring || m->stopping);
		/* One dying young by itself is not restarted at once. */
		if (!clean && now - p->started < MASTER_FAST_DEATH_MS &&
		    !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
			m->next_delivery = now + MASTER_BACKOFF_MAX_MS;
	}
	atomic_store(&m->slots[i].state, APP_SLOT_FREE);
	atomic_store(&m->slots[i].db_since, 0);
	if (kind != MASTER_DELIVERY)
		m->others--;
	memset(p, 0, sizeof(*p));
	if (!clean)
		master_check_store(m);
}

static void
master_reap(struct master *m, int64_t now)
{
	pid_t pid;
	int status, i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < m->nslots; i++)
			if (m->procs[i].pid == pid) {
				master_reaped(m, i, status, now);
				break;
			}
	}
}

/*
 * SIGKILLs and reaps every responder, then recovers the environment in a
 * fresh process; the next tick forks new responders.
 */
static void
master_escalate(struct master *m, const char *why)
{
	char err[512];
	int i, n = 0;

	m->escalations++;
	app_log(BM_LOG_WARN, NULL, "master", "%s: stopping every responder "
	    "and recovering the keystore", why);
	for (i = 0; i < m->nslots; i++)
		if (m->procs[i].pid != 0)
			kill(m->procs[i].pid, SIGKILL);
	for (i = 0; i < m->nslots; i++) {
		if (m->procs[i].pid == 0)
			continue;
		while (waitpid(m->procs[i].pid, NULL, 0) < 0 && errno == EINTR)
			continue;
		if (m->procs[i].req != NULL) {
			store_control_reply(m->procs[i].req,
			    STORE_CONTROL_KILLED + SIGKILL);
			store_control_free(m->procs[i].req);
		}
		if (m->procs[i].kind == MASTER_PURGE)
			m->purge_wanted = 1;
		atomic_store(&m->slots[i].state, APP_SLOT_FREE);
		atomic_store(&m->slots[i].db_since, 0);
		memset(&m->procs[i], 0, sizeof(m->procs[i]));
		n++;
	}
	if (store_recover(m->cur.conf.db_home, MASTER_RECOVER_TIMEOUT_MS, err,
	    sizeof(err)) != STORE_OK) {
		app_log(BM_LOG_ERROR, NULL, "master", "recovery failed: %s", err);
		m->store_bad = 1;
		app_metrics_add(APP_METRIC_RECOVERIES, APP_RESULT_FAILED, 0, 1);
	} else {
		app_log(BM_LOG_INFO, NULL, "master", "keystore recovered after "
		    "stopping %d responders", n);
		app_metrics_add(APP_METRIC_RECOVERIES, APP_RESULT_OK, 0, 1);
	}
	m->others = 0;
	m->next_spawn = 0;
}

static void
master_check_store(struct master *m)
{
	char err[512];
	int rc;

	/*
	 * A Redis store leaves nothing a dead child could hold (no lock, no
	 * shared region): a responder that could not reach Redis and exited
	 * must not cost every other one its requests.
	 */
	if (m->cur.conf.store != NULL && strcmp(m->cur.conf.store, "redis") == 0)
		return;
	rc = store_check_after_death(m->cur.conf.db_home,
	    MASTER_CHECK_TIMEOUT_MS, err, sizeof(err));
	switch (rc) {
	case STORE_CHECK_CLEAN:
		return;
	case STORE_CHECK_RECOVERY_NEEDED:
		master_escalate(m, "the keystore needs recovery");
		return;
	case STORE_CHECK_HUNG:
		master_escalate(m, "the keystore check hung");
		return;
	default:
		app_log(BM_LOG_ERROR, NULL, "master", "keystore check: %s", err);
		master_escalate(m, "the keystore check failed");
		return;
	}
}

/*
 * The watchdog: a keystore call that lasts longer than BM_DB_WATCHDOG
 * means a lock no live process will release (a responder or a tool killed
 * inside Berkeley DB).  Requests that are merely slow are left alone.
 */
static void
master_watchdog(struct master *m, int64_t now)
{
	char why[128];
	int i;

	for (i = 0; i < m->nslots; i++) {
		int64_t since = atomic_load(&m->slots[i].db_since);
		if (m->procs[i].pid == 0 || since == 0 ||
		    now - since < (int64_t)m->cur.conf.db_watchdog * 1000)
			continue;
		snprintf(why, sizeof(why), "%s %ld stuck in a keystore "
		    "call for %lld ms", master_kind_name(m->procs[i].kind),
		    (long)m->procs[i].pid,
		    (long long)(now - since));
		app_metrics_add(APP_METRIC_WATCHDOG, 0, 0, 1);
		master_escalate(m, why);
		return;
	}
}

/*
 * Opens and closes the store once in a child process, so a store that
 * cannot be opened stops the start with its reason while the master itself
 * never holds a handle.  Returns 0, or -1 (logged).
 */
static int
master_probe_store(const struct app_conf *conf)
{
	struct app_keystore ks;
	char err[512] = "";
	int fds[2], status = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(fds) < 0) {
		app_log_errno(BM_LOG_ERROR, NULL, "master", "pipe");
		return -1;
	}
	if ((pid = fork()) < 0) {
		app_log_errno(BM_LOG_ERROR, NULL, "master", "fork");
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		app_log_set_pid();
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(fds[0]);
		if (app_ks_open(&ks, conf, NULL, err, sizeof(err)) < 0) {
			(void)!write(fds[1], err, strlen(err));
			_exit(1);
		}
		app_ks_close(&ks);
		_exit(0);
	}
	close(fds[1]);
	n = read(fds[0], err, sizeof(err) - 1);
	err[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		continue;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		app_log(BM_LOG_ERROR, NULL, "keystore", "BM_DB_HOME: %s",
		    err[0] != '\0' ? err : "cannot open the keystore");
		return -1;
	}
	return 0;
}

static void
master_begin_stop(struct master *m, int64_t now)
{
	int i;

	if (m->stopping)
		return;
	app_log(BM_LOG_INFO, NULL, "master", "stopping");
	app_notify("STOPPING=1");
	m->stopping = 1;
	/* New connections are refused at once; queued ones are still served. */
	if (m->lst.path != NULL)
		unlink(m->lst.path);
	for (i = 0; i < m->nslots; i++)
		if (m->procs[i].pid != 0 && !m->procs[i].retiring)
			master_retire(m, i, now);
}

/*
 * Tries the new configuration in a throwaway child, which first closes
 * the loaded modules (so changed files on disk are really opened) and
 * then loads everything.  Returns 0 when it loaded, -1 when not (the child
 * logged why, and passed its error line back in why): the master then
 * keeps what it runs.
 */
static int
master_try_reload(struct master *m, char *why, size_t cap)
{
	struct master_gen next;
	int status = 0, fds[2];
	ssize_t n;
	pid_t pid;

	snprintf(why, cap, "the new configuration did not load");
	if (pipe(fds) < 0) {
		app_log_errno(BM_LOG_ERROR, NULL, "master", "pipe");
		return -1;
	}
	if ((pid = fork()) < 0) {
		app_log_errno(BM_LOG_ERROR, NULL, "master", "fork");
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		app_log_set_pid();
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(fds[0]);
		app_modules_unload(m->cur.mods);
		m->cur.mods = NULL;
		if (master_gen_load(&next, m->envp) < 0) {
			const char *e = app_log_last_error();
			(void)!write(fds[1], e, strlen(e));
			_exit(1);
		}
		_exit(0);
	}
	close(fds[1]);
	n = read(fds[0], why, cap - 1);
	if (n > 0)
		why[n] = '\0';
	else if (n == 0 || cap == 0)
		snprintf(why, cap, "the new configuration did not load");
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		continue;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Tells systemd a reload failed, and that the old generation serves on. */
static void
master_reload_failed(const char *why)
{
	size_t i, n = strcspn(why, "\n");

	app_metrics_add(APP_METRIC_RELOADS, APP_RESULT_FAILED, 0, 1);
	/* One line: a newline would start another notification field. */
	for (i = 0; i < n && why[i] != '\0'; i++)
		if ((unsigned char)why[i] < 0x20)
			n = i;
	app_notify("READY=1\nSTATUS=reload failed: %.*s", (int)n, why);
}

static void
master_begin_reload(struct master *m)
{
	struct master_gen next;
	char why[512];

	app_log(BM_LOG_INFO, NULL, "master", "reloading");
	/* MONOTONIC_USEC: what systemd >= 253 (Type=notify-reload) asks for. */
	app_notify("RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=reloading",
	    (long long)app_now_us());
	if (master_try_reload(m, why, sizeof(why)) < 0) {
		app_log(BM_LOG_ERROR, NULL, "master", "reload failed: the "
		    "running configuration and responders are kept");
		master_reload_failed(why);
		return;
	}
	/*
	 * A module's file may have changed on disk: dlopen would return the
	 * loaded copy, so the old set is closed first.  Responders already
	 * running keep their own copy.
	 */
	app_modules_unload(m->cur.mods);
	m->cur.mods = NULL;
	if (master_gen_load(&next, m->envp) < 0) {
		snprintf(why, sizeof(why), "%s", app_log_last_error());
		app_log(BM_LOG_ERROR, NULL, "master", "reload failed: the "
		    "running responders keep serving");
		master_reload_failed(why);
		/* Reload what the running responders were started with. */
		master_gen_free(&m->cur);
		if (master_gen_load(&m->cur, m->envp) < 0) {
			app_log(BM_LOG_ERROR, NULL, "master", "cannot reload the "
			    "previous configuration either: stopping");
			m->exit_code = 1;
			master_begin_stop(m, app_now_ms());
		}
		return;
	}
	if ((next.conf.listen == NULL) != (m->cur.conf.listen == NULL) ||
	    (next.conf.listen != NULL &&
	    strcmp(next.conf.listen, m->cur.conf.listen) != 0))
		app_log(BM_LOG_WARN, NULL, "master", "BM_LISTEN changed: it "
		    "takes effect at the next start");
	if (strcmp(next.conf.db_home, m->cur.conf.db_home) != 0) {
		char *home = strdup(m->cur.conf.db_home);
		if (home != NULL) {
			app_log(BM_LOG_WARN, NULL, "master", "BM_DB_HOME changed: "
			    "it takes effect at the next start");
			free(next.conf.db_home);
			next.conf.db_home = home;
		}
	}
	/* The slots were sized for the ceiling at start. */
	if (next.conf.workers_max > m->pool_max) {
		app_log(BM_LOG_WARN, NULL, "master", "BM_WORKERS_MAX above %u "
		    "takes effect at the next start", m->pool_max);
		next.conf.workers_max = m->pool_max;
		if (next.conf.workers > m->pool_max)
			next.conf.workers = m->pool_max;
	}
	master_gen_free(&m->cur);
	m->cur = next;
	/* A grown pool stays as large as the load made it, within bounds. */
	if (m->target < m->cur.conf.workers)
		m->target = m->cur.conf.workers;
	if (m->target > m->cur.conf.workers_max)
		m->target = m->cur.conf.workers_max;
	app_metrics_set(APP_METRIC_POOL_TARGET, 0, 0, m->target);
	app_metrics_add(APP_METRIC_RELOADS, APP_RESULT_OK, 0, 1);
	m->generation++;
	m->reloading = 1;
	m->fast_deaths = 0;
	m->next_spawn = 0;
}

/* What the tick counts: responders taking requests, by kind. */
struct master_count {
	int live;       /* not retiring, any generation */
	int old;        /* of those, of an older generation */
	int starting;   /* of those, not ready yet */
	int idle;       /* of those, waiting for a connection */
	int retiring;   /* finishing their last request */
	uint64_t done;  /* requests they finished since the last count */
	int64_t span;   /* ms since the last count */
};

/*
 * Counts the responders, and notes the last time each one was seen
 * working: a changed request count or a state other than idle (both
 * written by the responder), so the idle time costs the slot no field.
 */
static void
master_count(struct master *m, int64_t now, struct master_count *c)
{
	int i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < m->nslots; i++) {
		struct master_proc *p = &m->procs[i];
		uint64_t req;
		int state;

		if (p->pid == 0 || p->kind != MASTER_RESPONDER)
			continue;
		if (p->retiring) {
			c->retiring++;
			continue;
		}
		req = atomic_load(&m->slots[i].requests);
		state = atomic_load(&m->slots[i].state);
		c->done += req - p->seen;
		if (req != p->seen || state != APP_SLOT_IDLE) {
			p->seen = req;
			p->active_at = now;
		}
		c->live++;
		c->old += p->generation != m->generation;
		c->starting += state == APP_SLOT_STARTING;
		c->idle += state == APP_SLOT_IDLE;
	}
	c->span = m->counted_at != 0 ? now - m->counted_at : 0;
	m->counted_at = now;
}

/*
 * The slot of the responder to retire among those taking requests: an
 * old one when old is set, else any; an idle one first, the longest idle.
 * Returns -1 when there is none.
 */
static int
master_pick_retire(const struct master *m, int old)
{
	int i, best = -1, best_idle = 0;

	for (i = 0; i < m->nslots; i++) {
		const struct master_proc *p = &m->procs[i];
		int idle;

		if (p->pid == 0 || p->retiring || p->kind != MASTER_RESPONDER ||
		    (old && p->generation == m->generation))
			continue;
		idle = atomic_load(&m->slots[i].state) == APP_SLOT_IDLE;
		if (best < 0 || (idle && !best_idle) || (idle == best_idle &&
		    p->active_at < m->procs[best].active_at)) {
			best = i;
			best_idle = idle;
		}
	}
	return best;
}

/*
 * Is a connection waiting in the listening socket's backlog?  Responders
 * accept at once when one of them waits on the socket, so a connection
 * still there means none could take it.
 */
static int
master_backlog(const struct master *m)
{
	struct pollfd pfd = { .fd = m->lst.fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN) != 0;
}

/*
 * The dynamic pool (SPEC §9, php-fpm's pm = dynamic): grows the target
 * while requests wait with no responder idle and the busy ones wait too
 * (MASTER_GROW_SERVICE_MS), by 1, 2, 4... responders a tick up to
 * MASTER_GROW_MAX and BM_WORKERS_MAX; retires a responder idle
 * for BM_WORKERS_IDLE_TIMEOUT while there are more than BM_WORKERS.
 * Returns 1 when it retired one, else 0.
 */
static int
master_pool(struct master *m, int64_t now, const struct master_count *c)
{
	const struct app_conf *conf = &m->cur.conf;
	int waiting, slow, i;
	int64_t busy = c->live - c->idle - c->starting;
	unsigned add;

	waiting = master_backlog(m);
	slow = busy > 0 && c->span > 0 &&
	    busy * c->span >= MASTER_GROW_SERVICE_MS * (int64_t)c->done;
	/*
	 * An idle responder may wait on a connection the web server keeps
	 * open (fastcgi_keep_conn) rather than on the socket: a request
	 * still waiting one tick later needs a responder too.
	 */
	if (waiting && slow && (c->idle == 0 || m->waited) && c->starting == 0 &&
	    m->fast_deaths == 0 && (unsigned)c->live >= m->target &&
	    m->target < conf->workers_max) {
		add = m->grow;
		if (add > conf->workers_max - m->target)
			add = conf->workers_max - m->target;
		m->target += add;
		app_metrics_add(APP_METRIC_POOL_GROWS, 0, 0, add);
		app_metrics_set(APP_METRIC_POOL_TARGET, 0, 0, m->target);
		app_log(BM_LOG_INFO, NULL, "master", "pool: every responder "
		    "busy and a request waiting: %u more (%u, at most %u)",
		    add, m->target, conf->workers_max);
		m->grow = m->grow * 2 > MASTER_GROW_MAX ? MASTER_GROW_MAX :
		    m->grow * 2;
	} else if (!waiting || !slow || c->idle > 0)
		m->grow = 1;
	m->waited = waiting;

	/* One retirement a tick, the longest idle first. */
	if (m->target <= conf->workers || (unsigned)c->live < m->target ||
	    (i = master_pick_retire(m, 0)) < 0 ||
	    atomic_load(&m->slots[i].state) != APP_SLOT_IDLE ||
	    now - m->procs[i].active_at <
	    (int64_t)conf->workers_idle_timeout * 1000)
		return 0;
	m->target--;
	app_metrics_add(APP_METRIC_POOL_RETIRES, 0, 0, 1);
	app_metrics_set(APP_METRIC_POOL_TARGET, 0, 0, m->target);
	app_log(BM_LOG_INFO, NULL, "master", "pool: responder %ld idle for "
	    "%lld ms: retired (%u left)", (long)m->procs[i].pid,
	    (long long)(now - m->procs[i].active_at), m->target);
	master_retire(m, i, now);
	return 1;
}

/*
 * Keeps the pool at its target: refills, grows and shrinks it
 * (master_pool), and during a reload replaces old responders one at a
 * time: a new one starts first and an old one is retired only once it is
 * ready, so capacity never drops; at BM_WORKERS_MAX an old one is retired
 * first (the idle one if any) so the count never passes it.
 */
static void
master_tick(struct master *m, int64_t now)
{
	struct master_count c;
	int i;

	for (i = 0; i < m->nslots; i++)
		if (m->procs[i].pid != 0 && m->procs[i].retiring &&
		    m->procs[i].kill_at != 0 && now >= m->procs[i].kill_at) {
			app_log(BM_LOG_WARN, NULL, "master", "%s %ld did not "
			    "stop in time: SIGKILL",
			    master_kind_name(m->procs[i].kind),
			    (long)m->procs[i].pid);
			kill(m->procs[i].pid, SIGKILL);
			m->procs[i].kill_at = 0;
		}
	if (m->stopping)
		return;
	master_tick_delivery(m, now);
	master_count(m, now, &c);
	if (m->fast_deaths > 0 && now - m->next_spawn > MASTER_FAST_DEATH_MS &&
	    c.live > 0 && c.starting == 0)
		m->fast_deaths = 0;

	if ((unsigned)c.live < m->target && now >= m->next_spawn) {
		/* Refill at once; one at a time while crash-looping. */
		do {
			if (master_spawn(m, now) < 0)
				break;
		} while ((unsigned)++c.live < m->target && m->fast_deaths == 0);
		return;
	}
	if (c.old > 0 && c.starting == 0) {
		if ((unsigned)c.live <= m->target &&
		    (unsigned)c.live < m->cur.conf.workers_max) {
			if (now >= m->next_spawn)
				master_spawn(m, now);
			return;
		}
		if ((i = master_pick_retire(m, 1)) >= 0) {
			c.idle -= atomic_load(&m->slots[i].state) ==
			    APP_SLOT_IDLE;
			master_retire(m, i, now);
			c.live--;
			c.old--;
			c.retiring++;
		}
	}
	if (master_pool(m, now, &c))
		c.retiring++;
	if (m->reloading && c.old == 0 && c.retiring == 0 && c.starting == 0) {
		m->reloading = 0;
		app_log(BM_LOG_INFO, NULL, "master", "reload done");
		app_notify("READY=1\nSTATUS=serving with %d responders "
		    "(reloaded)", c.live);
	}
	if (!m->ready && c.old == 0 && c.retiring == 0 && c.starting == 0 &&
	    (unsigned)c.live >= m->cur.conf.workers) {
		/* The first generation is up: systemd's start is done. */
		m->ready = 1;
		app_notify("READY=1\nSTATUS=serving with %d responders",
		    c.live);
	}
}

/* Ends a reload step that waits too long for a new responder. */
static void
master_check_starting(struct master *m, int64_t now)
{
	int i;

	for (i = 0; i < m->nslots; i++)
		if (m->procs[i].pid != 0 && !m->procs[i].retiring &&
		    m->procs[i].kind == MASTER_RESPONDER &&
		    atomic_load(&m->slots[i].state) == APP_SLOT_STARTING &&
		    now - m->procs[i].started > MASTER_READY_TIMEOUT_MS) {
			app_log(BM_LOG_WARN, NULL, "master", "responder %ld not "
			    "ready after %d ms: stopping it",
			    (long)m->procs[i].pid, MASTER_READY_TIMEOUT_MS);
			master_retire(m, i, now);
		}
}

int
app_master_run(char *const *envp)
{
	struct master *m = NULL;
	struct timespec ts;
	siginfo_t si;
	sigset_t set;
	char err[512];
	int rc = 1, i;

	app_log_set_pid();
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return 1;
	/* Children that _exit() (the purge, tool commands) still point at
	 * it: memory they inherit is reachable, not leaked. */
	master_self = m;
	m->envp = envp;
	m->lst.fd = -1;
	m->ctl_fd = -1;
	m->pid = getpid();
	/* Signals are taken synchronously with sigtimedwait(). */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (master_gen_load(&m->cur, envp) < 0)
		goto out;
	m->pool_max = m->cur.conf.workers_max;
	m->target = m->cur.conf.workers;
	m->grow = 1;
	/* Delivery processes too, twice over for a reload. */
	m->nslots = 2 * (int)(m->pool_max + m->cur.conf.delivery_procs) +
	    MASTER_SLOTS_EXTRA + MASTER_SLOTS_OTHER;
	if ((m->procs = calloc((size_t)m->nslots, sizeof(*m->procs))) ==
	    NULL) {
		app_log(BM_LOG_ERROR, NULL, "master", "out of memory");
		goto out;
	}
	/* The counters live after the slots, in the same shared mapping. */
	m->slots = mmap(NULL, master_shm_size(m->nslots), PROT_READ |
	    PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m->slots == MAP_FAILED) {
		m->slots = NULL;
		app_log_errno(BM_LOG_ERROR, NULL, "master", "mmap");
		goto out;
	}
	master_shm_slots = m->slots;
	master_shm_nslots = m->nslots;
	app_metrics_attach(m->slots + m->nslots, master_count_states);
	app_metrics_set(APP_METRIC_POOL_TARGET, 0, 0, m->target);
	if ((m->neg = app_negcache_new()) == NULL ||
	    app_breaker_init(m->cur.conf.breaker_threshold) < 0) {
		app_log_errno(BM_LOG_ERROR, NULL, "master", "mmap");
		goto out;
	}
	/*
	 * One server per BM_DB_HOME, and no tool beside it: store.lock, held
	 * for our life and inherited by every child (store.h).  A second
	 * server is refused here, before it touches anything.
	 */
	{
		struct store_lock_info li;
		int lrc = store_lock_take(&m->lock, m->cur.conf.db_home, 1,
		    MASTER_LOCK_WAIT_MS, &li, err, sizeof(err));

		if (lrc == STORE_LOCK_SERVER) {
			app_log(BM_LOG_ERROR, NULL, "master", "BM_DB_HOME %s: "
			    "a server (pid %ld) already runs on it; one "
			    "server per BM_DB_HOME", m->cur.conf.db_home,
			    li.holder_pid);
			goto out;
		}
		if (lrc == STORE_LOCK_BUSY) {
			app_log(BM_LOG_ERROR, NULL, "master", "BM_DB_HOME %s: "
			    "a botmatic-keys command (pid %ld) has held it for "
			    "%d s", m->cur.conf.db_home, li.holder_pid,
			    MASTER_LOCK_WAIT_MS / 1000);
			goto out;
		}
		if (lrc != STORE_LOCK_TAKEN) {
			app_log(BM_LOG_ERROR, NULL, "master", "BM_DB_HOME: %s",
			    err);
			goto out;
		}
		if (li.dirty)
			app_log(BM_LOG_WARN, NULL, "keystore", "%s %ld died "
			    "with the keystore open: recovering it",
			    li.holder_server ? "server" : "tool",
			    li.holder_pid);
	}
	/*
	 * After a crash of the whole server no supervisor saw the deaths, and
	 * a plain open can hang in failchk (store.h): recover first, while
	 * nothing of ours has the environment open.
	 */
	if (access(m->cur.conf.db_home, F_OK) == 0 &&
	    store_recover(m->cur.conf.db_home, MASTER_RECOVER_TIMEOUT_MS, err,
	    sizeof(err)) != STORE_OK) {
		app_log(BM_LOG_ERROR, NULL, "keystore", "BM_DB_HOME: %s", err);
		goto out;
	}
	if (master_probe_store(&m->cur.conf) < 0)
		goto out;
	if ((m->ctl_fd = store_control_listen(m->cur.conf.db_home, err,
	    sizeof(err))) < 0) {
		app_log(BM_LOG_ERROR, NULL, "master", "control socket: %s", err);
		goto out;
	}
	/* A purge a previous run left unfinished resumes now. */
	m->purge_wanted = 1;
	if (app_listen_open(&m->lst, &m->cur.conf, err, sizeof(err)) < 0) {
		app_log(BM_LOG_ERROR, NULL, "master", "%s", err);
		goto out;
	}
	app_log(BM_LOG_INFO, NULL, "master", "listening on %s with %u "
	    "responders (up to %u), auth %s", m->lst.desc, m->cur.conf.workers,
	    m->cur.conf.workers_max, app_conf_auth_name(m->cur.conf.auth));

	for (;;) {
		int64_t now = app_now_ms();
		int sig, live = 0;

		master_reap(m, now);
		for (i = 0; i < m->nslots; i++)
			live += m->procs[i].pid != 0;
		if (m->stopping && live == 0)
			break;
		master_control(m, now);
		if (!m->stopping) {
			master_check_starting(m, now);
			master_watchdog(m, now);
			master_purge(m, now);
		}
		master_tick(m, now);

		ts.tv_sec = 0;
		ts.tv_nsec = 50 * 1000000L;
		sig = sigtimedwait(&set, &si, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			master_begin_stop(m, app_now_ms());
		else if (sig == SIGHUP && !m->stopping)
			master_begin_reload(m);
	}
	app_log(BM_LOG_INFO, NULL, "master", "stopped");
	rc = m->exit_code;
	/* Every child is gone: the lock is emptied unless a recovery
	 * failed, in which case the next holder tries again. */
	m->clean_stop = !m->store_bad;
out:
	if (m->ctl_fd >= 0) {
		close(m->ctl_fd);
		store_control_unlink(m->cur.conf.db_home);
	}
	store_lock_release(m->lock, m->clean_stop);
	if (m->lst.fd >= 0)
		app_listen_close(&m->lst, 1);
	master_gen_free(&m->cur);
	app_negcache_free(m->neg);
	app_breaker_free();
	if (m->slots != NULL)
		munmap(m->slots, master_shm_size(m->nslots));
	free(m->procs);
	master_self = NULL;
	free(m);
	return rc;
}

/*
 * The keystore directory as a start would use it: an existing directory
 * this user may enter and write, or a missing one whose parent it may
 * write (the start creates it).  Returns 0, or -1 (logged).
 */
static int
master_check_db_home(const char *home)
{
	struct stat st;
	char *parent = NULL, *slash;
	int rc = -1;

	if (stat(home, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			app_log(BM_LOG_ERROR, NULL, "keystore", "BM_DB_HOME: %s: "
			    "not a directory", home);
			goto out;
		}
		if (access(home, R_OK | W_OK | X_OK) < 0) {
			app_log_errno(BM_LOG_ERROR, NULL, "keystore", "BM_DB_HOME: "
			    "%s", home);
			goto out;
		}
		rc = 0;
		goto out;
	}
	if (errno != ENOENT) {
		app_log_errno(BM_LOG_ERROR, NULL, "keystore", "BM_DB_HOME: %s",
		    home);
		goto out;
	}
	if ((parent = strdup(home)) == NULL) {
		app_log(BM_LOG_ERROR, NULL, "keystore", "out of memory");
		goto out;
	}
	while ((slash = strrchr(parent, '/')) != NULL && slash[1] == '\0' &&
	    slash != parent)
		*slash = '\0';
	if ((slash = strrchr(parent, '/')) == NULL)
		snprintf(parent, strlen(parent) + 1, ".");
	else if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (access(parent, W_OK | X_OK) < 0) {
		app_log_errno(BM_LOG_ERROR, NULL, "keystore", "BM_DB_HOME: %s "
		    "does not exist and cannot be created in %s", home, parent);
		goto out;
	}
	rc = 0;
out:
	free(parent);
	return rc;
}

int
app_master_check(char *const *envp)
{
	struct master_gen g;
	int rc = 1;

	app_log_set_pid();
	if (master_gen_load(&g, envp) < 0)
		goto out;
	if (master_check_db_home(g.conf.db_home) < 0) {
		master_gen_free(&g);
		goto out;
	}
	master_gen_free(&g);
	rc = 0;
out:
	if (rc == 0)
		printf("botmatic-fcgi: configuration ok\n");
	else
		fprintf(stderr, "botmatic-fcgi: configuration test failed\n");
	fflush(stdout);
	return rc;
}

/*
 * --import-contacts opens the store outside a server's supervision, so it
 * takes store.lock as botmatic-keys does.  When a server holds it, the
 * import is handed to that server (control.sock), which runs it in a child
 * it supervises: it never opens the store under a live server.
 */
int
app_master_import(char *const *envp, const char *install_id)
{
	struct app_worker_args args;
	struct master_gen g;
	struct app_slot slot;
	struct store_lock *lock = NULL;
	struct store_lock_info li;
	char err[512], *av[5];
	int fds[3] = { STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO };
	int rc = 1, lrc, st, tries;

	if (master_gen_load(&g, envp) < 0)
		return 1;
	for (tries = 0;; tries++) {
		lrc = store_lock_take(&lock, g.conf.db_home, 0,
		    MASTER_LOCK_WAIT_MS, &li, err, sizeof(err));
		if (lrc != STORE_LOCK_SERVER)
			break;
		av[0] = "-t";
		av[1] = "0";
		av[2] = "import-contacts";
		av[3] = (char *)install_id;
		av[4] = NULL;
		fflush(stdout);
		lrc = store_control_call(g.conf.db_home, 4, av, fds, &st, err,
		    sizeof(err));
		if (lrc == 0) {
			rc = st;
			goto out;
		}
		if (lrc != STORE_CONTROL_NOSERVER || tries > 100) {
			app_log(BM_LOG_ERROR, NULL, "import", "BM_DB_HOME: the "
			    "server (pid %ld): %s", li.holder_pid, err);
			goto out;
		}
		usleep(50000); /* the server is starting or stopping */
	}
	if (lrc == STORE_LOCK_BUSY) {
		app_log(BM_LOG_ERROR, NULL, "import", "BM_DB_HOME: a "
		    "botmatic-keys command (pid %ld) holds the keystore",
		    li.holder_pid);
		goto out;
	}
	if (lrc != STORE_LOCK_TAKEN) {
		app_log(BM_LOG_ERROR, NULL, "import", "BM_DB_HOME: %s", err);
		goto out;
	}
	if (li.dirty && store_recover(g.conf.db_home,
	    MASTER_RECOVER_TIMEOUT_MS, err, sizeof(err)) != STORE_OK) {
		app_log(BM_LOG_ERROR, NULL, "keystore", "BM_DB_HOME: %s", err);
		store_lock_release(lock, 0);
		goto out;
	}
	memset(&args, 0, sizeof(args));
	memset(&slot, 0, sizeof(slot));
	args.listen_fd = -1;
	args.conf = &g.conf;
	args.reg = g.reg;
	args.mods = g.mods;
	args.slot = &slot;
	args.map = g.map;
	rc = app_worker_import(&args, install_id);
	store_lock_release(lock, rc != 2);
	if (rc == 2)
		rc = 1;
out:
	master_gen_free(&g);
	return rc;
}
