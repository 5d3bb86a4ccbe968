/*
 * tests/store/test-jobs.c - the delivery queue of the store (store/jobs.c):
 * bad input refused, order per contact, leases and a killed holder, a job
 * finished with its pair in one transaction (SIGKILLed at random instants),
 * retry / dead / revive, unique jobs, the next step of a job, cancel per
 * job and per integration (uninstall), jobs of a vanished installation,
 * detached jobs that outlive their installation, and a signed delivery's
 * id claimed with its jobs in one transaction (store_delivery_accept).
 * The clock is the test's: no timing is asserted.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/store/backend.h"
#include "tests/tap.h"

#define T0 1700000000000LL

static struct store *
open_store(const char *home)
{
	struct store_opts o = { .home = home };
	struct store *s = NULL;
	char err[512];

	test_opts(&o);
	if (store_open(&s, &o, err, sizeof(err)) != STORE_OK) {
		tap_diag("open: %s", err);
		return NULL;
	}
	return s;
}

static uint64_t
add(struct store *s, const char *integ, const char *contact,
    const char *payload, int64_t now, unsigned *flags)
{
	struct store_job_spec sp = { .integ = integ, .kind = "contact_updated",
	    .contact = contact, .payload = payload, .now = now };
	uint64_t id = 0;

	if (store_job_add(s, &sp, &id, flags) != STORE_OK)
		tap_diag("add: %s", store_strerror(s));
	return id;
}

/* The id of the job claimed at now by pid (0 when none). */
static uint64_t
claim(struct store *s, uint32_t pid, int64_t now, int64_t until)
{
	struct store_job *j = NULL;
	uint64_t id = 0;

	if (store_job_claim(s, pid, now, until, &j) == STORE_OK)
		id = j->id;
	store_job_free(j);
	return id;
}

struct census {
	size_t pending, dead;
	int64_t oldest;
	uint64_t ids[64];
	size_t n;
	char contacts[64][32];
};

static int
census_fn(void *arg, const struct store_job *j)
{
	struct census *c = arg;

	if (j->dead)
		c->dead++;
	else {
		c->pending++;
		if (c->oldest == 0)
			c->oldest = j->created; /* id order: the first */
	}
	if (c->n < 64) {
		c->ids[c->n] = j->id;
		snprintf(c->contacts[c->n], sizeof(c->contacts[0]), "%s",
		    j->contact);
		c->n++;
	}
	return 0;
}

/* Censuses taken, and those where the store's gauges disagreed. */
static unsigned stats_checks, stats_bad;

static struct census
census(struct store *s)
{
	struct store_jobs_stats st;
	struct census c;

	memset(&c, 0, sizeof(c));
	if (store_job_foreach(s, census_fn, &c) != STORE_OK)
		tap_diag("foreach: %s", store_strerror(s));
	/* The counts the store keeps must say what the scan found. */
	stats_checks++;
	if (store_jobs_stats(s, &st) != STORE_OK || st.pending != c.pending ||
	    st.dead != c.dead || st.oldest_created != c.oldest) {
		tap_diag("stats: pending %llu/%zu dead %llu/%zu oldest %lld/%lld",
		    (unsigned long long)st.pending, c.pending,
		    (unsigned long long)st.dead, c.dead,
		    (long long)st.oldest_created, (long long)c.oldest);
		stats_bad++;
	}
	return c;
}

static void
test_bad_input(struct tap *t, struct store *s)
{
	struct store_job_spec sp = { .integ = "tokA", .kind = "k",
	    .contact = "c", .payload = "{}", .now = T0 };
	char *big = malloc(STORE_JOB_PAYLOAD_MAX + 2);
	char longid[STORE_ID_MAX + 2];
	uint64_t id;

	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	sp.integ = "";
	tap_ok(t, store_job_add(s, &sp, &id, NULL) == STORE_EINVAL && id == 0,
	    "an empty integration is refused");
	sp.integ = "tokA";
	sp.contact = longid;
	tap_ok(t, store_job_add(s, &sp, &id, NULL) == STORE_EINVAL,
	    "a contact key over STORE_ID_MAX is refused");
	sp.contact = "c";
	sp.payload = "";
	tap_ok(t, store_job_add(s, &sp, &id, NULL) == STORE_EINVAL,
	    "an empty payload is refused");
	if (big != NULL) {
		memset(big, 'p', STORE_JOB_PAYLOAD_MAX + 1);
		big[STORE_JOB_PAYLOAD_MAX + 1] = '\0';
		sp.payload = big;
		tap_ok(t, store_job_add(s, &sp, &id, NULL) == STORE_EINVAL,
		    "a payload over STORE_JOB_PAYLOAD_MAX is refused");
	}
	sp.payload = "{}";
	sp.kind = "a-kind-name-that-is-much-longer-than-sixty-four-bytes-"
	    "and-then-some";
	tap_ok(t, store_job_add(s, &sp, &id, NULL) == STORE_EINVAL,
	    "a long kind is refused");
	sp.kind = "k";
	sp.lease_pid = 1;
	sp.lease_until = T0 - 1;
	tap_ok(t, store_job_add(s, &sp, &id, NULL) == STORE_EINVAL,
	    "a lease ending before now is refused");
	tap_ok(t, census(s).n == 0, "nothing was written by refused adds");
	free(big);
}

static void
test_order(struct tap *t, struct store *s)
{
	uint64_t a1, a2, b1, id;
	unsigned fl = 99;

	a1 = add(s, "tokA", "c1", "{\"n\":1}", T0, &fl);
	tap_ok(t, a1 > 0 && fl == 0, "a job is added (not leased)");
	a2 = add(s, "tokA", "c1", "{\"n\":2}", T0, NULL);
	b1 = add(s, "tokA", "c2", "{\"n\":3}", T0, NULL);
	tap_ok(t, a1 < a2 && a2 < b1, "ids follow arrival");
	tap_ok(t, claim(s, 10, T0 - 1, T0 + 100) == 0,
	    "nothing is due before its time");
	tap_ok(t, (id = claim(s, 10, T0, T0 + 100)) == a1,
	    "the first job of contact c1 is claimed first");
	tap_ok(t, (id = claim(s, 10, T0, T0 + 100)) == b1,
	    "then c2's: c1's second waits behind its first");
	tap_ok(t, claim(s, 10, T0, T0 + 100) == 0,
	    "nothing else is runnable while c1's first is leased");
	tap_ok(t, store_job_done(s, a1, NULL, 0, NULL, T0) == STORE_OK,
	    "the first job of c1 is done");
	tap_ok(t, claim(s, 10, T0, T0 + 100) == a2,
	    "c1's second job is runnable now");
	tap_ok(t, store_job_done(s, a2, NULL, 0, NULL, T0) == STORE_OK &&
	    store_job_done(s, b1, NULL, 0, NULL, T0) == STORE_OK &&
	    census(s).n == 0, "done jobs are gone");
	tap_ok(t, store_job_done(s, b1, NULL, 0, NULL, T0) == STORE_NOTFOUND,
	    "finishing a finished job says not found");
}

/* BM_TEST_ATOMIC_PAIRS=0 (setup.sh's valgrind pass): no forked killing. */
static int
no_kills(void)
{
	const char *v = getenv("BM_TEST_ATOMIC_PAIRS");

	return v != NULL && atol(v) <= 0;
}

static void
test_lease_killed(struct tap *t, struct store *s, const char *home)
{
	struct store_job *j = NULL;
	uint64_t id = add(s, "tokA", "c3", "{}", T0, NULL);
	int status = 0;
	pid_t pid;

	if (no_kills()) {
		/* The same lease, held by a process that is not there. */
		tap_ok(t, store_job_claim(s, 999999, T0, T0 + 5000, &j) ==
		    STORE_OK && j->id == id, "leased to a holder that is gone");
		store_job_free(j);
		j = NULL;
		tap_ok(t, 1, "failchk after the kill # SKIP "
		    "BM_TEST_ATOMIC_PAIRS=0");
		goto leased;
	}
	fflush(stdout);
	if ((pid = fork()) == 0) {
		struct store *cs = open_store(home);
		struct store_job *cj = NULL;

		if (cs == NULL || store_job_claim(cs, (uint32_t)getpid(), T0,
		    T0 + 5000, &cj) != STORE_OK)
			_exit(1);
		/* Dies holding the lease, between store calls. */
		kill(getpid(), SIGKILL);
		_exit(2);
	}
	waitpid(pid, &status, 0);
	tap_ok(t, WIFSIGNALED(status), "the holder was killed");
	if (test_redis())
		tap_ok(t, 1, "failchk after the kill # SKIP Redis has none");
	else {
		char err[512];
		/* A bound, not a timing: a checker under valgrind is slow. */
		int rc = store_check_after_death(home, 120000, err,
		    sizeof(err));
		tap_ok(t, rc == STORE_CHECK_CLEAN, "failchk after the kill is "
		    "clean (%d)", rc);
	}
leased:
	tap_ok(t, claim(s, 11, T0 + 4999, T0 + 6000) == 0,
	    "the job stays leased to the dead holder until the lease ends");
	tap_ok(t, store_job_claim(s, 11, T0 + 5000, T0 + 6000, &j) ==
	    STORE_OK && j->id == id && j->lease_pid == 11 && !j->dead,
	    "then it is claimed again, by another process");
	tap_ok(t, store_job_retry(s, id, 12, T0 + 7000, "x", 0) ==
	    STORE_NOTFOUND, "a process without the lease cannot reschedule");
	store_job_free(j);
	store_job_done(s, id, NULL, 0, NULL, T0);
}

static void
test_retry_dead_revive(struct tap *t, struct store *s)
{
	struct store_job *j = NULL;
	char *last = malloc(10000);
	uint64_t id, next, newid = 0;

	memset(last, 'a', 9999);
	last[9999] = '\0';
	id = add(s, "tokA", "c4", "{\"v\":1}", T0, NULL);
	next = add(s, "tokA", "c4", "{\"v\":2}", T0, NULL);
	tap_ok(t, claim(s, 20, T0, T0 + 100) == id, "claimed for an attempt");
	tap_ok(t, store_job_retry(s, id, 20, T0 + 5000, "HTTP 503", 0) ==
	    STORE_OK, "a failed attempt is rescheduled");
	tap_ok(t, claim(s, 20, T0 + 4999, T0 + 6000) == 0,
	    "not due before its next time (and c4's next waits behind it)");
	tap_ok(t, store_job_claim(s, 20, T0 + 5000, T0 + 6000, &j) ==
	    STORE_OK && j->id == id && j->attempts == 1 &&
	    strcmp(j->last, "HTTP 503") == 0, "due again, attempts 1, last "
	    "answer kept");
	store_job_free(j);
	j = NULL;
	tap_ok(t, store_job_retry(s, id, 20, T0 + 9000, last, 1) == STORE_OK,
	    "the schedule ran out: dead");
	tap_ok(t, store_job_get(s, id, &j) == STORE_OK && j->dead &&
	    j->attempts == 2 && strlen(j->last) == STORE_JOB_LAST_MAX,
	    "a dead job is kept, its last answer truncated");
	store_job_free(j);
	j = NULL;
	tap_ok(t, claim(s, 20, T0 + 5000, T0 + 6000) == next,
	    "the contact's next job runs once the first is dead");
	tap_ok(t, claim(s, 20, T0 + 5500, T0 + 5600) == 0,
	    "a dead job is never claimed");
	tap_ok(t, store_job_revive(s, next, T0, &newid) == STORE_EINVAL,
	    "a pending job cannot be revived");
	tap_ok(t, store_job_revive(s, id, T0 + 5000, &newid) == STORE_OK &&
	    newid > next, "the dead job is revived under a new id");
	tap_ok(t, store_job_get(s, id, &j) == STORE_NOTFOUND,
	    "its old id is gone");
	tap_ok(t, claim(s, 20, T0 + 5000, T0 + 6000) == 0,
	    "the revived job waits behind the contact's pending one");
	store_job_done(s, next, NULL, 0, NULL, T0);
	tap_ok(t, store_job_claim(s, 20, T0 + 5000, T0 + 6000, &j) ==
	    STORE_OK && j->id == newid && j->attempts == 0 &&
	    strcmp(j->payload, "{\"v\":1}") == 0, "then it runs, from zero");
	store_job_free(j);
	j = NULL;
	store_job_retry(s, newid, 20, 0, "again", 1);
	tap_ok(t, add(s, "tokA", "c5", "{}", T0, NULL) > 0 &&
	    claim(s, 21, T0, T0 + 10) > 0, "another job");
	{
		struct census c = census(s);
		size_t n = 0;
		tap_ok(t, c.dead == 1 && c.pending == 1, "one dead, one pending");
		tap_ok(t, store_jobs_revive_dead(s, T0, &n) == STORE_OK &&
		    n == 1 && census(s).dead == 0, "outbox retry --dead "
		    "revives every dead job");
	}
	tap_ok(t, store_job_cancel(s, newid) == STORE_NOTFOUND,
	    "a revived job's old id cannot be cancelled");
	{
		struct census c = census(s);
		size_t i;
		for (i = 0; i < c.n; i++)
			store_job_cancel(s, c.ids[i]);
		tap_ok(t, census(s).n == 0 && claim(s, 1, T0 + 999999,
		    T0 + 9999999) == 0, "cancelled jobs are gone, from every "
		    "index");
	}
	free(last);
}

static void
test_unique_and_steps(struct tap *t, struct store *s)
{
	struct store_job_spec sp = { .integ = "tokA", .kind = "import",
	    .contact = "*import", .payload = "{\"page\":1}", .now = T0,
	    .unique = 1 };
	struct store_op op = { .kind = STORE_OP_IDS_SAVE, .a = "tokA",
	    .b = "b77", .c = "e77" };
	struct store_job *j = NULL;
	uint64_t id, id2;
	unsigned fl = 0;
	char *v = NULL;

	tap_ok(t, store_job_add(s, &sp, &id, &fl) == STORE_OK && fl == 0,
	    "an import job is added");
	tap_ok(t, store_job_add(s, &sp, &id2, &fl) == STORE_OK &&
	    id2 == id && fl == STORE_JOB_EXISTED, "asked again, it is not "
	    "added twice");
	tap_ok(t, claim(s, 30, T0, T0 + 100) == id, "claimed");
	tap_ok(t, store_job_done(s, id, &op, 1, "{\"page\":2}", T0 + 50) ==
	    STORE_OK, "a page is done with its pairs, next page saved");
	tap_ok(t, store_ext_id_get(s, "tokA", "b77", &v) == STORE_OK &&
	    strcmp(v, "e77") == 0, "the page's pair is saved");
	free(v);
	tap_ok(t, store_job_claim(s, 30, T0 + 50, T0 + 100, &j) == STORE_OK &&
	    j->id == id && strcmp(j->payload, "{\"page\":2}") == 0 &&
	    j->attempts == 0, "the same job continues at the next page");
	store_job_free(j);
	tap_ok(t, store_job_done(s, id, &op, 1, NULL, T0) == STORE_OK &&
	    census(s).n == 0, "the last page ends the job");
	op.b = "b78";
	tap_ok(t, store_job_done(s, id, &op, 1, NULL, T0) == STORE_NOTFOUND &&
	    store_ext_id_get(s, "tokA", "b78", &v) == STORE_NOTFOUND,
	    "finishing a job that is gone applies nothing");
	free(v);
	op.b = "";
	id = add(s, "tokA", "c9", "{}", T0, NULL);
	tap_ok(t, store_job_done(s, id, &op, 1, NULL, T0) == STORE_EINVAL &&
	    census(s).n == 1, "a bad pair is refused and the job kept");
	store_job_cancel(s, id);
}

static void
test_lease_on_add(struct tap *t, struct store *s)
{
	struct store_job_spec sp = { .integ = "tokA", .kind = "k",
	    .contact = "c6", .payload = "{}", .now = T0, .lease_pid = 40,
	    .lease_until = T0 + 2000 };
	uint64_t id, id2;
	unsigned fl = 0;

	tap_ok(t, store_job_add(s, &sp, &id, &fl) == STORE_OK &&
	    fl == STORE_JOB_LEASED, "a responder's job is leased to it at once");
	tap_ok(t, claim(s, 41, T0 + 1999, T0 + 3000) == 0,
	    "the delivery process does not take it during the deadline");
	tap_ok(t, store_job_add(s, &sp, &id2, &fl) == STORE_OK && fl == 0,
	    "a second event for the contact queues behind it, unleased");
	tap_ok(t, store_job_retry(s, id, 40, T0 + 2500, "timeout", 0) ==
	    STORE_OK, "the responder hands it over to the queue");
	tap_ok(t, claim(s, 41, T0 + 2500, T0 + 3000) == id,
	    "the delivery process runs it next");
	store_job_cancel(s, id);
	store_job_cancel(s, id2);
}

static int
alive_if_mine(uint32_t pid)
{
	return pid == (uint32_t)getpid();
}

static void
test_release(struct tap *t, struct store *s)
{
	uint64_t a = add(s, "tokA", "r1", "{}", T0, NULL);
	uint64_t b = add(s, "tokA", "r2", "{}", T0, NULL);
	size_t n = 0;

	tap_ok(t, claim(s, 999999, T0, T0 + 60000) == a &&
	    claim(s, (uint32_t)getpid(), T0, T0 + 60000) == b,
	    "two jobs leased, one to a process that is gone");
	tap_ok(t, store_jobs_release(s, T0 + 10, alive_if_mine, &n) ==
	    STORE_OK && n == 1, "store_jobs_release frees the dead holder's");
	tap_ok(t, claim(s, 7, T0 + 10, T0 + 20) == a &&
	    claim(s, 7, T0 + 10, T0 + 20) == 0, "its job is due at once, the "
	    "live holder's keeps its lease");
	store_job_cancel(s, a);
	store_job_cancel(s, b);
}

static void
test_integration(struct tap *t, struct store *s)
{
	size_t pairs = 0, n = 0;
	uint64_t keep;

	store_install_record(s, "tokB", NULL, 0, NULL);
	add(s, "tokB", "c1", "{}", T0, NULL);
	add(s, "tokB", "c1", "{}", T0, NULL);
	add(s, "tokB", "c2", "{}", T0, NULL);
	keep = add(s, "tokA", "c1", "{}", T0, NULL);
	claim(s, 50, T0, T0 + 10);
	store_job_retry(s, census(s).ids[0], 50, 0, "dead", 1);
	tap_ok(t, census(s).dead == 1, "tokB has a dead job too");
	tap_ok(t, store_install_delete(s, "tokB", &pairs) == STORE_OK,
	    "tokB is uninstalled");
	{
		struct census c = census(s);
		tap_ok(t, c.n == 1 && c.ids[0] == keep, "its jobs, pending and "
		    "dead, went in the same transaction; tokA's stay");
	}
	add(s, "tokC", "c1", "{}", T0, NULL);
	tap_ok(t, store_jobs_cancel(s, "tokA", &n) == STORE_OK && n == 1,
	    "cancel per integration");
	tap_ok(t, claim(s, 51, T0, T0 + 10) == 0 && census(s).n == 0,
	    "a job whose installation does not exist is dropped when claimed");
}

/* Detached jobs (what an uninstall leaves to do) survive the uninstall. */
static void
test_detached(struct tap *t, struct store *s)
{
	struct store_job_spec sp = { .integ = "events", .kind = "hooks_delete",
	    .contact = "hooks:1", .payload = "{}", .now = T0, .detached = 1 };
	struct store_job *j = NULL;
	uint64_t id = 0, mine;
	size_t n = 0;
	char big[STORE_JOB_DETACHED_MAX + 2];

	store_install_record(s, "tokD", NULL, 0, NULL);
	mine = add(s, "tokD", "c1", "{}", T0, NULL);
	tap_ok(t, store_job_add(s, &sp, &id, NULL) == STORE_OK && id > mine,
	    "detached: a job of no installation is added");
	tap_ok(t, store_install_delete(s, "tokD", NULL) == STORE_OK &&
	    store_jobs_cancel(s, "tokD", &n) == STORE_OK && n == 0 &&
	    census(s).n == 1 && census(s).ids[0] == id,
	    "detached: the uninstall took its installation's jobs, not it");
	tap_ok(t, store_job_claim(s, 60, T0, T0 + 100, &j) == STORE_OK &&
	    j->id == id && strcmp(j->integ, "@events") == 0,
	    "detached: claimed (no installation needed), owner \"@events\"");
	store_job_free(j);
	tap_ok(t, store_job_done(s, id, NULL, 0, NULL, T0) == STORE_OK &&
	    census(s).n == 0, "detached: done like any job");
	memset(big, 'o', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sp.integ = big;
	tap_ok(t, store_job_add(s, &sp, &id, NULL) == STORE_EINVAL &&
	    census(s).n == 0, "detached: an owner name over the limit is "
	    "refused");
}

/* A delivery id claimed with the jobs it fires, all or nothing. */
static void
test_delivery_accept(struct tap *t, struct store *s)
{
	struct store_install *in = NULL;
	struct store_job_spec sp[2] = {
		{ .integ = "tokE", .kind = "ev_handler", .contact = "ev:d1",
		  .payload = "{\"n\":1}", .now = T0 },
		{ .integ = "tokE", .kind = "ev_campaign", .contact = "ev:d1",
		  .payload = "{\"n\":2}", .now = T0 },
	};
	uint64_t ids[2] = { 0, 0 };
	int64_t now = T0 / 1000;
	int dup = -1;

	if (store_install_record(s, "tokE", NULL, 0, &in) != STORE_OK) {
		tap_ok(t, 0, "accept: installed");
		return;
	}
	tap_ok(t, store_delivery_accept(s, in->install_id, "d1", now, 600, sp,
	    2, ids, &dup) == STORE_OK && dup == 0 && ids[0] > 0 &&
	    ids[1] > ids[0] && census(s).n == 2,
	    "accept: the id claimed and both jobs added");
	ids[0] = ids[1] = 0;
	tap_ok(t, store_delivery_accept(s, in->install_id, "d1", now + 1, 600,
	    sp, 2, ids, &dup) == STORE_OK && dup == 1 && census(s).n == 2,
	    "accept: the same id again is a duplicate and adds nothing");
	sp[1].kind = "";
	tap_ok(t, store_delivery_accept(s, in->install_id, "d2", now, 600, sp,
	    2, ids, &dup) == STORE_EINVAL && census(s).n == 2,
	    "accept: a bad job refuses the whole delivery");
	sp[1].kind = "ev_campaign";
	tap_ok(t, store_delivery_accept(s, in->install_id, "d2", now, 600, sp,
	    2, ids, &dup) == STORE_OK && dup == 0 && census(s).n == 4,
	    "accept: ... so its id was not claimed: accepted when sent again");
	tap_ok(t, store_delivery_accept(s, in->install_id, "d3", now, 600,
	    NULL, 0, NULL, &dup) == STORE_OK && dup == 0 &&
	    store_delivery_claim(s, in->install_id, "d3", now, 600, &dup) ==
	    STORE_OK && dup == 1, "accept: no job at all still claims the id");
	tap_ok(t, store_delivery_accept(s, in->install_id, "d1", now + 601,
	    600, sp, 1, ids, &dup) == STORE_OK && dup == 0 && census(s).n == 5,
	    "accept: after the time to live the id is new again");
	tap_ok(t, store_install_delete(s, "tokE", NULL) == STORE_OK &&
	    census(s).n == 0, "accept: the jobs are the installation's");
	store_install_free(in);
}

/*
 * A child adds job i then finishes it with pair (b<i>, e<i>) in a loop and
 * is SIGKILLed at a random instant: for every i, the job is still there or
 * the pair is saved, never both, never neither.
 */
static void
test_kill_finish(struct tap *t, const char *home)
{
	struct store *s;
	int round, bad = 0, total = 0;
	char err[512];

	/* Minutes under valgrind (a store opened per kill): the sanitizer
	 * pass runs it; setup.sh's valgrind pass sets this to 0. */
	if (no_kills()) {
		printf("ok %d - SIGKILLed while finishing # SKIP "
		    "BM_TEST_ATOMIC_PAIRS=0\n", ++t->n);
		return;
	}
	for (round = 0; round < 4; round++) {
		struct timespec ts = { 0, (long)(20 + 37 * round) * 1000000L };
		int fds[2], status;
		char c;
		pid_t pid;

		if (pipe(fds) < 0)
			return;
		fflush(stdout);
		if ((pid = fork()) == 0) {
			struct store *cs = open_store(home);
			char b[32], e[32], ct[32];
			unsigned i;

			close(fds[0]);
			if (cs == NULL)
				_exit(1);
			(void)!write(fds[1], "r", 1);
			for (i = 1;; i++) {
				struct store_op op = { .kind = STORE_OP_IDS_SAVE,
				    .a = "tokK", .b = b, .c = e };
				uint64_t id;

				snprintf(b, sizeof(b), "b%u-%d", i, round);
				snprintf(e, sizeof(e), "e%u-%d", i, round);
				snprintf(ct, sizeof(ct), "c%u-%d", i, round);
				id = add(cs, "tokK", ct, "{}", T0, NULL);
				if (id == 0 || store_job_done(cs, id, &op, 1,
				    NULL, T0) != STORE_OK)
					_exit(1);
			}
		}
		close(fds[1]);
		(void)!read(fds[0], &c, 1);
		close(fds[0]);
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		if (!test_redis() &&
		    store_check_after_death(home, 5000, err, sizeof(err)) !=
		    STORE_CHECK_CLEAN &&
		    store_recover(home, 60000, err, sizeof(err)) != STORE_OK) {
			tap_diag("recover: %s", err);
			bad++;
			continue;
		}
		if ((s = open_store(home)) == NULL) {
			bad++;
			continue;
		}
		{
			struct census cs = census(s);
			unsigned i;

			for (i = 1;; i++) {
				char b[32], ct[32], *v = NULL;
				int pair, job = 0;
				size_t k;

				snprintf(b, sizeof(b), "b%u-%d", i, round);
				snprintf(ct, sizeof(ct), "c%u-%d", i, round);
				pair = store_ext_id_get(s, "tokK", b, &v) ==
				    STORE_OK;
				free(v);
				for (k = 0; k < cs.n; k++)
					job |= strcmp(cs.contacts[k], ct) == 0;
				if (!pair && !job)
					break;
				total++;
				if (pair && job)
					bad++;
			}
			/* At most the one being added is left. */
			if (cs.pending > 1)
				bad++;
			for (i = 0; i < cs.n; i++)
				store_job_cancel(s, cs.ids[i]);
		}
		store_close(s);
	}
	tap_diag("%d jobs finished or pending across 4 kills", total);
	tap_ok(t, bad == 0 && total > 0, "SIGKILLed while finishing: every job "
	    "is either pending or has its pair, never both");
}

/* A lease renewed by its holder holds the job; no one else can renew it. */
static void
test_renew(struct tap *t, struct store *s)
{
	uint64_t id = add(s, "tokA", "r1", "{}", T0, NULL);
	struct store_job *j = NULL;

	tap_ok(t, id > 0 && claim(s, 50, T0, T0 + 100) == id,
	    "renew: claimed until T0+100");
	tap_ok(t, store_job_renew(s, id, 51, T0 + 9000) == STORE_NOTFOUND,
	    "another process cannot renew the lease");
	tap_ok(t, store_job_renew(s, id, 50, T0 + 5000) == STORE_OK,
	    "the holder renews it to T0+5000");
	tap_ok(t, claim(s, 51, T0 + 200, T0 + 300) == 0 &&
	    claim(s, 51, T0 + 4999, T0 + 6000) == 0,
	    "not claimable before the renewed end");
	tap_ok(t, store_job_claim(s, 51, T0 + 5000, T0 + 6000, &j) ==
	    STORE_OK && j->id == id && j->lease_pid == 51,
	    "claimable once the renewed lease lapsed");
	store_job_free(j);
	tap_ok(t, store_job_renew(s, id, 50, T0 + 9000) == STORE_NOTFOUND,
	    "the old holder cannot renew it any more");
	tap_ok(t, store_job_done(s, id, NULL, 0, NULL, T0) == STORE_OK &&
	    store_job_renew(s, id, 51, T0 + 9000) == STORE_NOTFOUND,
	    "a finished job cannot be renewed");
	(void)census(s);
}

int
main(void)
{
	struct tap t = { 0, 0 };
	char home[256];
	struct store *s;

	if (tap_tmpdir(home, sizeof(home), "test-jobs") < 0)
		return 1;
	if ((s = open_store(home)) == NULL)
		return 1;
	store_install_record(s, "tokA", NULL, 0, NULL);
	store_install_record(s, "tokK", NULL, 0, NULL);
	test_bad_input(&t, s);
	test_order(&t, s);
	test_lease_killed(&t, s, home);
	test_retry_dead_revive(&t, s);
	test_unique_and_steps(&t, s);
	test_lease_on_add(&t, s);
	test_release(&t, s);
	test_renew(&t, s);
	test_integration(&t, s);
	test_detached(&t, s);
	test_delivery_accept(&t, s);
	store_close(s);
	test_kill_finish(&t, home);
	tap_ok(&t, stats_checks > 10 && stats_bad == 0, "the pending and dead "
	    "counts and the oldest pending job the store keeps agree with a "
	    "scan at every census (%u), across kills", stats_checks);
	tap_rmtree(home);
	return tap_done(&t);
}
