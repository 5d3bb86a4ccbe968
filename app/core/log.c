#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/core.h"

/* Set at start-up (and on reload) before any request; read-only after. */
static enum bm_log_level log_threshold = BM_LOG_INFO;
/* This process's pid, 0 until app_log_set_pid(). */
static pid_t log_pid;
/* BM_LOG_FORMAT=json; set like the threshold. */
static int log_json;
/* The last ERROR message, for app_log_last_error(). */
static char log_last_err[512];

void
app_log_set_json(int json)
{
	log_json = json;
}

void
app_log_set_pid(void)
{
	log_pid = getpid();
}

static const char *const log_names[BM_LOG__MAX] = {
	"ERROR", "WARN", "INFO", "DEBUG"
};

void
app_log_set_level(enum bm_log_level lvl)
{
	log_threshold = lvl;
}

int
app_log_enabled(enum bm_log_level lvl)
{
	return lvl <= log_threshold;
}

int
app_log_level_parse(const char *s, enum bm_log_level *lvl)
{
	static const char *const words[BM_LOG__MAX] = {
		"error", "warn", "info", "debug"
	};
	int i;

	for (i = 0; i < BM_LOG__MAX; i++)
		if (strcmp(s, words[i]) == 0) {
			*lvl = (enum bm_log_level)i;
			return 0;
		}
	return -1;
}

/*
 * Appends src to buf at *len, escaping control bytes (and, when space is
 * set, spaces: the request id stays one word), never past cap - 1.
 */
static void
log_append_escaped(char *buf, size_t *len, size_t cap, const char *src,
    int space)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p;

	for (p = (const unsigned char *)src; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\\' ||
		    (space && *p == ' ')) {
			if (*len + 4 >= cap)
				break;
			if (*p == '\\') {
				buf[(*len)++] = '\\';
				buf[(*len)++] = '\\';
				continue;
			}
			buf[(*len)++] = '\\';
			buf[(*len)++] = 'x';
			buf[(*len)++] = hex[*p >> 4];
			buf[(*len)++] = hex[*p & 0xf];
		} else {
			if (*len + 1 >= cap)
				break;
			buf[(*len)++] = (char)*p;
		}
	}
}

/* Length of the valid UTF-8 sequence at p (1 to 4), or 0. */
static size_t
log_utf8_len(const unsigned char *p)
{
	size_t n, i;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/*
 * Appends src as a JSON string (quotes included), or null when src is
 * NULL, never past cap - 1: control bytes as \u00NN, invalid UTF-8 as
 * U+FFFD, so the line is always one valid JSON text.
 */
static void
log_append_json(char *buf, size_t *len, size_t cap, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p;
	size_t n;

	if (src == NULL) {
		if (*len + 4 < cap) {
			memcpy(buf + *len, "null", 4);
			*len += 4;
		}
		return;
	}
	if (*len + 2 >= cap)
		return;
	buf[(*len)++] = '"';
	for (p = (const unsigned char *)src; *p != '\0'; p += n) {
		n = log_utf8_len(p);
		/* Room for the longest escape and the closing quote. */
		if (*len + 8 >= cap)
			break;
		if (n == 0) {
			memcpy(buf + *len, "\\ufffd", 6);
			*len += 6;
			n = 1;
		} else if (*p == '"' || *p == '\\') {
			buf[(*len)++] = '\\';
			buf[(*len)++] = (char)*p;
		} else if (*p < 0x20 || *p == 0x7f) {
			memcpy(buf + *len, "\\u00", 4);
			*len += 4;
			buf[(*len)++] = hex[*p >> 4];
			buf[(*len)++] = hex[*p & 0xf];
		} else {
			memcpy(buf + *len, p, n);
			*len += n;
		}
	}
	buf[(*len)++] = '"';
}

/* Appends the literal text s, never past cap - 1. */
static void
log_append(char *buf, size_t *len, size_t cap, const char *s)
{
	size_t n = strlen(s);

	if (n > cap - 1 - *len)
		n = cap - 1 - *len;
	memcpy(buf + *len, s, n);
	*len += n;
}

/* The request fields of a line, or NULL on other lines. */
static const struct app_log_request *log_req;

/*
 * Formats one line in the chosen format from the message msg (already
 * formatted) and writes it in one write(2).
 */
static void
log_write(enum bm_log_level lvl, const char *reqid, const char *component,
    const char *msg)
{
	static const char *const jnames[BM_LOG__MAX] = {
		"error", "warn", "info", "debug"
	};
	const struct app_log_request *r = log_req;
	char line[6000], ts[128], num[64];
	struct timespec ts_now;
	struct tm tm;
	size_t len = 0;
	long pid = (long)(log_pid != 0 ? log_pid : getpid());

	clock_gettime(CLOCK_REALTIME, &ts_now);
	gmtime_r(&ts_now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, ts_now.tv_nsec / 1000000L);
	if (reqid != NULL && *reqid == '\0')
		reqid = NULL;
	if (component == NULL)
		component = "app";
	if (!log_json) {
		snprintf(num, sizeof(num), " %s %ld ", log_names[lvl], pid);
		log_append(line, &len, sizeof(line), ts);
		log_append(line, &len, sizeof(line), num);
		log_append_escaped(line, &len, sizeof(line),
		    reqid != NULL ? reqid : "-", 1);
		log_append(line, &len, sizeof(line), " ");
		log_append_escaped(line, &len, sizeof(line), component, 0);
		log_append(line, &len, sizeof(line), ": ");
		log_append_escaped(line, &len, sizeof(line), msg, 0);
		goto write;
	}
	log_append(line, &len, sizeof(line), "{\"ts\":\"");
	log_append(line, &len, sizeof(line), ts);
	snprintf(num, sizeof(num), "\",\"level\":\"%s\",\"pid\":%ld,"
	    "\"reqid\":", jnames[lvl], pid);
	log_append(line, &len, sizeof(line), num);
	log_append_json(line, &len, sizeof(line), reqid);
	log_append(line, &len, sizeof(line), ",\"component\":");
	log_append_json(line, &len, sizeof(line), component);
	log_append(line, &len, sizeof(line), ",\"msg\":");
	log_append_json(line, &len, sizeof(line), msg);
	if (r != NULL) {
		log_append(line, &len, sizeof(line), ",\"method\":");
		log_append_json(line, &len, sizeof(line), r->method);
		log_append(line, &len, sizeof(line), ",\"path\":");
		log_append_json(line, &len, sizeof(line), r->path);
		snprintf(num, sizeof(num), ",\"status\":%d,\"duration_ms\":"
		    "%lld.%03lld", r->status, (long long)(r->us / 1000),
		    (long long)(r->us % 1000));
		log_append(line, &len, sizeof(line), num);
		log_append(line, &len, sizeof(line), ",\"client\":");
		log_append_json(line, &len, sizeof(line), r->client);
		log_append(line, &len, sizeof(line), ",\"install\":");
		log_append_json(line, &len, sizeof(line), r->install);
		log_append(line, &len, sizeof(line), ",\"name\":");
		log_append_json(line, &len, sizeof(line), r->what);
	}
	/* A truncated object is closed all the same. */
	if (len > sizeof(line) - 3)
		len = sizeof(line) - 3;
	line[len++] = '}';
write:
	line[len++] = '\n';
	/* One write: a short line to a pipe is atomic. */
	while (write(STDERR_FILENO, line, len) < 0 && errno == EINTR)
		continue;
}

void
app_logv(enum bm_log_level lvl, const char *reqid, const char *component,
    int errnum, const char *fmt, va_list ap)
{
	char msg[3000];
	size_t len;

	if (!app_log_enabled(lvl) || lvl >= BM_LOG__MAX)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (errnum >= 0) {
		len = strlen(msg);
		snprintf(msg + len, sizeof(msg) - len, ": %s", strerror(errnum));
	}
	if (lvl == BM_LOG_ERROR)
		snprintf(log_last_err, sizeof(log_last_err), "%s: %s",
		    component != NULL ? component : "app", msg);
	log_write(lvl, reqid, component, msg);
}

void
app_log_request(const char *reqid, const struct app_log_request *r)
{
	char msg[3000], path[2100];
	const char *p;
	size_t plen = 0;
	long long ms = r->us / 1000, frac = (r->us % 1000) / 100;

	if (!app_log_enabled(BM_LOG_INFO))
		return;
	/* The path stays one word: a space is written %20 (the rest is
	 * escaped with the whole line). */
	for (p = r->path != NULL ? r->path : "-"; *p != '\0' &&
	    plen + 4 < sizeof(path); p++)
		if (*p == ' ') {
			memcpy(path + plen, "%20", 3);
			plen += 3;
		} else
			path[plen++] = *p;
	path[plen] = '\0';
	snprintf(msg, sizeof(msg), "%.16s %s %d %lld.%lldms client=%.64s "
	    "install=%.40s%s%.200s", r->method != NULL ? r->method : "-", path,
	    r->status, ms, frac, r->client != NULL ? r->client : "-",
	    r->install != NULL ? r->install : "-", r->what != NULL ?
	    " name=" : "", r->what != NULL ? r->what : "");
	log_req = r;
	log_write(BM_LOG_INFO, reqid, "request", msg);
	log_req = NULL;
}

const char *
app_log_last_error(void)
{
	return log_last_err;
}

void
app_log(enum bm_log_level lvl, const char *reqid, const char *component,
    const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	app_logv(lvl, reqid, component, -1, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
app_log_errno(enum bm_log_level lvl, const char *reqid, const char *component,
    const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	app_logv(lvl, reqid, component, saved, fmt, ap);
	va_end(ap);
	errno = saved;
}
