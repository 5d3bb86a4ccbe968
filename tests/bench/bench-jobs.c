/*
 * tests/bench/bench-jobs.c - the delivery queue of the store, never run by
 * make check (make bench-jobs && ./bench-jobs [options]): jobs added,
 * then claimed and finished with their pair (what a delivery process does
 * around its calls), and the memory of the process and the size of the
 * environment along the way, so a growth over a million jobs shows.
 *
 *   -n N     jobs (default 1000000)
 *   -w N     jobs waiting at most: added in rounds of N, each drained
 *            before the next (default 100000)
 *   -c N     contacts the jobs spread over (default 10000)
 *   -d DIR   environment (default: a temporary directory, removed)
 *
 * Prints lines like "jobs add: 12345/s".
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/tap.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The resident set of this process, kB (from /proc). */
static long
rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Bytes of the database files (*.db) of home, kB. */
static long
db_kb(const char *home)
{
	char path[4096];
	struct dirent *e;
	struct stat st;
	long kb = 0;
	DIR *d = opendir(home);

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n < 4 || strcmp(e->d_name + n - 3, ".db") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", home, e->d_name);
		if (stat(path, &st) == 0)
			kb += (long)(st.st_size / 1024);
	}
	closedir(d);
	return kb;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
main(int argc, char **argv)
{
	struct store_opts o = { 0 };
	struct store *s = NULL;
	char home[256], err[1024], payload[256], contact[32], b[32], e[32];
	long n = 1000000, wait = 100000, contacts = 10000, done = 0, added = 0;
	double t_add = 0, t_run = 0, t0;
	long rss0, rss_max = 0, db_max = 0;
	int ch, own = 1, rc = 1;

	while ((ch = getopt(argc, argv, "n:w:c:d:")) != -1) {
		switch (ch) {
		case 'n': n = atol(optarg); break;
		case 'w': wait = atol(optarg); break;
		case 'c': contacts = atol(optarg); break;
		case 'd':
			snprintf(home, sizeof(home), "%s", optarg);
			own = 0;
			break;
		default:
			fprintf(stderr, "usage: bench-jobs [-n N] [-w N] [-c N] "
			    "[-d DIR]\n");
			return 2;
		}
	}
	if (n < 1 || wait < 1 || contacts < 1)
		return 2;
	if (own && tap_tmpdir(home, sizeof(home), "bench-jobs") < 0)
		return 2;
	o.home = home;
	if (store_open(&s, &o, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "bench-jobs: %s\n", err);
		goto out;
	}
	if (store_install_record(s, "bench", NULL, 0, NULL) != STORE_OK)
		goto fail;
	rss0 = rss_kb();
	printf("jobs: %ld in rounds of %ld over %ld contacts\n", n, wait,
	    contacts);
	while (done < n) {
		long round = n - added < wait ? n - added : wait, i;
		struct store_job_spec sp = { .integ = "bench",
		    .kind = "contact_updated", .contact = contact,
		    .payload = payload };
		uint64_t id;

		t0 = now_s();
		for (i = 0; i < round; i++, added++) {
			snprintf(contact, sizeof(contact), "%ld",
			    added % contacts);
			snprintf(payload, sizeof(payload), "{\"data\":{\"id\":%ld,"
			    "\"firstname\":\"Bench\",\"age\":%ld}}",
			    added % contacts, added);
			sp.now = wall_ms();
			if (store_job_add(s, &sp, &id, NULL) != STORE_OK)
				goto fail;
		}
		t_add += now_s() - t0;
		t0 = now_s();
		for (;;) {
			struct store_job *j = NULL;
			struct store_op op = { .kind = STORE_OP_IDS_SAVE,
			    .a = "bench", .b = b, .c = e };
			int64_t now = wall_ms();

			rc = store_job_claim(s, 1, now, now + 60000, &j);
			if (rc == STORE_NOTFOUND)
				break;
			if (rc != STORE_OK)
				goto fail;
			snprintf(b, sizeof(b), "b%s", j->contact);
			snprintf(e, sizeof(e), "e%s", j->contact);
			rc = store_job_done(s, j->id, &op, 1, NULL, now);
			store_job_free(j);
			if (rc != STORE_OK)
				goto fail;
			done++;
		}
		t_run += now_s() - t0;
		if (rss_kb() > rss_max)
			rss_max = rss_kb();
		if (db_kb(home) > db_max)
			db_max = db_kb(home);
		printf("jobs after %ld: rss %ld kB, database files %ld kB\n",
		    done, rss_kb(), db_kb(home));
		fflush(stdout);
		if (done != added) {
			fprintf(stderr, "bench-jobs: %ld added, %ld delivered\n",
			    added, done);
			rc = 1;
			goto out;
		}
	}
	printf("jobs add: %.0f/s\n", (double)n / t_add);
	printf("jobs claim+done (with the pair): %.0f/s\n", (double)n / t_run);
	printf("jobs rss: %ld kB at the start, %ld kB at most\n", rss0, rss_max);
	printf("jobs database files: %ld kB at most\n", db_max);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "bench-jobs: %s\n", store_strerror(s));
	rc = 1;
out:
	store_close(s);
	if (own)
		tap_rmtree(home);
	return rc;
}
