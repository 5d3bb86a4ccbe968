#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/core.h"

enum conf_type {
	CONF_STR,        /* optional string */
	CONF_REQUIRED,   /* required string */
	CONF_UINT,       /* unsigned in [min, max] */
	CONF_ULONG,      /* unsigned long in [min, max] */
	CONF_OCTAL,      /* file mode */
	CONF_WORKERS,    /* unsigned, default the number of CPUs */
	CONF_LEVEL,      /* log level */
	CONF_LOGFMT,     /* log format: text or json */
	CONF_AUTH,       /* auth policy */
	CONF_DURABILITY, /* store durability */
	CONF_URL,        /* http:// or https:// URL */
	CONF_ENDPOINT,   /* absolute path */
	CONF_HEADER,     /* "Name: value" header line */
	CONF_PATH,       /* a URL path template starting with '/' */
	CONF_METHOD,     /* an HTTP method */
	CONF_JSON,       /* JSON text */
	CONF_SYNCMODE,   /* inline or queued */
	CONF_SCHEDULE,   /* a list of delays */
	CONF_ORIGIN,     /* a web origin: scheme://host[:port] */
	CONF_TYPE__MAX
};

struct conf_var {
	const char *name;
	enum conf_type type;
	size_t offset;
	const char *dflt;      /* as the user would write it; NULL = unset */
	unsigned long min, max;
	const char *help;
};

#define OFF(f) offsetof(struct app_conf, f)

/* Every variable the server reads. */
static const struct conf_var conf_vars[] = {
	{ "BM_LISTEN", CONF_STR, OFF(listen), NULL, 0, 0,
	  "FastCGI socket: a unix socket path or host:port; unset = the "
	  "listening socket inherited on fd 0 (spawn-fcgi, mod_fcgid) or "
	  "from systemd (LISTEN_FDS)" },
	{ "BM_LISTEN_MODE", CONF_OCTAL, OFF(listen_mode), "0660", 0, 0777,
	  "permissions of the unix socket BM_LISTEN creates" },
	{ "BM_BACKLOG", CONF_UINT, OFF(backlog), "1024", 1, 65535,
	  "listen(2) backlog of the FastCGI socket" },
	{ "BM_WORKERS", CONF_WORKERS, OFF(workers), NULL, 1, 256,
	  "pre-forked responders, the fewest the pool keeps (default: the "
	  "number of CPUs)" },
	{ "BM_WORKERS_MAX", CONF_UINT, OFF(workers_max), NULL, 1, 256,
	  "most responders the master runs when every one is busy and "
	  "requests wait on slow calls (1 to 256, at least BM_WORKERS)" },
	{ "BM_WORKERS_IDLE_TIMEOUT", CONF_UINT, OFF(workers_idle_timeout),
	  "10", 1, 86400, "seconds a responder above BM_WORKERS may stay idle "
	  "before it is retired" },
	{ "BM_ENDPOINT", CONF_ENDPOINT, OFF(endpoint), "/", 0, 0,
	  "path Botmatic posts to" },
	{ "BM_MAX_BODY", CONF_ULONG, OFF(max_body), "1048576", 2, 1UL << 30,
	  "largest request body, bytes" },
	{ "BM_AUTH", CONF_AUTH, OFF(auth), "installed", 0, 0,
	  "auth policy: installed, validate, any or module:<name>" },
	{ "BM_DB_HOME", CONF_REQUIRED, OFF(db_home), NULL, 0, 0,
	  "Berkeley DB environment directory (required; created 0700)" },
	{ "BM_DB_DURABILITY", CONF_DURABILITY, OFF(durability), "write", 0, 0,
	  "write (survives any process crash) or sync (also power loss)" },
	{ "BM_STORE", CONF_STR, OFF(store), "bdb", 0, 0,
	  "bdb (Berkeley DB in BM_DB_HOME) or redis (BM_REDIS_URL or "
	  "BM_REDIS_SENTINELS)" },
	{ "BM_REDIS_URL", CONF_STR, OFF(redis_url), NULL, 0, 0,
	  "redis://host:port[/db] or unix:/path, for BM_STORE=redis" },
	{ "BM_REDIS_SENTINELS", CONF_STR, OFF(redis_sentinels), NULL, 0, 0,
	  "Sentinel addresses host:port,... (instead of BM_REDIS_URL)" },
	{ "BM_REDIS_MASTER", CONF_STR, OFF(redis_master), NULL, 0, 0,
	  "the master's name for BM_REDIS_SENTINELS" },
	{ "BM_REDIS_KEYS", CONF_STR, OFF(redis_keys), NULL, 0, 0,
	  "js-redis-key-store: id pairs under that Node library's keys" },
	{ "BM_REDIS_TIMEOUT_MS", CONF_UINT, OFF(redis_timeout_ms), "2000", 1,
	  600000, "timeout of the connect and of each Redis command, ms" },
	{ "BM_MAPPINGS", CONF_STR, OFF(mappings), NULL, 0, 0,
	  "mappings file; unset = contact sync off" },
	{ "BM_MODULES", CONF_STR, OFF(modules), NULL, 0, 0,
	  "colon-separated list of handler module .so paths" },
	{ "BM_LOG_LEVEL", CONF_LEVEL, OFF(log_level), "info", 0, 0,
	  "error, warn, info or debug" },
	{ "BM_LOG_FORMAT", CONF_LOGFMT, OFF(log_json), "text", 0, 0,
	  "text (one line an event) or json (one JSON object a line)" },
	{ "BM_STATUS_PATH", CONF_ENDPOINT, OFF(status_path), NULL, 0, 0,
	  "path answering GET with the server's status (JSON, or Prometheus "
	  "text with ?format=prometheus); unset = off" },
	{ "BOTMATIC_BASE_URL", CONF_URL, OFF(botmatic_base_url),
	  "https://app.botmatic.ai", 0, 0, "Botmatic API base URL" },
	{ "BM_EXT_BASE_URL", CONF_URL, OFF(ext_base_url), NULL, 0, 0,
	  "the external service's API base (generic REST consumer)" },
	{ "BM_EXT_AUTH_HEADER", CONF_HEADER, OFF(ext_auth_header), NULL, 0, 0,
	  "header line sent to the external service" },
	{ "BM_HTTP_CONNECT_TIMEOUT", CONF_ULONG, OFF(http_connect_timeout),
	  "3000", 1, 600000, "outbound connect timeout, milliseconds" },
	{ "BM_HTTP_TIMEOUT", CONF_ULONG, OFF(http_timeout), "10000", 1, 600000,
	  "outbound request total timeout, milliseconds" },
	{ "BM_SHUTDOWN_TIMEOUT", CONF_UINT, OFF(shutdown_timeout), "30", 1,
	  3600, "seconds a stopping responder may take before SIGKILL" },
	{ "BM_AUTH_CACHE_TTL", CONF_UINT, OFF(auth_cache_ttl), "60", 0, 86400,
	  "seconds a token refused by Botmatic stays refused (BM_AUTH=validate)" },
	{ "BM_DB_WATCHDOG", CONF_UINT, OFF(db_watchdog), "10", 1, 3600,
	  "seconds a keystore call may last before the master recovers the "
	  "environment" },
	{ "BM_EXT_CONSUMER", CONF_STR, OFF(ext_consumer), "rest", 0, 0,
	  "external consumer: rest (the generic REST consumer) or "
	  "module:<name>" },
	{ "BM_EXT_ID_FIELD", CONF_STR, OFF(ext_id_field), NULL, 0, 0,
	  "member holding the id in the external service's answers (default: "
	  "the mapping's ext id key, then \"id\")" },
	{ "BM_EXT_LIST_FIELD", CONF_STR, OFF(ext_list_field), NULL, 0, 0,
	  "member holding the contacts in a page answer (unset: the answer "
	  "is an array)" },
	{ "BM_EXT_PATH_CREATE", CONF_PATH, OFF(ext_path[APP_EXT_CREATE]),
	  "/contacts", 0, 0, "path to create a contact" },
	{ "BM_EXT_PATH_GET", CONF_PATH, OFF(ext_path[APP_EXT_GET]),
	  "/contacts/{id}", 0, 0, "path to get a contact" },
	{ "BM_EXT_PATH_SEARCH", CONF_PATH, OFF(ext_path[APP_EXT_SEARCH]),
	  "/contacts?email={email}", 0, 0, "path to find a contact by email" },
	{ "BM_EXT_PATH_LIST", CONF_PATH, OFF(ext_path[APP_EXT_LIST]),
	  "/contacts?page={page}&limit={limit}", 0, 0,
	  "path to list a page of contacts (pages from 1)" },
	{ "BM_EXT_PATH_UPDATE", CONF_PATH, OFF(ext_path[APP_EXT_UPDATE]),
	  "/contacts/{id}", 0, 0, "path to update a contact" },
	{ "BM_EXT_PATH_DELETE", CONF_PATH, OFF(ext_path[APP_EXT_DELETE]),
	  "/contacts/{id}", 0, 0, "path to delete a contact" },
	{ "BM_EXT_HOOKS_PATH_LIST", CONF_PATH,
	  OFF(ext_path[APP_EXT_HOOKS_LIST]), "/webhooks", 0, 0,
	  "path listing the webhooks registered at the external service "
	  "(GET, an array of {id,topic,address})" },
	{ "BM_EXT_HOOKS_PATH_CREATE", CONF_PATH,
	  OFF(ext_path[APP_EXT_HOOK_CREATE]), "/webhooks", 0, 0,
	  "path creating a webhook (POST {topic,address}, answer holds id)" },
	{ "BM_EXT_HOOKS_PATH_DELETE", CONF_PATH,
	  OFF(ext_path[APP_EXT_HOOK_DELETE]), "/webhooks/{id}", 0, 0,
	  "path deleting a webhook (DELETE)" },
	{ "BM_EXT_HOOKS_METHOD_LIST", CONF_METHOD,
	  OFF(ext_method[APP_EXT_HOOKS_LIST]), "GET", 0, 0,
	  "method to list webhooks" },
	{ "BM_EXT_HOOKS_METHOD_CREATE", CONF_METHOD,
	  OFF(ext_method[APP_EXT_HOOK_CREATE]), "POST", 0, 0,
	  "method to create a webhook" },
	{ "BM_EXT_HOOKS_METHOD_DELETE", CONF_METHOD,
	  OFF(ext_method[APP_EXT_HOOK_DELETE]), "DELETE", 0, 0,
	  "method to delete a webhook" },
	{ "BM_EXT_METHOD_CREATE", CONF_METHOD,
	  OFF(ext_method[APP_EXT_CREATE]), "POST", 0, 0, "method to create" },
	{ "BM_EXT_METHOD_GET", CONF_METHOD, OFF(ext_method[APP_EXT_GET]),
	  "GET", 0, 0, "method to get" },
	{ "BM_EXT_METHOD_SEARCH", CONF_METHOD,
	  OFF(ext_method[APP_EXT_SEARCH]), "GET", 0, 0, "method to search" },
	{ "BM_EXT_METHOD_LIST", CONF_METHOD, OFF(ext_method[APP_EXT_LIST]),
	  "GET", 0, 0, "method to list" },
	{ "BM_EXT_METHOD_UPDATE", CONF_METHOD,
	  OFF(ext_method[APP_EXT_UPDATE]), "PUT", 0, 0, "method to update" },
	{ "BM_EXT_METHOD_DELETE", CONF_METHOD,
	  OFF(ext_method[APP_EXT_DELETE]), "DELETE", 0, 0, "method to delete" },
	{ "BM_EXT_JWT_URL", CONF_URL, OFF(ext_jwt_url), NULL, 0, 0,
	  "URL a JSON Web Token for the external service is posted for" },
	{ "BM_EXT_JWT_BODY", CONF_JSON, OFF(ext_jwt_body), "{}", 0, 0,
	  "JSON credentials posted to BM_EXT_JWT_URL" },
	{ "BM_EXT_JWT_FIELD", CONF_STR, OFF(ext_jwt_field), "token", 0, 0,
	  "member of the JWT answer holding the token" },
	{ "BM_IMPORT_ON_INSTALL", CONF_UINT, OFF(import_on_install), "0", 0, 1,
	  "1: import every external contact after an install" },
	{ "BM_IMPORT_PAGE", CONF_UINT, OFF(import_page), "30", 1, 1000,
	  "contacts per page when importing" },
	{ "BM_SECRET_KEY_FILE", CONF_STR, OFF(secret_key_file), NULL, 0, 0,
	  "file of the 32-byte key encrypting tokens at rest (unset: a key "
	  "the store creates in BM_DB_HOME, mode 0600)" },
	{ "BM_SECRET_GRACE", CONF_UINT, OFF(secret_grace), "86400", 0,
	  30 * 86400, "seconds a rotated webhook secret stays valid beside "
	  "the new one" },
	{ "BM_SYNC_MODE", CONF_SYNCMODE, OFF(sync_queued), "inline", 0, 0,
	  "inline (a contact event waits for the external service up to "
	  "BM_SYNC_DEADLINE_MS, then is queued) or queued (answered once "
	  "durably queued)" },
	{ "BM_SYNC_DEADLINE_MS", CONF_ULONG, OFF(sync_deadline), "2000", 1,
	  600000, "how long an inline contact event may wait before it is "
	  "queued instead, milliseconds" },
	{ "BM_RETRY_SCHEDULE", CONF_SCHEDULE, OFF(retry_ms),
	  "0,5s,30s,2m,10m,30m,1h,2h,6h,12h,24h,24h", 0, 0,
	  "delays before each delivery attempt of a queued job (ms, s, m, h "
	  "or d; a bare number is seconds), +-20% jitter; after the last the "
	  "job is dead" },
	{ "BM_DELIVERY_PROCS", CONF_UINT, OFF(delivery_procs), "1", 0, 64,
	  "delivery processes draining the queue (0: jobs wait)" },
	{ "BM_DELIVERY_CONCURRENCY", CONF_UINT, OFF(delivery_concurrency),
	  "64", 1, 1024, "jobs each delivery process runs at once, their "
	  "calls in flight together (generic REST consumer)" },
	{ "BM_BREAKER_THRESHOLD", CONF_UINT, OFF(breaker_threshold), "5", 1,
	  100000, "consecutive transient failures of a service after which "
	  "contact events are queued at once until a delivery succeeds" },
	{ "BM_EVENTS", CONF_STR, OFF(events), NULL, 0, 0,
	  "integration events file (SPEC §11); unset = no events route" },
	{ "BM_SETTINGS", CONF_STR, OFF(settings), NULL, 0, 0,
	  "settings form schema file (JSON Schema); unset = no settings page" },
	{ "BM_BOTMATIC_ORIGIN", CONF_ORIGIN, OFF(botmatic_origin),
	  "https://app.botmatic.ai", 0, 0,
	  "the origin allowed to frame the settings page and get its messages" },
	{ "BM_PUBLIC_URL", CONF_STR, OFF(public_url), NULL, 0, 0,
	  "this server's public base URL (OAuth links and callbacks); "
	  "required when a BM_OAUTH_<SVC>_ service is configured" },
	{ "BM_ENV_FILE", CONF_STR, OFF(env_file), NULL, 0, 0,
	  "file of KEY=VALUE lines overriding the environment, re-read on "
	  "SIGHUP" },
};

#define CONF_NVARS (sizeof(conf_vars) / sizeof(conf_vars[0]))

static const char *const conf_auth_names[APP_AUTH__MAX] = {
	"installed", "validate", "any", "module"
};

const char *
app_conf_auth_name(enum app_auth_policy p)
{
	return p < APP_AUTH__MAX ? conf_auth_names[p] : "?";
}

/* A name=value pair found in the environment or the env file. */
struct conf_kv {
	char *name;
	char *value;
};

struct conf_src {
	struct conf_kv *kv;
	size_t n, cap;
};

static int
conf_src_set(struct conf_src *src, const char *name, size_t namelen,
    const char *value, size_t valuelen)
{
	struct conf_kv *kv;
	char *n = NULL, *v = NULL;
	size_t i;

	if ((n = strndup(name, namelen)) == NULL ||
	    (v = strndup(value, valuelen)) == NULL)
		goto fail;
	for (i = 0; i < src->n; i++)
		if (strcmp(src->kv[i].name, n) == 0) {
			free(src->kv[i].value);
			free(n);
			src->kv[i].value = v;
			return 0;
		}
	if (src->n == src->cap) {
		size_t cap = src->cap ? src->cap * 2 : 32;
		if ((kv = realloc(src->kv, cap * sizeof(*kv))) == NULL)
			goto fail;
		src->kv = kv;
		src->cap = cap;
	}
	src->kv[src->n].name = n;
	src->kv[src->n].value = v;
	src->n++;
	return 0;
fail:
	free(n);
	free(v);
	return -1;
}

static void
conf_src_free(struct conf_src *src)
{
	size_t i;

	for (i = 0; i < src->n; i++) {
		free(src->kv[i].name);
		free(src->kv[i].value);
	}
	free(src->kv);
}

static const char *
conf_src_get(const struct conf_src *src, const char *name)
{
	size_t i;

	for (i = 0; i < src->n; i++)
		if (strcmp(src->kv[i].name, name) == 0)
			return src->kv[i].value;
	return NULL;
}

static int
conf_is_ours(const char *name, size_t len)
{
	return (len > 3 && strncmp(name, "BM_", 3) == 0) ||
	    (len == 17 && strncmp(name, "BOTMATIC_BASE_URL", 17) == 0);
}

/*
 * Reads KEY=VALUE lines (systemd EnvironmentFile syntax, simplified: blank
 * lines and '#' comments skipped, one pair of surrounding quotes removed).
 */
static int
conf_read_file(struct conf_src *src, const char *path, char *err,
    size_t errlen)
{
	char line[8192];
	FILE *fp = NULL;
	unsigned lineno = 0;
	int rc = -1;

	if ((fp = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "BM_ENV_FILE: %s: %s", path,
		    strerror(errno));
		goto out;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *p = line, *eq, *end, *val;
		size_t vlen;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			snprintf(err, errlen, "BM_ENV_FILE: %s:%u: line too long",
			    path, lineno);
			goto out;
		}
		p += strspn(p, " \t");
		end = p + strcspn(p, "\r\n");
		*end = '\0';
		if (*p == '\0' || *p == '#')
			continue;
		if ((eq = strchr(p, '=')) == NULL || eq == p ||
		    strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
		    (size_t)(eq - p)) {
			snprintf(err, errlen, "BM_ENV_FILE: %s:%u: expected NAME=VALUE",
			    path, lineno);
			goto out;
		}
		if (!conf_is_ours(p, (size_t)(eq - p)))
			continue;
		val = eq + 1;
		vlen = strlen(val);
		if (vlen >= 2 && (val[0] == '"' || val[0] == '\'') &&
		    val[vlen - 1] == val[0]) {
			val++;
			vlen -= 2;
		}
		if (conf_src_set(src, p, (size_t)(eq - p), val, vlen) < 0) {
			snprintf(err, errlen, "BM_ENV_FILE: out of memory");
			goto out;
		}
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "BM_ENV_FILE: %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fp != NULL)
		fclose(fp);
	return rc;
}

/* Strict unsigned parse: digits only, no sign, no overflow. */
static int
conf_parse_ulong(const char *s, int base, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (*s == '\0' || strspn(s, base == 8 ? "01234567" : "0123456789") !=
	    strlen(s))
		return -1;
	errno = 0;
	v = strtoul(s, &end, base);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/*
 * Whether a variable holds a secret: its value is never quoted in an error,
 * which goes to the journal.  By name, so a variable added later is covered
 * when it is named like one.
 */
static int
conf_is_secret(const char *name)
{
	return strstr(name, "_SECRET") != NULL ||
	    strstr(name, "_TOKEN") != NULL ||
	    strstr(name, "_PASSWORD") != NULL ||
	    strstr(name, "_KEY") != NULL ||
	    strstr(name, "_AUTH_HEADER") != NULL ||
	    strstr(name, "_JWT_BODY") != NULL;
}

/*
 * "0,5s,30s,2m" into conf->retry_ms: 1 to APP_RETRY_MAX delays, each a
 * whole number with a unit (ms, s, m, h, d; none: seconds), at most 7 days.
 * Returns 0, or -1.
 */
static int
conf_schedule(struct app_conf *conf, const char *val)
{
	static const struct { const char *unit; int64_t ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "d", 86400000 }, { "", 1000 },
	};
	const char *p = val;
	unsigned n = 0;
	size_t i;

	while (*p != '\0') {
		char *end;
		unsigned long v;

		if (n == APP_RETRY_MAX || *p < '0' || *p > '9')
			return -1;
		errno = 0;
		v = strtoul(p, &end, 10);
		if (errno != 0 || v > 7UL * 86400000)
			return -1;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t ul = strlen(units[i].unit);
			if (strncmp(end, units[i].unit, ul) == 0 &&
			    (end[ul] == ',' || end[ul] == '\0'))
				break;
		}
		if (i == sizeof(units) / sizeof(units[0]) ||
		    (int64_t)v * units[i].ms > (int64_t)7 * 86400000)
			return -1;
		conf->retry_ms[n++] = (int64_t)v * units[i].ms;
		p = end + strlen(units[i].unit);
		if (*p == ',' && *++p == '\0')
			return -1;
	}
	if (n == 0)
		return -1;
	conf->retry_n = n;
	return 0;
}

static int
conf_set(struct app_conf *conf, const struct conf_var *var, const char *val,
    char *err, size_t errlen)
{
	char *base = (char *)conf + var->offset;
	unsigned long ul;
	size_t len;

	switch (var->type) {
	case CONF_STR:
	case CONF_REQUIRED:
		if (*val == '\0')
			goto bad_empty;
		if ((*(char **)base = strdup(val)) == NULL)
			goto nomem;
		return 0;
	case CONF_HEADER: {
		const char *colon = strchr(val, ':');
		if (strpbrk(val, "\r\n") != NULL || colon == NULL ||
		    colon == val)
			goto bad;
		if ((*(char **)base = strdup(val)) == NULL)
			goto nomem;
		return 0;
	}
	case CONF_PATH:
		if (val[0] != '/' || strpbrk(val, " \t\r\n#") != NULL)
			goto bad;
		if ((*(char **)base = strdup(val)) == NULL)
			goto nomem;
		return 0;
	case CONF_METHOD:
		if (strspn(val, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(val) ||
		    strlen(val) > 16)
			goto bad;
		if ((*(char **)base = strdup(val)) == NULL)
			goto nomem;
		return 0;
	case CONF_JSON: {
		json_t *j = json_loads(val, JSON_REJECT_DUPLICATES, NULL);
		int isobj = json_is_object(j);
		json_decref(j);
		if (!isobj)
			goto bad;
		if ((*(char **)base = strdup(val)) == NULL)
			goto nomem;
		return 0;
	}
	case CONF_URL:
		if (strncmp(val, "http://", 7) != 0 &&
		    strncmp(val, "https://", 8) != 0)
			goto bad;
		if (strpbrk(val, " \t\r\n") != NULL)
			goto bad;
		if ((*(char **)base = strdup(val)) == NULL)
			goto nomem;
		/* Paths are appended with their own leading '/'. */
		len = strlen(*(char **)base);
		while (len > 8 && (*(char **)base)[len - 1] == '/')
			(*(char **)base)[--len] = '\0';
		return 0;
	case CONF_ORIGIN:
		/* It goes into a header (CSP) and a page: a strict shape. */
		if (strncmp(val, "http://", 7) == 0)
			len = 7;
		else if (strncmp(val, "https://", 8) == 0)
			len = 8;
		else
			goto bad;
		if (val[len] == '\0' || strlen(val) > 253 + len + 6 ||
		    strspn(val + len, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") !=
		    strlen(val + len))
			goto bad;
		if ((*(char **)base = strdup(val)) == NULL)
			goto nomem;
		return 0;
	case CONF_ENDPOINT:
		if (val[0] != '/' || strpbrk(val, "?# \t\r\n") != NULL ||
		    strstr(val, "//") != NULL || strstr(val, "/../") != NULL)
			goto bad;
		if ((*(char **)base = strdup(val)) == NULL)
			goto nomem;
		return 0;
	case CONF_UINT:
	case CONF_WORKERS:
		if (conf_parse_ulong(val, 10, &ul) < 0 || ul < var->min ||
		    ul > var->max)
			goto bad_range;
		*(unsigned *)base = (unsigned)ul;
		return 0;
	case CONF_ULONG:
		if (conf_parse_ulong(val, 10, &ul) < 0 || ul < var->min ||
		    ul > var->max)
			goto bad_range;
		*(unsigned long *)base = ul;
		return 0;
	case CONF_OCTAL:
		if (conf_parse_ulong(val, 8, &ul) < 0 || ul > var->max)
			goto bad;
		*(unsigned *)base = (unsigned)ul;
		return 0;
	case CONF_LEVEL:
		if (app_log_level_parse(val, (enum bm_log_level *)base) < 0)
			goto bad;
		return 0;
	case CONF_LOGFMT:
		if (strcmp(val, "text") == 0)
			*(int *)base = 0;
		else if (strcmp(val, "json") == 0)
			*(int *)base = 1;
		else
			goto bad;
		return 0;
	case CONF_DURABILITY:
		if (strcmp(val, "write") == 0)
			*(enum app_durability *)base = APP_DURABILITY_WRITE;
		else if (strcmp(val, "sync") == 0)
			*(enum app_durability *)base = APP_DURABILITY_SYNC;
		else
			goto bad;
		return 0;
	case CONF_AUTH:
		if (strncmp(val, "module:", 7) == 0) {
			if (val[7] == '\0' || strspn(val + 7,
			    "abcdefghijklmnopqrstuvwxyz0123456789_") !=
			    strlen(val + 7))
				goto bad;
			if ((conf->auth_module = strdup(val + 7)) == NULL)
				goto nomem;
			conf->auth = APP_AUTH_MODULE;
			return 0;
		}
		for (ul = 0; ul < APP_AUTH_MODULE; ul++)
			if (strcmp(val, conf_auth_names[ul]) == 0) {
				conf->auth = (enum app_auth_policy)ul;
				return 0;
			}
		goto bad;
	case CONF_SYNCMODE:
		if (strcmp(val, "inline") == 0)
			conf->sync_queued = 0;
		else if (strcmp(val, "queued") == 0)
			conf->sync_queued = 1;
		else
			goto bad;
		return 0;
	case CONF_SCHEDULE:
		if (conf_schedule(conf, val) < 0)
			goto bad;
		return 0;
	case CONF_TYPE__MAX:
		break;
	}
bad:
	if (conf_is_secret(var->name))
		snprintf(err, errlen, "%s: invalid value, not shown: it is a "
		    "secret (%s)", var->name, var->help);
	else
		snprintf(err, errlen, "%s: invalid value \"%.200s\" (%s)",
		    var->name, val, var->help);
	return -1;
bad_range:
	if (conf_is_secret(var->name))
		snprintf(err, errlen, "%s: invalid value, not shown: it is a "
		    "secret (expected a whole number from %lu to %lu)",
		    var->name, var->min, var->max);
	else
		snprintf(err, errlen, "%s: invalid value \"%.200s\": expected "
		    "a whole number from %lu to %lu", var->name, val, var->min,
		    var->max);
	return -1;
bad_empty:
	snprintf(err, errlen, "%s: empty value", var->name);
	return -1;
nomem:
	snprintf(err, errlen, "%s: out of memory", var->name);
	return -1;
}

static unsigned
conf_ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > 256 ? 256 : (unsigned)n;
}

static int
conf_known(const char *name)
{
	size_t i;

	if (strncmp(name, "BM_MOD_", 7) == 0 ||
	    strncmp(name, "BM_OAUTH_", 9) == 0 ||
	    strncmp(name, "BM_TEST_", 8) == 0)
		return 1;
	for (i = 0; i < CONF_NVARS; i++)
		if (strcmp(conf_vars[i].name, name) == 0)
			return 1;
	return 0;
}

/*
 * An OAuth URL: https, or http to a loopback host only (a token never
 * crosses a network in clear; the tests' stand-in listens on 127.0.0.1).
 */
static int
conf_oauth_url_ok(const char *u)
{
	static const char *const loop[] = { "http://127.0.0.1:",
	    "http://127.0.0.1/", "http://localhost:", "http://localhost/",
	    "http://[::1]:", "http://[::1]/" };
	size_t i;

	if (strncmp(u, "https://", 8) == 0 && u[8] != '\0' && u[8] != '/')
		return strpbrk(u, " \t\r\n#") == NULL;
	for (i = 0; i < sizeof(loop) / sizeof(loop[0]); i++)
		if (strncmp(u, loop[i], strlen(loop[i])) == 0)
			return strpbrk(u, " \t\r\n#") == NULL;
	return 0;
}

/* The first line of a client secret file, or NULL (err filled). */
static char *
conf_oauth_secret_file(const char *var, const char *path, char *err,
    size_t errlen)
{
	char line[4096], *r = NULL;
	FILE *fp;

	if ((fp = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %.200s: %s", var, path,
		    strerror(errno));
		return NULL;
	}
	if (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] != '\0')
			r = strdup(line);
	}
	explicit_bzero(line, sizeof(line));
	fclose(fp);
	if (r == NULL)
		snprintf(err, errlen, "%s: %.200s: empty", var, path);
	return r;
}

/*
 * BM_OAUTH_<SVC>_*: every <SVC> with a _CLIENT_ID is a service, checked
 * whole here; a value of a secret variable is never quoted.
 */
static int
conf_oauth_load(struct app_conf *conf, const struct conf_src *src, char *err,
    size_t errlen)
{
	static const char *const parts[] = { "CLIENT_ID", "CLIENT_SECRET",
	    "CLIENT_SECRET_FILE", "AUTHORIZE_URL", "TOKEN_URL", "SCOPES" };
	char var[128], svc[64];
	const char *v[6];
	size_t i, j, k, n = 0, len;

	for (i = 0; i < src->n; i++) {
		const char *nm = src->kv[i].name;

		if (strncmp(nm, "BM_OAUTH_", 9) != 0)
			continue;
		for (j = 0; j < sizeof(parts) / sizeof(parts[0]); j++) {
			len = strlen(nm) - strlen(parts[j]);
			if (strlen(nm) > 10 + strlen(parts[j]) &&
			    strcmp(nm + len, parts[j]) == 0 &&
			    nm[len - 1] == '_')
				break;
		}
		if (j == sizeof(parts) / sizeof(parts[0])) {
			snprintf(err, errlen, "%.100s: unknown (BM_OAUTH_<SVC>_"
			    "CLIENT_ID, _CLIENT_SECRET, _CLIENT_SECRET_FILE, "
			    "_AUTHORIZE_URL, _TOKEN_URL, _SCOPES)",
			    nm);
			return -1;
		}
		if (j == 0)
			n++;
	}
	if (n == 0)
		return 0;
	if ((conf->oauth = calloc(n, sizeof(*conf->oauth))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < src->n; i++) {
		const char *nm = src->kv[i].name;
		struct app_oauth_svc *o;

		len = strlen(nm);
		if (strncmp(nm, "BM_OAUTH_", 9) != 0 || len <= 19 ||
		    strcmp(nm + len - 10, "_CLIENT_ID") != 0)
			continue;
		len -= 19;
		if (len == 0 || len >= 33) {
			snprintf(err, errlen, "%.100s: the service name is 1 "
			    "to 32 characters", nm);
			return -1;
		}
		for (k = 0; k < len; k++) {
			char c = nm[9 + k];
			if (!((c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '_')) {
				snprintf(err, errlen, "%.100s: the service "
				    "name is [A-Z0-9_]", nm);
				return -1;
			}
			svc[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		svc[len] = '\0';
		for (j = 0; j < sizeof(parts) / sizeof(parts[0]); j++) {
			snprintf(var, sizeof(var), "BM_OAUTH_%.*s_%s", (int)len,
			    nm + 9, parts[j]);
			v[j] = conf_src_get(src, var);
		}
		o = &conf->oauth[conf->n_oauth++];
		if ((o->name = strdup(svc)) == NULL ||
		    (o->client_id = strdup(v[0])) == NULL ||
		    (o->scopes = strdup(v[5] != NULL ? v[5] : "")) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		if (v[0][0] == '\0' || strpbrk(v[0], "\r\n\t &#") != NULL) {
			snprintf(err, errlen, "BM_OAUTH_%s_CLIENT_ID: empty or "
			    "holding control characters", svc);
			return -1;
		}
		for (j = 3; j <= 4; j++) {
			snprintf(var, sizeof(var), "BM_OAUTH_%.*s_%s", (int)len,
			    nm + 9, parts[j]);
			if (v[j] == NULL || !conf_oauth_url_ok(v[j])) {
				snprintf(err, errlen, "%s: required, an https "
				    "URL (http only to 127.0.0.1, ::1 or "
				    "localhost)", var);
				return -1;
			}
		}
		if ((o->authorize_url = strdup(v[3])) == NULL ||
		    (o->token_url = strdup(v[4])) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		snprintf(var, sizeof(var), "BM_OAUTH_%.*s_CLIENT_SECRET",
		    (int)len, nm + 9);
		if (v[1] != NULL && v[2] != NULL) {
			snprintf(err, errlen, "%s and %s_FILE: give one", var,
			    var);
			return -1;
		}
		if (v[1] != NULL)
			o->client_secret = strdup(v[1]);
		else if (v[2] != NULL) {
			strcat(var, "_FILE");
			if ((o->client_secret = conf_oauth_secret_file(var,
			    v[2], err, errlen)) == NULL)
				return -1;
		} else {
			snprintf(err, errlen, "%s or %s_FILE: required", var,
			    var);
			return -1;
		}
		if (o->client_secret == NULL || o->client_secret[0] == '\0') {
			snprintf(err, errlen, "%s: empty", var);
			return -1;
		}
	}
	if (conf->public_url == NULL || !conf_oauth_url_ok(conf->public_url)) {
		snprintf(err, errlen, "BM_PUBLIC_URL: required with a "
		    "BM_OAUTH_ service, an https URL (http only to a loopback "
		    "host)");
		return -1;
	}
	len = strlen(conf->public_url);
	while (len > 0 && conf->public_url[len - 1] == '/')
		conf->public_url[--len] = '\0';
	if (conf->secret_key_file == NULL) {
		snprintf(err, errlen, "BM_SECRET_KEY_FILE: required with a "
		    "BM_OAUTH_ service (its tokens are sealed with it)");
		return -1;
	}
	return 0;
}

int
app_conf_load(struct app_conf *conf, char *const *envp, char *err,
    size_t errlen, void (*warn)(const char *msg))
{
	struct conf_src src = { NULL, 0, 0 };
	const char *envfile;
	size_t i, nmod = 0;
	int rc = -1;

	memset(conf, 0, sizeof(*conf));
	for (; envp != NULL && *envp != NULL; envp++) {
		const char *eq = strchr(*envp, '=');
		if (eq == NULL || !conf_is_ours(*envp, (size_t)(eq - *envp)))
			continue;
		if (conf_src_set(&src, *envp, (size_t)(eq - *envp), eq + 1,
		    strlen(eq + 1)) < 0) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
	}
	if ((envfile = conf_src_get(&src, "BM_ENV_FILE")) != NULL &&
	    *envfile != '\0') {
		char *path = strdup(envfile);
		int frc;

		if (path == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		frc = conf_read_file(&src, path, err, errlen);
		free(path);
		if (frc < 0)
			goto out;
	}

	for (i = 0; i < CONF_NVARS; i++) {
		const struct conf_var *var = &conf_vars[i];
		const char *val = conf_src_get(&src, var->name);

		if (val == NULL)
			val = var->dflt;
		if (val == NULL) {
			if (var->type == CONF_REQUIRED) {
				snprintf(err, errlen, "%s: required (%s)",
				    var->name, var->help);
				goto out;
			}
			if (var->type == CONF_WORKERS)
				*(unsigned *)((char *)conf + var->offset) =
				    conf_ncpu();
			continue;
		}
		if (conf_set(conf, var, val, err, errlen) < 0)
			goto out;
	}

	/* Module settings, and a warning for what looks like a typo. */
	for (i = 0; i < src.n; i++)
		if (strncmp(src.kv[i].name, "BM_MOD_", 7) == 0)
			nmod++;
	if ((conf->mod_env = calloc(nmod + 1, sizeof(char *))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0, nmod = 0; i < src.n; i++) {
		if (strncmp(src.kv[i].name, "BM_MOD_", 7) == 0) {
			size_t len = strlen(src.kv[i].name) +
			    strlen(src.kv[i].value) + 2;
			if ((conf->mod_env[nmod] = malloc(len)) == NULL) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			snprintf(conf->mod_env[nmod++], len, "%s=%s",
			    src.kv[i].name, src.kv[i].value);
		} else if (!conf_known(src.kv[i].name) && warn != NULL) {
			char msg[300];
			snprintf(msg, sizeof(msg), "unknown variable %.200s "
			    "ignored", src.kv[i].name);
			warn(msg);
		}
	}
	if (strcmp(conf->ext_consumer, "rest") != 0 &&
	    (strncmp(conf->ext_consumer, "module:", 7) != 0 ||
	    conf->ext_consumer[7] == '\0')) {
		snprintf(err, errlen, "BM_EXT_CONSUMER: invalid value \"%.200s\" "
		    "(rest or module:<name>)", conf->ext_consumer);
		goto out;
	}
	if (strcmp(conf->store, "bdb") != 0 &&
	    strcmp(conf->store, "redis") != 0) {
		snprintf(err, errlen, "BM_STORE: invalid value \"%.200s\" "
		    "(bdb or redis)", conf->store);
		goto out;
	}
	if (strcmp(conf->store, "redis") == 0 && conf->redis_url == NULL &&
	    conf->redis_sentinels == NULL) {
		snprintf(err, errlen, "BM_REDIS_URL: required with "
		    "BM_STORE=redis (or BM_REDIS_SENTINELS)");
		goto out;
	}
	/* Redis must never hold the key beside what it seals (a dump or
	 * its AOF would then open every secret). */
	if (strcmp(conf->store, "redis") == 0 &&
	    (conf->secret_key_file == NULL || conf->secret_key_file[0] ==
	    '\0')) {
		snprintf(err, errlen, "BM_SECRET_KEY_FILE: required with "
		    "BM_STORE=redis (the sealing key is never kept in Redis)");
		goto out;
	}
	if (conf->redis_sentinels != NULL && conf->redis_master == NULL) {
		snprintf(err, errlen, "BM_REDIS_MASTER: required with "
		    "BM_REDIS_SENTINELS");
		goto out;
	}
	if (conf->redis_keys != NULL &&
	    strcmp(conf->redis_keys, "js-redis-key-store") != 0) {
		snprintf(err, errlen, "BM_REDIS_KEYS: invalid value \"%.200s\" "
		    "(js-redis-key-store or unset)", conf->redis_keys);
		goto out;
	}
	/* The pool's ceiling follows BM_WORKERS unless it was set. */
	if (conf_src_get(&src, "BM_WORKERS_MAX") == NULL)
		conf->workers_max = conf->workers > APP_WORKERS_MAX_DEFAULT ?
		    conf->workers : APP_WORKERS_MAX_DEFAULT;
	else if (conf->workers_max < conf->workers) {
		snprintf(err, errlen, "BM_WORKERS_MAX: %u is below BM_WORKERS "
		    "(%u): the pool cannot be smaller than its start",
		    conf->workers_max, conf->workers);
		goto out;
	}
	if (conf->status_path != NULL &&
	    strcmp(conf->status_path, conf->endpoint) == 0) {
		snprintf(err, errlen, "BM_STATUS_PATH: the same path as "
		    "BM_ENDPOINT (%s)", conf->endpoint);
		goto out;
	}
	if (conf_oauth_load(conf, &src, err, errlen) < 0)
		goto out;
	if (conf->auth == APP_AUTH_ANY && warn != NULL)
		warn("BM_AUTH=any: every token is accepted");
	rc = 0;
out:
	conf_src_free(&src);
	if (rc < 0)
		app_conf_free(conf);
	return rc;
}

void
app_conf_free(struct app_conf *conf)
{
	char **p;
	int i;

	free(conf->listen);
	free(conf->endpoint);
	free(conf->auth_module);
	free(conf->db_home);
	free(conf->mappings);
	free(conf->events);
	free(conf->settings);
	free(conf->botmatic_origin);
	free(conf->modules);
	free(conf->status_path);
	free(conf->botmatic_base_url);
	free(conf->ext_base_url);
	free(conf->ext_auth_header);
	free(conf->env_file);
	free(conf->ext_consumer);
	free(conf->ext_id_field);
	free(conf->ext_list_field);
	for (i = 0; i < APP_EXT__MAX; i++) {
		free(conf->ext_path[i]);
		free(conf->ext_method[i]);
	}
	free(conf->ext_jwt_url);
	free(conf->ext_jwt_body);
	free(conf->ext_jwt_field);
	free(conf->secret_key_file);
	free(conf->store);
	free(conf->redis_url);
	free(conf->redis_sentinels);
	free(conf->redis_master);
	free(conf->redis_keys);
	free(conf->public_url);
	for (i = 0; i < (int)conf->n_oauth; i++) {
		struct app_oauth_svc *o = &conf->oauth[i];

		free(o->name);
		free(o->client_id);
		if (o->client_secret != NULL) {
			explicit_bzero(o->client_secret,
			    strlen(o->client_secret));
			free(o->client_secret);
		}
		free(o->authorize_url);
		free(o->token_url);
		free(o->scopes);
	}
	free(conf->oauth);
	for (p = conf->mod_env; p != NULL && *p != NULL; p++)
		free(*p);
	free(conf->mod_env);
	memset(conf, 0, sizeof(*conf));
}

void
app_conf_usage(FILE *fp)
{
	size_t i;

	fputs("Environment (read at start and on SIGHUP):\n", fp);
	for (i = 0; i < CONF_NVARS; i++) {
		const struct conf_var *v = &conf_vars[i];
		const char *d = v->dflt;

		if (v->type == CONF_WORKERS)
			d = "number of CPUs";
		else if (v->offset == OFF(workers_max))
			d = "64, or BM_WORKERS when larger";
		else if (v->type == CONF_REQUIRED)
			d = "required";
		else if (d == NULL)
			d = "unset";
		fprintf(fp, "  %-24s %s\n  %-24s   default: %s\n", v->name,
		    v->help, "", d);
	}
	fputs("  BM_MOD_<MODULE>_<KEY>    settings read by module <module>\n",
	    fp);
	fputs("  BM_OAUTH_<SVC>_CLIENT_ID, _CLIENT_SECRET or "
	    "_CLIENT_SECRET_FILE,\n  _AUTHORIZE_URL, _TOKEN_URL, _SCOPES\n"
	    "                           a third-party service <svc> over "
	    "OAuth 2\n", fp);
}
