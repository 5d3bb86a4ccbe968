/*
 * tests/store/test-chaos.c - writers SIGKILLed at random instants, with the
 * test acting as the supervisor of BDB-NOTES.md ("The arrangement that
 * stayed safe"): it holds no environment handle; when a writer dies it
 * reaps it, runs store_check_after_death() under a timeout and restarts
 * just that writer if the check was clean, or else escalates: SIGKILL every
 * writer, store_recover(), restart them all.  A watchdog escalates too when
 * a live writer has made no progress for STALL_MS (a wedge).
 *
 * Each writer saves fresh pairs and appends each one to its log only after
 * store_ids_save() returned success; it also hammers one hot state value so
 * that kills land while others wait for its lock.  At the end the writers
 * die one by one, each death handled but nobody restarted, and a fresh open
 * must recover by itself.  Then the whole set crashes at once (a server
 * killed outright): store_recover(), as a master runs at start, must bring
 * it back.  Every logged pair must be there, both directions.
 *
 * Environment: BM_CHAOS_KILLS (default 60), BM_CHAOS_STALL_MS (3000),
 * BM_CHAOS_SECONDS (budget for the kill phase, 75).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/tap.h"

enum { WRITERS = 3, CHECK_MS = 1000, RECOVER_MS = 30000 };

/* Shared with the writers: their progress, for the watchdog. */
struct slot {
	atomic_long progress_ms; /* last commit (or spawn), monotonic ms */
	atomic_long commits;
};

struct chaos {
	const char *home, *dir;
	struct slot *slots;       /* WRITERS, shared memory */
	pid_t pid[WRITERS];       /* -1: not running */
	unsigned incarnation[WRITERS];
	long t0;
	int kills, deaths, clean, escalations, hung, recovery_needed;
	int stall_escalations, failures;
	long max_stall_ms, stall_ms;
	int stopping;             /* deaths are handled, nobody restarted */
};

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A writer's life: save, log after success, repeat.  Never returns. */
static void
writer(struct chaos *c, int w)
{
	struct store_opts o = { .home = c->home };
	struct store *s = NULL;
	char err[512], path[1024], b[64], e[64], integ[16], line[200], *v;
	unsigned long n;
	int fd, rc, len;

	snprintf(path, sizeof(path), "%s/log%d", c->dir, w);
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600)) < 0)
		_exit(4);
	rc = store_open(&s, &o, err, sizeof(err));
	if (rc != STORE_OK)
		_exit(rc == STORE_RUNRECOVERY ? 3 : 4);
	for (n = 0;; n++) {
		snprintf(integ, sizeof(integ), "chaos%lu", n % 3);
		snprintf(b, sizeof(b), "w%d.%u.%lu", w, c->incarnation[w], n);
		snprintf(e, sizeof(e), "x%d.%u.%lu", w, c->incarnation[w], n);
		if ((rc = store_ids_save(s, integ, b, e)) != STORE_OK)
			break;
		len = snprintf(line, sizeof(line), "%s %s %s\n", integ, b, e);
		if (write(fd, line, (size_t)len) != len)
			_exit(4);
		atomic_store(&c->slots[w].progress_ms, now_ms());
		atomic_fetch_add(&c->slots[w].commits, 1);
		/* Writer 0 works like a responder between requests, so
		 * that some kills land outside any DB call. */
		if (w == 0)
			usleep(300);
		if (n % 4 == 0) {
			/* The hot key: every writer, all the time. */
			snprintf(line, sizeof(line), "%d.%lu", w, n);
			if ((rc = store_state_set(s, "chaos0", "hot", line,
			    strlen(line))) != STORE_OK)
				break;
		}
		if (n % 8 == 0 && n > 0) {
			snprintf(b, sizeof(b), "w%d.%u.%lu", w,
			    c->incarnation[w], n / 2);
			snprintf(integ, sizeof(integ), "chaos%lu", n / 2 % 3);
			v = NULL;
			rc = store_ext_id_get(s, integ, b, &v);
			free(v);
			if (rc < 0)
				break;
		}
	}
	/* A panicked environment: exit as a responder would. */
	_exit(rc == STORE_RUNRECOVERY ? 3 : 4);
}

static void
spawn(struct chaos *c, int w)
{
	pid_t pid;

	if (c->stopping)
		return;
	c->incarnation[w]++;
	atomic_store(&c->slots[w].progress_ms, now_ms());
	if ((pid = fork()) == 0)
		writer(c, w);
	c->pid[w] = pid;
}

/* Kills and reaps every writer, recovers, restarts them all. */
static void
escalate(struct chaos *c)
{
	char err[512];
	long now;
	int w;

	c->escalations++;
	for (w = 0; w < WRITERS; w++)
		if (c->pid[w] > 0) {
			/* How long this survivor has been waiting. */
			now = now_ms() - atomic_load(&c->slots[w].progress_ms);
			if (now > c->max_stall_ms)
				c->max_stall_ms = now;
			kill(c->pid[w], SIGKILL);
		}
	for (w = 0; w < WRITERS; w++)
		if (c->pid[w] > 0) {
			waitpid(c->pid[w], NULL, 0);
			c->pid[w] = -1;
		}
	if (store_recover(c->home, RECOVER_MS, err, sizeof(err)) != STORE_OK) {
		tap_diag("recover: %s", err);
		c->failures++;
	}
	for (w = 0; w < WRITERS; w++)
		spawn(c, w);
}

/* A writer is dead and reaped: check, then restart it or escalate. */
static void
after_death(struct chaos *c, int w)
{
	char err[512];
	int rc;

	c->pid[w] = -1;
	c->deaths++;
	rc = store_check_after_death(c->home, CHECK_MS, err, sizeof(err));
	switch (rc) {
	case STORE_CHECK_CLEAN:
		c->clean++;
		spawn(c, w);
		return;
	case STORE_CHECK_HUNG:
		c->hung++;
		break;
	case STORE_CHECK_RECOVERY_NEEDED:
		c->recovery_needed++;
		break;
	default:
		tap_diag("check: %s", err);
		c->failures++;
		break;
	}
	escalate(c);
}

/* Reaps writers that died by themselves; watches for wedges. */
static void
watch(struct chaos *c)
{
	long now = now_ms(), stall, worst = 0;
	int w, status;

	for (w = 0; w < WRITERS; w++) {
		if (c->pid[w] > 0 && waitpid(c->pid[w], &status, WNOHANG) ==
		    c->pid[w]) {
			if (WIFEXITED(status) && WEXITSTATUS(status) == 4)
				c->failures++; /* not a panic: a bug */
			after_death(c, w);
			now = now_ms();
		}
	}
	for (w = 0; w < WRITERS; w++) {
		stall = now - atomic_load(&c->slots[w].progress_ms);
		if (stall > c->max_stall_ms)
			c->max_stall_ms = stall;
		if (stall > worst)
			worst = stall;
	}
	if (worst > c->stall_ms) {
		c->stall_escalations++;
		escalate(c);
	}
}

/* Opens home in a child (a hang must not hang the test): 0 if it did. */
static int
fresh_open(const char *home, long timeout_ms, long *took_ms)
{
	long t0 = now_ms();
	int rc = -1, status;
	pid_t pid;

	if ((pid = fork()) == 0) {
		struct store_opts o = { .home = home };
		struct store *s = NULL;
		char err[512];

		if (store_open(&s, &o, err, sizeof(err)) != STORE_OK)
			_exit(1);
		store_close(s);
		_exit(0);
	}
	while (now_ms() - t0 < timeout_ms) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
			pid = -1;
			break;
		}
		usleep(10000);
	}
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	*took_ms = now_ms() - t0;
	return rc;
}

static long
env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? strtol(v, NULL, 10) : def;
}

/* Checks every logged pair; returns the number checked, *missing set. */
static long
check_logs(struct chaos *c, struct store *s, long *missing)
{
	char path[1024], line[256], integ[64], b[64], e[64], *v;
	long n = 0;
	FILE *f;
	int w;

	*missing = 0;
	for (w = 0; w < WRITERS; w++) {
		snprintf(path, sizeof(path), "%s/log%d", c->dir, w);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL) {
			if (strchr(line, '\n') == NULL ||
			    sscanf(line, "%63s %63s %63s", integ, b, e) != 3)
				continue; /* a torn last line: never logged */
			n++;
			v = NULL;
			if (store_ext_id_get(s, integ, b, &v) != STORE_OK ||
			    strcmp(v, e) != 0) {
				if (*missing < 5)
					tap_diag("lost: %s %s %s", integ, b, e);
				(*missing)++;
			}
			free(v);
			v = NULL;
			if (store_botmatic_id_get(s, integ, e, &v) !=
			    STORE_OK || strcmp(v, b) != 0)
				(*missing)++;
			free(v);
		}
		fclose(f);
	}
	return n;
}

int
main(void)
{
	struct tap t = { 0 };
	struct chaos c;
	struct store_opts o = { 0 };
	struct store *s = NULL;
	char dir[512], home[600], err[512];
	long target, budget, next, logged, missing, opened_ms;
	size_t problems = 99;
	int w, victim, rc;

	memset(&c, 0, sizeof(c));
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	if (tap_tmpdir(dir, sizeof(dir), "chaos") != 0) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(home, sizeof(home), "%s/env", dir);
	c.home = home;
	c.dir = dir;
	c.slots = mmap(NULL, WRITERS * sizeof(*c.slots),
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c.slots == MAP_FAILED) {
		printf("Bail out! mmap: %s\n", strerror(errno));
		return 1;
	}
	target = env_long("BM_CHAOS_KILLS", 60);
	c.stall_ms = env_long("BM_CHAOS_STALL_MS", 3000);
	budget = env_long("BM_CHAOS_SECONDS", 75) * 1000;
	c.t0 = now_ms();
	for (w = 0; w < WRITERS; w++)
		spawn(&c, w);

	while (c.kills < target && now_ms() - c.t0 < budget) {
		/* Let them work a random while, watching. */
		next = now_ms() + 20 + rand() % 200;
		while (now_ms() < next) {
			usleep(5000);
			watch(&c);
		}
		victim = rand() % WRITERS;
		if (c.pid[victim] <= 0)
			continue;
		kill(c.pid[victim], SIGKILL);
		waitpid(c.pid[victim], NULL, 0);
		c.kills++;
		after_death(&c, victim);
	}
	/*
	 * Stop as a supervisor would see it: the writers die one by one at
	 * random instants, each death handled, nobody restarted.  Then a
	 * fresh process must open the environment by itself.
	 */
	c.stopping = 1;
	for (w = 0; w < WRITERS; w++) {
		next = now_ms() + 20 + rand() % 200;
		while (now_ms() < next) {
			usleep(5000);
			watch(&c);
		}
		if (c.pid[w] <= 0)
			continue;
		kill(c.pid[w], SIGKILL);
		waitpid(c.pid[w], NULL, 0);
		c.kills++;
		after_death(&c, w);
	}

	tap_diag("%d kills (%d deaths handled): %d clean checks, %d needing "
	    "recovery, %d hung checks; %d escalations (%d for stalls); max "
	    "stall %ld ms; %ld commits; %.1f s", c.kills, c.deaths, c.clean,
	    c.recovery_needed, c.hung, c.escalations, c.stall_escalations,
	    c.max_stall_ms, atomic_load(&c.slots[0].commits) +
	    atomic_load(&c.slots[1].commits) + atomic_load(&c.slots[2].commits),
	    (double)(now_ms() - c.t0) / 1000);
	tap_ok(&t, c.kills >= 50 || target < 50, "at least 50 writers killed "
	    "at random instants (%d)", c.kills);
	tap_ok(&t, c.failures == 0, "no writer failed but by a panic, every "
	    "check and recovery ran (%d failures)", c.failures);
	tap_ok(&t, c.max_stall_ms < c.stall_ms + CHECK_MS + RECOVER_MS,
	    "no survivor waited unboundedly (max %ld ms, watchdog at %ld ms)",
	    c.max_stall_ms, c.stall_ms);
	rc = fresh_open(home, 30000, &opened_ms);
	tap_ok(&t, rc == 0, "a fresh open afterwards recovers by itself "
	    "(%ld ms)", opened_ms);

	/*
	 * The whole server crashing at once: nobody handled those deaths,
	 * and failchk may hang (a writer died waiting for a lock).  A master
	 * (re)starting runs store_recover() before forking anyone.
	 */
	c.stopping = 0;
	for (w = 0; w < WRITERS; w++)
		spawn(&c, w);
	usleep(300000);
	for (w = 0; w < WRITERS; w++)
		kill(c.pid[w], SIGKILL);
	for (w = 0; w < WRITERS; w++) {
		waitpid(c.pid[w], NULL, 0);
		c.pid[w] = -1;
	}
	rc = store_check_after_death(home, CHECK_MS, err, sizeof(err));
	tap_diag("after every writer crashed at once, a check says %s",
	    rc == STORE_CHECK_CLEAN ? "clean" :
	    rc == STORE_CHECK_RECOVERY_NEEDED ? "recovery needed" :
	    rc == STORE_CHECK_HUNG ? "hung" : err);
	rc = store_recover(home, RECOVER_MS, err, sizeof(err));
	if (rc != STORE_OK)
		tap_diag("recover: %s", err);
	tap_ok(&t, rc == STORE_OK && fresh_open(home, 30000, &opened_ms) == 0,
	    "then store_recover, as a master does at start, and a fresh open "
	    "bring it back (%ld ms)", opened_ms);

	o.home = home;
	if (store_open(&s, &o, err, sizeof(err)) != STORE_OK) {
		tap_ok(&t, 0, "open: %s", err);
		goto out;
	}
	logged = check_logs(&c, s, &missing);
	tap_ok(&t, logged > 0 && missing == 0, "every pair whose save "
	    "returned is there, both directions (%ld logged, %ld missing)",
	    logged, missing);
	rc = store_verify(s, NULL, NULL, &problems);
	tap_ok(&t, rc == STORE_OK && problems == 0, "the store is a bijection "
	    "(%zu problems)", problems);
	store_close(s);
out:
	munmap(c.slots, WRITERS * sizeof(*c.slots));
	tap_rmtree(dir);
	return tap_done(&t);
}
