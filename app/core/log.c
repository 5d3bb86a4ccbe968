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
 * Appends src to buf at *len, escaping control bytes, never past cap - 1.
 */
static void
log_append_escaped(char *buf, size_t *len, size_t cap, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p;

	for (p = (const unsigned char *)src; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\\') {
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

void
app_logv(enum bm_log_level lvl, const char *reqid, const char *component,
    int errnum, const char *fmt, va_list ap)
{
	char line[4000], msg[3000];
	struct timespec ts;
	struct tm tm;
	size_t len;
	int n;

	if (!app_log_enabled(lvl) || lvl >= BM_LOG__MAX)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %ld %s %s: ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L, log_names[lvl],
	    (long)(log_pid != 0 ? log_pid : getpid()), reqid != NULL && *reqid != '\0' ? reqid : "-",
	    component != NULL ? component : "app");
	if (n < 0)
		return;
	len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_append_escaped(line, &len, sizeof(line) - 1, msg);
	if (errnum >= 0) {
		log_append_escaped(line, &len, sizeof(line) - 1, ": ");
		log_append_escaped(line, &len, sizeof(line) - 1,
		    strerror(errnum));
	}
	line[len++] = '\n';
	/* One write: a short line to a pipe is atomic. */
	while (write(STDERR_FILENO, line, len) < 0 && errno == EINTR)
		continue;
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
