/*
 * delivery/delivery.c - a delivery process: one loop that claims due jobs
 * up to BM_DELIVERY_CONCURRENCY, starts them on the asynchronous path (their
 * calls in flight together in one curl multi handle), runs the others (a
 * module's consumer, imports, the external service's changes) one at a
 * time on the blocking path between rounds, waits for the calls, and polls
 * the queue (a cursor on the due index, cheap) every DELIVERY_IDLE_MS while
 * nothing is due.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "delivery/delivery.h"

/* How often an idle delivery process looks at the queue. */
#define DELIVERY_IDLE_MS 100
/* How often the queue's gauges of the status are refreshed. */
#define DELIVERY_GAUGES_MS 1000
/* Pause after a failed store call (logged), so a broken store does not spin. */
#define DELIVERY_ERROR_MS 1000

static volatile sig_atomic_t delivery_stop;

/* A job started on the asynchronous path whose outcome is not written. */
struct delivery_slot {
	uint64_t id;
	int64_t leased;   /* when its lease was last set (claim or renewal) */
	int used;
};
static struct delivery_slot *delivery_slots;
static unsigned delivery_inflight;

static void
delivery_on_term(int sig)
{
	(void)sig;
	delivery_stop = 1;
}

static void
delivery_sleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	/* SIGTERM interrupts it: the loop sees the flag at once. */
	(void)nanosleep(&ts, NULL);
}

/*
 * Publishes the queue's gauges at most every DELIVERY_GAUGES_MS: the
 * store's counts and the first pending id, read without a scan.  Each
 * delivery process may do it; they publish the same numbers.
 */
static void
delivery_gauges(struct app_keystore *ks, int64_t *last)
{
	uint64_t pending, dead, oldest;
	int64_t now = app_ks_job_now();

	if (*last != 0 && now - *last < DELIVERY_GAUGES_MS && now >= *last)
		return;
	*last = now;
	if (app_ks_jobs_stats(ks, &pending, &dead, &oldest) != 0)
		return;
	app_metrics_set(APP_METRIC_JOBS_QUEUED, 0, 0, pending);
	app_metrics_set(APP_METRIC_JOBS_DEAD, 0, 0, dead);
	app_metrics_set(APP_METRIC_JOBS_OLDEST, 0, 0, oldest);
}

/* A job of the asynchronous path has its outcome written. */
static void
delivery_finished(void *arg)
{
	struct delivery_slot *sl = arg;

	sl->used = 0;
	delivery_inflight--;
}

/*
 * Renews the leases of the jobs in flight set more than min_age ms ago
 * (0: all), so no other process claims a job whose calls still run: a
 * blocking job between rounds, or many steps, can outlast a lease.
 */
static void
delivery_renew(struct app_keystore *ks, const struct app_conf *conf,
    int64_t min_age)
{
	int64_t now = app_ks_job_now(), lease = app_sync_lease_ms(conf);
	unsigned i;

	for (i = 0; delivery_slots != NULL &&
	    i < conf->delivery_concurrency && !ks->broken; i++) {
		struct delivery_slot *sl = &delivery_slots[i];

		if (!sl->used || now - sl->leased < min_age)
			continue;
		/* 1: taken back meanwhile (its outcome will not be written). */
		if (app_ks_job_renew(ks, NULL, sl->id, lease) == 0)
			sl->leased = now;
	}
}

void
app_delivery_main(const struct app_delivery_args *a)
{
	struct app_env env = { .conf = a->conf, .reg = a->reg,
	    .map = a->map, .host = app_host(), .events = a->events };
	struct app_keystore ks;
	struct app_extrest *rest = NULL;
	struct bm_consumer restc;
	struct app_ks_job *job = NULL;
	struct app_http_multi *multi = NULL;
	struct delivery_slot *sl;
	struct sigaction sa;
	unsigned i;
	sigset_t none;
	char err[512];
	int64_t gauges = 0;
	int code = 1, rc;

	memset(&ks, 0, sizeof(ks));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = delivery_on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (env.botmatic = app_botmatic_new(a->conf)) == NULL) {
		app_log(BM_LOG_ERROR, NULL, "delivery", "libcurl init failed");
		goto out;
	}
	/* One environment handle per process, opened after fork. */
	if (app_ks_open(&ks, a->conf, a->progress, err, sizeof(err)) < 0) {
		app_log(BM_LOG_ERROR, NULL, "keystore", "%s", err);
		goto out;
	}
	env.ks = &ks;
	/* Integration events alone (no BM_MAPPINGS) need no consumer. */
	if ((a->map != NULL && app_sync_consumer_open(&env, "delivery", &rest,
	    &restc) < 0) || app_modules_init_process(a->mods) < 0)
		goto out;
	/* Jobs a killed process held need not wait for their leases. */
	(void)app_ks_jobs_release(&ks, NULL);
	/*
	 * With the generic REST consumer, jobs run concurrently; a lease covers
	 * the calls of one job (app_sync_lease_ms) and is renewed when a job
	 * in flight has held it for half of it, and before a blocking job.
	 */
	if (rest != NULL && ((multi = app_http_multi_new(a->conf,
	    a->conf->delivery_concurrency)) == NULL ||
	    (delivery_slots = calloc(a->conf->delivery_concurrency,
	    sizeof(*delivery_slots))) == NULL)) {
		app_log(BM_LOG_ERROR, NULL, "delivery", "out of memory");
		goto out;
	}
	for (;;) {
		if (getppid() != a->master) {
			app_log(BM_LOG_WARN, NULL, "delivery", "the master is gone: "
			    "stopping");
			delivery_stop = 1;
		}
		/* SIGTERM: no new job; the calls in flight end (timeouts). */
		if (delivery_stop && delivery_inflight == 0)
			break;
		delivery_gauges(&ks, &gauges);
		if (ks.broken)
			goto out;
		rc = 1;
		while (!delivery_stop && (multi == NULL ||
		    delivery_inflight < a->conf->delivery_concurrency)) {
			rc = app_ks_job_claim(&ks, NULL,
			    app_sync_lease_ms(a->conf), &job);
			if (ks.broken)
				goto out;
			if (rc != 0)
				break;
			sl = NULL;
			for (i = 0; multi != NULL && sl == NULL &&
			    i < a->conf->delivery_concurrency; i++)
				if (!delivery_slots[i].used)
					sl = &delivery_slots[i];
			if (sl != NULL) {
				sl->id = job->id;
				sl->leased = app_ks_job_now();
				sl->used = 1;
				delivery_inflight++;
				if (app_sync_flight_start(&env, rest, multi, job,
				    delivery_finished, sl) == 1) {
					job = NULL;
					if (ks.broken)
						goto out;
					continue;
				}
				sl->used = 0;
				delivery_inflight--;
			}
			/*
			 * Blocking: one at a time, then the calls in flight
			 * again; their leases first cover its calls.
			 */
			delivery_renew(&ks, a->conf, 0);
			(void)app_sync_deliver(&env, job);
			app_ks_job_free(job);
			job = NULL;
			if (ks.broken)
				goto out;
			break;
		}
		if (delivery_inflight > 0)
			delivery_renew(&ks, a->conf,
			    app_sync_lease_ms(a->conf) / 2);
		if (delivery_inflight > 0) {
			/* No store call runs while waiting: the mark is clear. */
			if (app_http_multi_run(multi, DELIVERY_IDLE_MS) < 0) {
				app_log(BM_LOG_ERROR, NULL, "delivery",
				    "curl_multi failed");
				goto out;
			}
			if (ks.broken)
				goto out;
			continue;
		}
		if (rc < 0)
			delivery_sleep(DELIVERY_ERROR_MS);
		else if (rc == 1)
			delivery_sleep(DELIVERY_IDLE_MS);
	}
	code = 0;
out:
	/* Calls still in flight (store broken): their leases lapse. */
	app_http_multi_free(multi);
	free(delivery_slots);
	app_modules_exit_process(a->mods);
	if (env.ks != NULL)
		app_ks_close(env.ks);
	app_botmatic_free(env.botmatic);
	app_extrest_free(rest);
	curl_global_cleanup();
	exit(code);
}
