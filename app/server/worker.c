#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "server/server.h"

/* Set by the signal handler only; read between requests. */
static volatile sig_atomic_t worker_stop;

static void
worker_on_term(int sig)
{
	(void)sig;
	worker_stop = 1;
}

int
app_worker_import(const struct app_worker_args *args, const char *install_id)
{
	struct app_env env = { .conf = args->conf, .reg = args->reg,
	    .neg = args->neg, .map = args->map, .host = app_host() };
	struct app_extrest *rest = NULL;
	struct bm_consumer restc;
	struct app_keystore ks;
	char err[512], *token = NULL, *secret = NULL, *text = NULL;
	json_t *res = NULL;
	int rc = 1;

	memset(&ks, 0, sizeof(ks));
	if (args->map == NULL) {
		app_log(BM_LOG_ERROR, NULL, "import", "contact sync is off: set "
		    "BM_MAPPINGS");
		return 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (env.botmatic = app_botmatic_new(args->conf)) == NULL) {
		app_log(BM_LOG_ERROR, NULL, "import", "libcurl init failed");
		goto out;
	}
	if (app_ks_open(&ks, args->conf, &args->slot->db_since, err,
	    sizeof(err)) < 0) {
		app_log(BM_LOG_ERROR, NULL, "keystore", "%s", err);
		goto out;
	}
	env.ks = &ks;
	if (app_sync_consumer_open(&env, "worker", &rest,
	    &restc) < 0 ||
	    app_modules_init_process(args->mods) < 0)
		goto out;
	switch (app_ks_install_by_id(&ks, "import", install_id, &token,
	    &secret)) {
	case 0:
		break;
	case 1:
		app_log(BM_LOG_ERROR, NULL, "import", "no installation %s",
		    install_id);
		goto out;
	default:
		goto out;
	}
	res = app_sync_import(&env, "import", token);
	if (res != NULL && (text = json_dumps(res, JSON_COMPACT)) != NULL)
		printf("%s\n", text);
	rc = json_is_true(json_object_get(res, "success")) ? 0 : 1;
out:
	app_modules_exit_process(args->mods);
	/* 2: the store was left for a recovery (the caller's lock says so). */
	if (env.ks != NULL && app_ks_close(env.ks) < 0)
		rc = 2;
	app_extrest_free(rest);
	app_botmatic_free(env.botmatic);
	curl_global_cleanup();
	if (token != NULL)
		explicit_bzero(token, strlen(token));
	free(token);
	free(secret);
	free(text);
	json_decref(res);
	return rc;
}

void
app_worker_main(const struct app_worker_args *args)
{
	struct app_env env = { .conf = args->conf, .reg = args->reg,
	    .neg = args->neg, .map = args->map, .host = app_host(),
	    .settings = args->settings, .events = args->events };
	struct app_keystore ks;
	struct app_extrest *rest = NULL;
	struct bm_consumer restc;
	char err[512];
	struct app_slot *slot = args->slot;
	struct sigaction sa;
	sigset_t blocked, waitmask;
	struct pollfd pfd;
	FCGX_Request fr;
	uint64_t seq = 0;
	int code = 1, draining = 0;

	/* SIGTERM/SIGINT are blocked except inside ppoll(), see worker.h. */
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGTERM);
	sigaddset(&blocked, SIGINT);
	sigaddset(&blocked, SIGHUP);
	sigprocmask(SIG_SETMASK, &blocked, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	sigaddset(&waitmask, SIGHUP);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = worker_on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);

	if (FCGX_Init() != 0) {
		app_log(BM_LOG_ERROR, NULL, "worker", "FCGX_Init failed");
		goto out;
	}
	if (FCGX_InitRequest(&fr, args->listen_fd, 0) != 0) {
		app_log(BM_LOG_ERROR, NULL, "worker", "FCGX_InitRequest failed");
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (env.botmatic = app_botmatic_new(args->conf)) == NULL) {
		app_log(BM_LOG_ERROR, NULL, "worker", "libcurl init failed");
		goto out;
	}
	/* One environment handle per process, opened after fork. */
	if (app_ks_open(&ks, args->conf, &slot->db_since, err,
	    sizeof(err)) < 0) {
		app_log(BM_LOG_ERROR, NULL, "keystore", "%s", err);
		goto out;
	}
	ks.forgot = &slot->purge;
	env.ks = &ks;
	if (args->map != NULL && app_sync_consumer_open(&env, "worker", &rest,
	    &restc) < 0)
		goto out;
	if (app_modules_init_process(args->mods) < 0)
		goto out;
	atomic_store(&slot->state, APP_SLOT_IDLE);

	pfd.events = POLLIN;
	for (;;) {
		int rc;

		if (worker_stop && !draining) {
			draining = 1;
			atomic_store(&slot->state, APP_SLOT_STOPPING);
		}
		/* Retired while the others serve: they take what waits. */
		if (draining && atomic_load(&slot->handover))
			break;
		/*
		 * A connection the web server keeps open (fastcgi_keep_conn)
		 * brings its next request on that connection, not on the
		 * listening socket: wait on it then.
		 */
		pfd.fd = fr.ipcFd >= 0 ? fr.ipcFd : args->listen_fd;
		if (!draining) {
			rc = ppoll(&pfd, 1, NULL, &waitmask);
			if (rc < 0 && errno != EINTR) {
				app_log_errno(BM_LOG_ERROR, NULL, "worker", "poll");
				goto out;
			}
			if (rc <= 0 || worker_stop)
				continue;
		} else if (fr.ipcFd >= 0 && poll(&pfd, 1, 0) <= 0) {
			/* Stopping: an idle kept connection is closed. */
			FCGX_Free(&fr, 1);
			continue;
		}
		/* Non-blocking: another responder may have taken it. */
		rc = FCGX_Accept_r(&fr);
		if (rc < 0) {
			if (draining)
				break;
			if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -EINTR)
				continue;
			app_log(BM_LOG_ERROR, NULL, "worker", "accept failed (%d)",
			    rc);
			goto out;
		}
		atomic_store(&slot->busy_since, app_now_ms());
		if (!draining)
			atomic_store(&slot->state, APP_SLOT_BUSY);
		app_fcgi_serve(&env, &fr, ++seq);
		FCGX_Finish_r(&fr);
		atomic_fetch_add(&slot->requests, 1);
		atomic_store(&slot->busy_since, 0);
		if (!draining)
			atomic_store(&slot->state, APP_SLOT_IDLE);
		if (ks.broken)
			goto out;
	}
	code = 0;
out:
	app_modules_exit_process(args->mods);
	if (env.ks != NULL)
		app_ks_close(env.ks);
	app_botmatic_free(env.botmatic);
	app_extrest_free(rest);
	curl_global_cleanup();
	exit(code);
}
