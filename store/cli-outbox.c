/*
 * store/cli-outbox.c - botmatic-keys outbox: pending and dead jobs as JSON
 * lines, one job in full, a dead job (or all) sent again, a job dropped.
 * A job names its installation by install id: the token it is stored under
 * is a secret and is never printed.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "store/cli-outbox.h"
#include "store/store.h"

#define PROG "botmatic-keys"

static int __attribute__((format(printf, 1, 2)))
outbox_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": outbox: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

static int64_t
outbox_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds since the epoch as ISO 8601 UTC; new JSON string. */
static json_t *
outbox_time(int64_t ms)
{
	char buf[64];
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		return json_null();
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return json_string(buf);
}

/* A byte string as JSON: a string, or null when it is not UTF-8. */
static json_t *
outbox_text(const char *s)
{
	json_t *j = json_string(s);

	return j != NULL ? j : json_null();
}

/* One job as a JSON object (new); full adds the payload and last answer. */
static json_t *
outbox_job(struct store *s, const struct store_job *j, int full)
{
	struct store_install *in = NULL;
	json_t *o, *payload;

	o = json_object();
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "id", json_integer((json_int_t)j->id));
	json_object_set_new(o, "state", json_string(j->dead ? "dead" :
	    j->lease_pid != 0 ? "running" : "pending"));
	/* "" when the installation is gone (its token with it); "@<owner>"
	 * for a detached job, which belongs to no installation. */
	if (j->integ[0] == '@')
		json_object_set_new(o, "owner", json_string(j->integ + 1));
	if (j->integ[0] == '@')
		json_object_set_new(o, "install_id", json_null());
	else if (j->integ[0] != '\0' && store_install_get(s, j->integ, &in) ==
	    STORE_OK)
		json_object_set_new(o, "install_id", json_string(in->install_id));
	else
		json_object_set_new(o, "install_id", json_null());
	store_install_free(in);
	json_object_set_new(o, "kind", outbox_text(j->kind));
	json_object_set_new(o, "contact", outbox_text(j->contact));
	json_object_set_new(o, "attempts", json_integer(j->attempts));
	json_object_set_new(o, "created", outbox_time(j->created));
	json_object_set_new(o, j->dead ? "died" : "next_at",
	    outbox_time(j->next_at));
	if (j->lease_pid != 0 && !j->dead)
		json_object_set_new(o, "lease_pid", json_integer(j->lease_pid));
	if (full) {
		payload = json_loads(j->payload, 0, NULL);
		json_object_set_new(o, "payload", payload != NULL ? payload :
		    outbox_text(j->payload));
	}
	json_object_set_new(o, "last", outbox_text(j->last));
	return o;
}

static int
outbox_print(json_t *o)
{
	char *text;
	int rc;

	if (o == NULL || (text = json_dumps(o, JSON_COMPACT |
	    JSON_PRESERVE_ORDER)) == NULL) {
		json_decref(o);
		return -1;
	}
	rc = puts(text) < 0 ? -1 : 0;
	free(text);
	json_decref(o);
	return rc;
}

struct outbox_list {
	struct store *s;
	int failed;
};

static int
outbox_list_fn(void *arg, const struct store_job *j)
{
	struct outbox_list *l = arg;

	if (outbox_print(outbox_job(l->s, j, 0)) < 0) {
		l->failed = 1;
		return 1;
	}
	return 0;
}

/* A job id: decimal digits, not 0. */
static int
outbox_id(const char *arg, uint64_t *id)
{
	char *end;
	unsigned long long v;

	if (arg[0] < '0' || arg[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0)
		return -1;
	*id = v;
	return 0;
}

int
store_cli_outbox(struct store *s, int argc, char **argv)
{
	struct outbox_list l = { .s = s };
	struct store_job *j = NULL;
	const char *sub = argc > 0 ? argv[0] : "list";
	uint64_t id = 0, newid = 0;
	size_t n = 0;
	int rc;

	if (strcmp(sub, "list") == 0) {
		if (argc > 1)
			return outbox_fail("list takes no argument");
		rc = store_job_foreach(s, outbox_list_fn, &l);
		if (l.failed)
			return outbox_fail("stdout: %s", strerror(errno));
		goto done;
	}
	if (strcmp(sub, "show") != 0 && strcmp(sub, "retry") != 0 &&
	    strcmp(sub, "cancel") != 0)
		return outbox_fail("unknown subcommand \"%s\" (list, show, retry, "
		    "cancel)", sub);
	if (argc != 2)
		return outbox_fail("%s needs one job id%s", sub,
		    strcmp(sub, "retry") == 0 ? " or --dead" : "");
	if (strcmp(sub, "retry") == 0 && strcmp(argv[1], "--dead") == 0) {
		if ((rc = store_jobs_revive_dead(s, outbox_now_ms(), &n)) ==
		    STORE_OK)
			printf("%zu\n", n);
		goto done;
	}
	if (outbox_id(argv[1], &id) < 0)
		return outbox_fail("\"%s\" is not a job id", argv[1]);
	if (strcmp(sub, "show") == 0) {
		if ((rc = store_job_get(s, id, &j)) == STORE_OK &&
		    outbox_print(outbox_job(s, j, 1)) < 0)
			rc = outbox_fail("out of memory or stdout failed");
		store_job_free(j);
		if (rc == 2)
			return 2;
	} else if (strcmp(sub, "retry") == 0) {
		rc = store_job_revive(s, id, outbox_now_ms(), &newid);
		if (rc == STORE_OK)
			printf("%" PRIu64 "\n", newid);
	} else
		rc = store_job_cancel(s, id);
done:
	if (rc == STORE_NOTFOUND)
		return 1;
	if (rc != STORE_OK)
		return outbox_fail("%s", store_strerror(s));
	if (fflush(stdout) != 0)
		return outbox_fail("stdout: %s", strerror(errno));
	return 0;
}
