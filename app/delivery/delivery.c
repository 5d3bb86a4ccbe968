/*
 * delivery/delivery.c - a delivery process: one loop that takes the job
 * due first, runs it, writes its outcome, and polls the queue (a cursor on
 * the due index, cheap) every DELIVERY_IDLE_MS while nothing is due.
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
/* Pause after a failed store call (logged), so a broken store does not spin. */
#define DELIVERY_ERROR_MS 1000

static volatile sig_atomic_t delivery_stop;

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
 * The external consumer, as a responder sets it up: the generic REST one
 * (its own curl handle) or a module's.  Returns 0, or -1 (logged).
 */
static int
delivery_consumer(struct app_env *env, const struct app_delivery_args *a,
    struct app_extrest **rest, struct bm_consumer *restc)
{
	const struct app_conf *conf = a->conf;
	const struct app_consumer *mc;
	char err[512];

	env->ext_id_key = conf->ext_id_field != NULL ? conf->ext_id_field :
	    map_id_name(a->map, MAP_EXT) != NULL ?
	    map_id_name(a->map, MAP_EXT) : "id";
	if (strcmp(conf->ext_consumer, "rest") == 0) {
		if ((*rest = app_extrest_new(conf, env->ext_id_key, err,
		    sizeof(err))) == NULL) {
			app_log(BM_LOG_ERROR, NULL, "delivery", "external consumer: "
			    "%s", err);
			return -1;
		}
		app_extrest_consumer(*rest, restc);
		env->consumer = restc;
		return 0;
	}
	/* Checked by the master before fork. */
	if ((mc = app_registry_consumer(a->reg, conf->ext_consumer + 7)) ==
	    NULL)
		return -1;
	env->consumer = &mc->c;
	return 0;
}

void
app_delivery_main(const struct app_delivery_args *a)
{
	struct app_env env = { .conf = a->conf, .reg = a->reg,
	    .map = a->map, .host = app_host() };
	struct app_keystore ks;
	struct app_extrest *rest = NULL;
	struct bm_consumer restc;
	struct app_ks_job *job = NULL;
	struct sigaction sa;
	sigset_t none;
	char err[512];
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
	if (delivery_consumer(&env, a, &rest, &restc) < 0 ||
	    app_modules_init_process(a->mods) < 0)
		goto out;
	/* Jobs a killed process held need not wait for their leases. */
	(void)app_ks_jobs_release(&ks, NULL);
	while (!delivery_stop) {
		if (getppid() != a->master) {
			app_log(BM_LOG_WARN, NULL, "delivery", "the master is gone: "
			    "stopping");
			break;
		}
		rc = app_ks_job_claim(&ks, NULL, app_sync_lease_ms(a->conf),
		    &job);
		if (ks.broken)
			goto out;
		if (rc < 0) {
			delivery_sleep(DELIVERY_ERROR_MS);
			continue;
		}
		if (rc == 1) {
			delivery_sleep(DELIVERY_IDLE_MS);
			continue;
		}
		(void)app_sync_deliver(&env, job);
		app_ks_job_free(job);
		job = NULL;
		if (ks.broken)
			goto out;
	}
	code = 0;
out:
	app_modules_exit_process(a->mods);
	if (env.ks != NULL)
		app_ks_close(env.ks);
	app_botmatic_free(env.botmatic);
	app_extrest_free(rest);
	curl_global_cleanup();
	exit(code);
}
