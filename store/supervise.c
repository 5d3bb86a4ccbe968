/*
 * store/supervise.c - what the supervising master runs when a process using
 * the environment dies, without ever holding a handle itself (BDB-NOTES.md,
 * "The arrangement that stayed safe").
 *
 * Each helper forks a short-lived process that does the BDB work and reports
 * on a pipe, so that a hang inside BDB (failchk can block for ever when the
 * dead process was waiting for a lock) costs the master a timeout, not its
 * life: the child is SIGKILLed and reaped.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"

/* What a child reports: first byte, then a message. */
#define REPORT_CLEAN 'C'
#define REPORT_RECOVERY 'R'
#define REPORT_ERROR 'E'

struct child_ctx {
	const char *home;
	DB_ENV *env;   /* a panicked handle deliberately left open */
	int recovered; /* BDB said it ran recovery */
	char bdb[200]; /* BDB's last own message */
	char msg[512]; /* the report */
};

/*
 * With DB_VERB_RECOVERY on, BDB tells what failchk freed ("Freeing read
 * locks...") and, if it runs recovery, says so: the latter is what we need
 * to know.
 */
static void
msgcall(const DB_ENV *env, const char *msg)
{
	struct child_ctx *c = env->app_private;

	if (strstr(msg, "Recovery starting") != NULL ||
	    strstr(msg, "Recovery complete") != NULL ||
	    strstr(msg, "Finding last valid log LSN") != NULL)
		c->recovered = 1;
}

/* Replaces env.c's, whose app_private is a struct store. */
static void
event(DB_ENV *env, u_int32_t ev, void *info)
{
	(void)env;
	(void)ev;
	(void)info;
}

static void
errcall(const DB_ENV *env, const char *pfx, const char *msg)
{
	struct child_ctx *c = env->app_private;

	(void)pfx;
	snprintf(c->bdb, sizeof(c->bdb), "%s", msg);
}

static char
fail(struct child_ctx *c, int ret, const char *what)
{
	if (c->bdb[0] != '\0')
		snprintf(c->msg, sizeof(c->msg), "%s: %s: %s (%s)", c->home,
		    what, db_strerror(ret), c->bdb);
	else
		snprintf(c->msg, sizeof(c->msg), "%s: %s: %s", c->home, what,
		    db_strerror(ret));
	return REPORT_ERROR;
}

/* The checker: open as every process does, failchk, close. */
static char
check_body(struct child_ctx *c)
{
	DB_ENV *env = NULL;
	char rep = REPORT_CLEAN;
	int ret;

	if ((ret = store__env_create(&env, NULL, 32,
	    STORE_PROCESSES_MAX)) != 0) {
		rep = fail(c, ret, "checker: configuring environment");
		goto out;
	}
	env->app_private = c;
	env->set_errcall(env, errcall);
	env->set_msgcall(env, msgcall);
	if ((ret = env->set_event_notify(env, event)) != 0 ||
	    (ret = env->set_verbose(env, DB_VERB_RECOVERY, 1)) != 0) {
		rep = fail(c, ret, "checker: configuring environment");
		goto out;
	}
	ret = env->open(env, c->home, STORE__OPEN_FLAGS, 0600);
	if (ret == 0 && (ret = env->failchk(env, 0)) != 0 &&
	    ret != DB_RUNRECOVERY)
		rep = fail(c, ret, "checker: failchk");
	else if (ret == DB_RUNRECOVERY) {
		/* Exit without closing: the registry keeps the evidence. */
		c->env = env;
		env = NULL;
		rep = REPORT_RECOVERY;
	} else if (ret != 0)
		rep = fail(c, ret, "checker: opening environment");
	else if (c->recovered)
		/* Recovery during open (failchk on open failed) has
		 * panicked every live handle: they need restarting too. */
		rep = REPORT_RECOVERY;
out:
	if (env != NULL && (ret = env->close(env, 0)) != 0 &&
	    rep == REPORT_CLEAN)
		rep = fail(c, ret, "checker: closing environment");
	return rep;
}

/* The recoverer: alone in the environment, so a plain DB_RECOVER open
 * (no DB_REGISTER) always runs recovery and rebuilds the regions. */
static char
recover_body(struct child_ctx *c)
{
	DB_ENV *env = NULL;
	char rep = REPORT_CLEAN;
	int ret;

	if ((ret = store__env_create(&env, NULL, 32,
	    STORE_PROCESSES_MAX)) != 0) {
		rep = fail(c, ret, "recovery: configuring environment");
		goto out;
	}
	env->app_private = c;
	env->set_errcall(env, errcall);
	if ((ret = env->set_event_notify(env, event)) != 0) {
		rep = fail(c, ret, "recovery: configuring environment");
		goto out;
	}
	ret = env->open(env, c->home, DB_CREATE | DB_INIT_LOCK | DB_INIT_LOG |
	    DB_INIT_MPOOL | DB_INIT_TXN | DB_RECOVER, 0600);
	if (ret != 0)
		rep = fail(c, ret, "recovery");
	else if ((ret = env->txn_checkpoint(env, 0, 0, 0)) != 0)
		rep = fail(c, ret, "recovery: checkpoint");
out:
	if (env != NULL && (ret = env->close(env, 0)) != 0 &&
	    rep == REPORT_CLEAN)
		rep = fail(c, ret, "recovery: closing environment");
	return rep;
}

static long
elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000L +
	    (t.tv_nsec - t0->tv_nsec) / 1000000L;
}

/*
 * Forks body, waits for its report up to timeout_ms.  Returns the report
 * byte, 'H' if it had to be killed, or REPORT_ERROR; err gets messages.
 */
static char
run_child(const char *home, int timeout_ms, char (*body)(struct child_ctx *),
    char *err, size_t errlen)
{
	struct child_ctx c;
	struct timespec t0;
	struct pollfd pfd;
	char buf[1 + sizeof(c.msg)];
	size_t got = 0;
	ssize_t r;
	long left;
	pid_t pid = -1;
	int p[2] = { -1, -1 }, status, hung = 0;
	char rep = REPORT_ERROR;

	memset(&c, 0, sizeof(c));
	c.home = home;
	if (pipe2(p, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "%s: pipe: %s", home, strerror(errno));
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((pid = fork()) < 0) {
		snprintf(err, errlen, "%s: fork: %s", home, strerror(errno));
		goto out;
	}
	if (pid == 0) {
		/* The master's handlers are not ours. */
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGPIPE, SIG_IGN);
		close(p[0]);
		buf[0] = body(&c);
		memcpy(buf + 1, c.msg, strlen(c.msg));
		(void)!write(p[1], buf, 1 + strlen(c.msg));
		_exit(0);
	}
	close(p[1]);
	p[1] = -1;
	pfd.fd = p[0];
	pfd.events = POLLIN;
	for (;;) {
		if ((left = timeout_ms - elapsed_ms(&t0)) <= 0) {
			hung = 1;
			break;
		}
		pfd.revents = 0;
		if (poll(&pfd, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "%s: poll: %s", home,
			    strerror(errno));
			hung = 1; /* do not leave it running */
			break;
		}
		if (pfd.revents == 0)
			continue;
		r = read(p[0], buf + got, sizeof(buf) - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (hung) {
		(void)kill(pid, SIGKILL);
		rep = 'H';
	}
	/* Reaped here whatever happened (ECHILD if a handler beat us). */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (hung) {
		if (errlen > 0 && err[0] == '\0')
			snprintf(err, errlen, "%s: checker overran %d ms and "
			    "was killed", home, timeout_ms);
		goto out;
	}
	buf[got] = '\0';
	if (got == 0) {
		snprintf(err, errlen, "%s: the checker died without a report",
		    home);
		goto out;
	}
	rep = buf[0];
	if (got > 1)
		snprintf(err, errlen, "%s", buf + 1);
out:
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	return rep;
}

int
store_check_after_death(const char *home, int timeout_ms, char *err,
    size_t errlen)
{
	char rep;

	if (errlen > 0)
		err[0] = '\0';
	rep = run_child(home, timeout_ms, check_body, err, errlen);
	switch (rep) {
	case REPORT_CLEAN:
		return STORE_CHECK_CLEAN;
	case REPORT_RECOVERY:
		if (errlen > 0 && err[0] == '\0')
			snprintf(err, errlen, "%s: failchk needs recovery",
			    home);
		return STORE_CHECK_RECOVERY_NEEDED;
	case 'H':
		return STORE_CHECK_HUNG;
	default:
		return STORE_ERROR;
	}
}

int
store_recover(const char *home, int timeout_ms, char *err, size_t errlen)
{
	char rep;

	if (errlen > 0)
		err[0] = '\0';
	rep = run_child(home, timeout_ms, recover_body, err, errlen);
	if (rep == REPORT_CLEAN)
		return STORE_OK;
	if (rep == 'H')
		snprintf(err, errlen, "%s: recovery overran %d ms and was "
		    "killed", home, timeout_ms);
	return STORE_ERROR;
}
