/* Unit tests of the configuration table (app/conf.c). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "tests/tap.h"

static int nwarn;

static void
count_warn(const char *msg)
{
	(void)msg;
	nwarn++;
}

/* Loads from a NULL-terminated list; returns app_conf_load's result. */
static int
load(struct app_conf *c, char *err, size_t errlen, const char **env)
{
	return app_conf_load(c, (char *const *)env, err, errlen, count_warn);
}

static int
refused(const char *var, const char *val)
{
	char kv[512], err[512];
	const char *env[] = { "BM_DB_HOME=/tmp/x", kv, NULL };
	struct app_conf c;
	int rc;

	snprintf(kv, sizeof(kv), "%s=%s", var, val);
	rc = load(&c, err, sizeof(err), env);
	if (rc == 0) {
		app_conf_free(&c);
		return 0;
	}
	/* The message names the variable. */
	if (strstr(err, var) != err) {
		tap_diag("message does not start with %s: %s", var, err);
		return 0;
	}
	return 1;
}

/* A refused secret variable: the message names it and the rule, never the
 * value (or any 8 bytes of it). */
static int
refused_quietly(const char *var, const char *val)
{
	char kv[512], err[512], part[9];
	const char *env[] = { "BM_DB_HOME=/tmp/x", kv, NULL };
	struct app_conf c;
	size_t i;

	snprintf(kv, sizeof(kv), "%s=%s", var, val);
	if (load(&c, err, sizeof(err), env) == 0) {
		app_conf_free(&c);
		return 0;
	}
	if (strstr(err, var) != err || strstr(err, "secret") == NULL) {
		tap_diag("message does not name %s and the rule: %s", var, err);
		return 0;
	}
	for (i = 0; i + 8 <= strlen(val); i++) {
		memcpy(part, val + i, 8);
		part[8] = '\0';
		if (strstr(err, part) != NULL) {
			tap_diag("message quotes the value: %s", err);
			return 0;
		}
	}
	return 1;
}

int
main(void)
{
	char err[512], path[] = "/tmp/bm-conf-XXXXXX";
	struct app_conf c;
	struct tap tap = { 0 }, *t = &tap;
	FILE *fp;
	int fd;

	{
		const char *env[] = { "BM_DB_HOME=/tmp/x", "PATH=/bin", NULL };
		tap_ok(t, load(&c, err, sizeof(err), env) == 0, "defaults load");
		tap_ok(t, c.listen == NULL && c.listen_mode == 0660 &&
		    strcmp(c.endpoint, "/") == 0 && c.max_body == 1048576 &&
		    c.auth == APP_AUTH_INSTALLED && c.workers >= 1 &&
		    c.log_level == BM_LOG_INFO && c.mappings == NULL &&
		    c.durability == APP_DURABILITY_WRITE &&
		    strcmp(c.botmatic_base_url, "https://app.botmatic.ai") == 0,
		    "defaults are SPEC's");
		app_conf_free(&c);
	}
	{
		const char *env[] = { NULL };
		tap_ok(t, load(&c, err, sizeof(err), env) < 0 &&
		    strncmp(err, "BM_DB_HOME", 10) == 0,
		    "missing BM_DB_HOME named");
	}
	{
		const char *env[] = { "BM_DB_HOME=/d", "BM_WORKERS=3",
		    "BM_AUTH=module:fixed", "BOTMATIC_BASE_URL=http://h:1/x//",
		    "BM_MOD_ECHO_A=b", "BM_LOG_LEVEL=debug", "BM_TYPO=1", NULL };
		nwarn = 0;
		tap_ok(t, load(&c, err, sizeof(err), env) == 0 && c.workers == 3 &&
		    c.auth == APP_AUTH_MODULE &&
		    strcmp(c.auth_module, "fixed") == 0 &&
		    strcmp(c.botmatic_base_url, "http://h:1/x") == 0 &&
		    c.log_level == BM_LOG_DEBUG,
		    "values parsed, trailing slashes of a URL dropped");
		tap_ok(t, c.mod_env != NULL && c.mod_env[0] != NULL &&
		    strcmp(c.mod_env[0], "BM_MOD_ECHO_A=b") == 0 &&
		    c.mod_env[1] == NULL, "module settings kept");
		tap_ok(t, nwarn == 1, "unknown BM_ variable warned about");
		app_conf_free(&c);
	}
	tap_ok(t, refused("BM_WORKERS", "0"), "BM_WORKERS=0 refused");
	tap_ok(t, refused("BM_WORKERS", "257"), "BM_WORKERS=257 refused");
	tap_ok(t, refused("BM_WORKERS", "2x"), "BM_WORKERS=2x refused");
	tap_ok(t, refused("BM_WORKERS", "-1"), "BM_WORKERS=-1 refused");
	tap_ok(t, refused("BM_WORKERS_MAX", "0"), "BM_WORKERS_MAX=0 refused");
	tap_ok(t, refused("BM_WORKERS_MAX", "257"),
	    "BM_WORKERS_MAX=257 refused");
	tap_ok(t, refused("BM_WORKERS_MAX", "8k"), "BM_WORKERS_MAX=8k refused");
	tap_ok(t, refused("BM_WORKERS_IDLE_TIMEOUT", "0"),
	    "BM_WORKERS_IDLE_TIMEOUT=0 refused");
	tap_ok(t, refused("BM_WORKERS_IDLE_TIMEOUT", "1.5"),
	    "BM_WORKERS_IDLE_TIMEOUT=1.5 refused");
	{
		const char *env[] = { "BM_DB_HOME=/d", "BM_WORKERS=4",
		    "BM_WORKERS_MAX=3", NULL };
		tap_ok(t, load(&c, err, sizeof(err), env) < 0 &&
		    strncmp(err, "BM_WORKERS_MAX: 3 is below BM_WORKERS (4)",
		    41) == 0 && strchr(err, '\n') == NULL,
		    "BM_WORKERS_MAX below BM_WORKERS refused in one line");
	}
	{
		const char *env[] = { "BM_DB_HOME=/d", "BM_WORKERS=4", NULL };
		tap_ok(t, load(&c, err, sizeof(err), env) == 0 &&
		    c.workers_max == 64 && c.workers_idle_timeout == 10,
		    "pool defaults: up to 64, idle 10 s");
		app_conf_free(&c);
	}
	{
		const char *env[] = { "BM_DB_HOME=/d", "BM_WORKERS=100", NULL };
		tap_ok(t, load(&c, err, sizeof(err), env) == 0 &&
		    c.workers_max == 100,
		    "BM_WORKERS above 64: the default ceiling follows it");
		app_conf_free(&c);
	}
	{
		const char *env[] = { "BM_DB_HOME=/d", "BM_WORKERS=4",
		    "BM_WORKERS_MAX=4", "BM_WORKERS_IDLE_TIMEOUT=2", NULL };
		tap_ok(t, load(&c, err, sizeof(err), env) == 0 &&
		    c.workers_max == 4 && c.workers_idle_timeout == 2,
		    "BM_WORKERS_MAX equal to BM_WORKERS: a fixed pool");
		app_conf_free(&c);
	}
	tap_ok(t, refused("BM_MAX_BODY", "99999999999999999999999"),
	    "BM_MAX_BODY overflow refused");
	tap_ok(t, refused("BM_AUTH", "sometimes"), "BM_AUTH=sometimes refused");
	tap_ok(t, refused("BM_AUTH", "module:"), "BM_AUTH=module: refused");
	tap_ok(t, refused("BM_LOG_LEVEL", "loud"), "BM_LOG_LEVEL=loud refused");
	tap_ok(t, refused("BOTMATIC_BASE_URL", "ftp://x"), "ftp URL refused");
	tap_ok(t, refused("BM_ENDPOINT", "hook"), "relative endpoint refused");
	tap_ok(t, refused("BM_LISTEN_MODE", "0999"), "bad mode refused");
	tap_ok(t, refused("BM_DB_DURABILITY", "nosync"),
	    "durability nosync refused (it loses commits)");
	tap_ok(t, refused("BM_EXT_AUTH_HEADER", "novalue"),
	    "header without colon refused");
	tap_ok(t, refused_quietly("BM_EXT_AUTH_HEADER",
	    "Bearer sk_live_0123456789abcdef"),
	    "a malformed BM_EXT_AUTH_HEADER is refused without its value");
	tap_ok(t, refused_quietly("BM_EXT_JWT_BODY",
	    "{\"user\":\"u\",\"password\":\"hunter2-very-secret\""),
	    "a malformed BM_EXT_JWT_BODY is refused without its value");
	tap_ok(t, refused_quietly("BM_SECRET_GRACE", "forever-and-a-day-x"),
	    "a malformed *_SECRET* variable is refused without its value");
	{
		const char *env[] = { "BM_DB_HOME=/d", NULL };
		tap_ok(t, load(&c, err, sizeof(err), env) == 0 &&
		    c.sync_queued == 0 && c.sync_deadline == 2000 &&
		    c.retry_n == 12 && c.retry_ms[0] == 0 &&
		    c.retry_ms[1] == 5000 && c.retry_ms[3] == 120000 &&
		    c.retry_ms[11] == 86400000 && c.delivery_procs == 1 &&
		    c.delivery_concurrency == 64 &&
		    c.breaker_threshold == 5, "SPEC §9 defaults: inline, 2000 "
		    "ms, a schedule of about 3 days");
		app_conf_free(&c);
	}
	{
		const char *env[] = { "BM_DB_HOME=/d", "BM_SYNC_MODE=queued",
		    "BM_RETRY_SCHEDULE=0,250ms,3,2m,1h,1d", NULL };
		tap_ok(t, load(&c, err, sizeof(err), env) == 0 &&
		    c.sync_queued == 1 && c.retry_n == 6 &&
		    c.retry_ms[1] == 250 && c.retry_ms[2] == 3000 &&
		    c.retry_ms[3] == 120000 && c.retry_ms[4] == 3600000 &&
		    c.retry_ms[5] == 86400000, "BM_SYNC_MODE and "
		    "BM_RETRY_SCHEDULE's units (a bare number is seconds)");
		app_conf_free(&c);
	}
	tap_ok(t, refused("BM_SYNC_MODE", "later") &&
	    refused("BM_RETRY_SCHEDULE", "") &&
	    refused("BM_RETRY_SCHEDULE", "1,,2") &&
	    refused("BM_RETRY_SCHEDULE", "1,") &&
	    refused("BM_RETRY_SCHEDULE", "5x") &&
	    refused("BM_RETRY_SCHEDULE", "-1") &&
	    refused("BM_RETRY_SCHEDULE", "8d") &&
	    refused("BM_RETRY_SCHEDULE", "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
	    "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1") &&
	    refused("BM_DELIVERY_PROCS", "65") &&
	    refused("BM_DELIVERY_CONCURRENCY", "0") &&
	    refused("BM_DELIVERY_CONCURRENCY", "1025"),
	    "bad BM_SYNC_MODE, BM_RETRY_SCHEDULE, BM_DELIVERY_PROCS, "
	    "BM_DELIVERY_CONCURRENCY refused");
	{
		const char *env[] = { "BM_DB_HOME=/d", "BM_STORE=redis",
		    "BM_REDIS_URL=redis://10.0.0.5:6380/2",
		    "BM_REDIS_KEYS=js-redis-key-store",
		    "BM_REDIS_TIMEOUT_MS=500", "BM_SECRET_KEY_FILE=/k",
		    NULL };
		const char *nokey[] = { "BM_DB_HOME=/d", "BM_STORE=redis",
		    "BM_REDIS_URL=redis://10.0.0.5:6380/2", NULL };
		int r0 = load(&c, err, sizeof(err), nokey);

		if (r0 == 0)
			app_conf_free(&c);
		tap_ok(t, r0 != 0 && strstr(err, "BM_SECRET_KEY_FILE") == err &&
		    strchr(err, '\n') == NULL,
		    "BM_STORE=redis without BM_SECRET_KEY_FILE refused (%s)",
		    err);
		tap_ok(t, load(&c, err, sizeof(err), env) == 0 &&
		    strcmp(c.store, "redis") == 0 && c.redis_url != NULL &&
		    strcmp(c.redis_url, "redis://10.0.0.5:6380/2") == 0 &&
		    c.redis_keys != NULL && c.redis_timeout_ms == 500,
		    "BM_STORE=redis with BM_REDIS_URL, BM_REDIS_KEYS, "
		    "BM_REDIS_TIMEOUT_MS");
		app_conf_free(&c);
	}
	{
		const char *env[] = { "BM_DB_HOME=/d", "BM_STORE=redis", NULL };
		const char *env2[] = { "BM_DB_HOME=/d",
		    "BM_REDIS_SENTINELS=127.0.0.1:26379", NULL };
		int r1 = load(&c, err, sizeof(err), env);

		if (r1 == 0)
			app_conf_free(&c);
		tap_ok(t, r1 != 0 && strstr(err, "BM_REDIS_URL") == err,
		    "BM_STORE=redis without an address refused (%s)", err);
		r1 = load(&c, err, sizeof(err), env2);
		if (r1 == 0)
			app_conf_free(&c);
		tap_ok(t, r1 != 0 && strstr(err, "BM_REDIS_MASTER") == err,
		    "BM_REDIS_SENTINELS without BM_REDIS_MASTER refused (%s)",
		    err);
	}
	tap_ok(t, refused("BM_STORE", "mysql") &&
	    refused("BM_REDIS_KEYS", "node") &&
	    refused("BM_REDIS_TIMEOUT_MS", "0"),
	    "bad BM_STORE, BM_REDIS_KEYS, BM_REDIS_TIMEOUT_MS refused");
	tap_ok(t, refused("BM_LOG_FORMAT", "xml"), "BM_LOG_FORMAT=xml refused");
	tap_ok(t, refused("BM_STATUS_PATH", "status"),
	    "relative status path refused");
	tap_ok(t, refused("BM_STATUS_PATH", "/"),
	    "status path equal to the endpoint refused");
	{
		const char *env[] = { "BM_DB_HOME=/d", "BM_LOG_FORMAT=json",
		    "BM_STATUS_PATH=/status", NULL };
		tap_ok(t, load(&c, err, sizeof(err), env) == 0 && c.log_json == 1 &&
		    strcmp(c.status_path, "/status") == 0,
		    "BM_LOG_FORMAT=json and BM_STATUS_PATH parsed");
		app_conf_free(&c);
	}

	if ((fd = mkstemp(path)) < 0 || (fp = fdopen(fd, "w")) == NULL)
		return 1;
	fprintf(fp, "# comment\n\nBM_WORKERS=5\nBM_ENDPOINT=\"/hook\"\n"
	    "OTHER=1\n");
	fclose(fp);
	{
		char kv[600];
		const char *env[] = { "BM_DB_HOME=/d", "BM_WORKERS=2", kv, NULL };
		snprintf(kv, sizeof(kv), "BM_ENV_FILE=%s", path);
		int lrc = load(&c, err, sizeof(err), env);
		if (lrc < 0)
			tap_diag("%s", err);
		tap_ok(t, lrc == 0 && c.workers == 5 &&
		    strcmp(c.endpoint, "/hook") == 0,
		    "BM_ENV_FILE overrides the environment");
		app_conf_free(&c);
	}
	fp = fopen(path, "w");
	fprintf(fp, "this is not an assignment\n");
	fclose(fp);
	{
		char kv[600];
		const char *env[] = { "BM_DB_HOME=/d", kv, NULL };
		snprintf(kv, sizeof(kv), "BM_ENV_FILE=%s", path);
		tap_ok(t, load(&c, err, sizeof(err), env) < 0 &&
		    strstr(err, ":1:") != NULL, "bad env file line refused "
		    "with its number");
	}
	unlink(path);
	/* A check that silently stopped running is a failure too. */
	tap_ok(t, t->n == 45, "all 45 checks ran");
	return tap_done(t);
}
