#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "outbound/outbound.h"

/*
 * The delivery context of this process's next calls (processes are single
 * threaded, one job at a time): the Idempotency-Key prefix of its POSTs,
 * the deadline, and what the last call sent and got.
 */
static struct {
	char idem[128];        /* "" : no Idempotency-Key */
	int64_t deadline;      /* CLOCK_MONOTONIC ms, 0: none */
	unsigned transient;    /* transient failures since app_http_job_begin */
	int secret;            /* the call in progress carries credentials */
	struct app_http_last last;
} http_job;

struct app_http {
	const struct app_conf *conf;  /* borrowed: timeouts */
	CURL *easy;                   /* reused: keeps the connection cache */
};

/* An answer being received, bounded. */
struct http_buf {
	char *data;
	size_t len, cap;
	int over;       /* the answer passed APP_HTTP_ANSWER_MAX */
	int nomem;
};

static size_t
http_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct http_buf *b = arg;
	size_t n = size * nmemb;

	if (n > APP_HTTP_ANSWER_MAX - b->len) {
		b->over = 1;
		return 0;  /* aborts the transfer */
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *nd;

		while (cap < b->len + n + 1)
			cap *= 2;
		if ((nd = realloc(b->data, cap)) == NULL) {
			b->nomem = 1;
			return 0;
		}
		b->data = nd;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* Retry-After: delta-seconds or an HTTP-date, kept as seconds from now. */
static size_t
http_header(char *ptr, size_t size, size_t nmemb, void *arg)
{
	size_t n = size * nmemb;
	char v[128];
	long secs;

	(void)arg;
	if (n > 12 && n < 12 + sizeof(v) &&
	    strncasecmp(ptr, "Retry-After:", 12) == 0) {
		memcpy(v, ptr + 12, n - 12);
		v[n - 12] = '\0';
		v[strcspn(v, "\r\n")] = '\0';
		if (strspn(v, " 0123456789") == strlen(v) && strlen(v) > 0)
			secs = strtol(v, NULL, 10);
		else {
			time_t t = curl_getdate(v + strspn(v, " "), NULL);
			secs = t > 0 ? (long)(t - time(NULL)) : -1;
			if (t > 0 && secs < 0)
				secs = 0;
		}
		http_job.last.retry_after = secs;
	}
	return n;
}

void
app_http_job_begin(const char *idem_prefix, int64_t deadline)
{
	snprintf(http_job.idem, sizeof(http_job.idem), "%s",
	    idem_prefix != NULL ? idem_prefix : "");
	http_job.deadline = deadline;
	http_job.transient = 0;
	memset(&http_job.last, 0, sizeof(http_job.last));
	http_job.last.retry_after = -1;
}

void
app_http_job_secret(int on)
{
	http_job.secret = on;
}

void
app_http_job_end(void)
{
	http_job.idem[0] = '\0';
	http_job.deadline = 0;
}

unsigned
app_http_job_transient(void)
{
	return http_job.transient;
}

const struct app_http_last *
app_http_last(void)
{
	return &http_job.last;
}

int
app_http_status_transient(long status)
{
	return status == 408 || status == 425 || status == 429 ||
	    status >= 500 || status == 0;
}

/* What a job keeps of a call: method, path (no query), status, answer. */
static void
http_note(const char *method, const char *url, long status, const char *ans,
    size_t len, const char *err)
{
	struct app_http_last *l = &http_job.last;
	const char *p = strstr(url, "://");
	size_t i, n;

	p = p != NULL ? strchr(p + 3, '/') : NULL;
	snprintf(l->method, sizeof(l->method), "%s", method);
	snprintf(l->path, sizeof(l->path), "%.*s", p != NULL ?
	    (int)strcspn(p, "?") : 1, p != NULL ? p : "/");
	l->status = status;
	/* Printable ASCII only: it goes into JSON and onto a terminal. */
	n = ans != NULL && !http_job.secret ? len : 0;
	if (n > sizeof(l->answer) - 1)
		n = sizeof(l->answer) - 1;
	for (i = 0; i < n; i++)
		l->answer[i] = ans[i] >= 0x20 && ans[i] < 0x7f ? ans[i] : '?';
	l->answer[n] = '\0';
	snprintf(l->error, sizeof(l->error), "%s", err != NULL ? err : "");
	if (err != NULL || app_http_status_transient(status))
		http_job.transient++;
}

/* FNV-1a of s: names a step of a job in its Idempotency-Key. */
static uint32_t
http_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/*
 * Counts a finished call by target (Botmatic when the URL is under
 * BOTMATIC_BASE_URL, else the external service) and outcome.
 */
static void
http_count(const struct app_http *h, const char *url, int rc, long status)
{
	const char *base = h->conf->botmatic_base_url;
	size_t n = base != NULL ? strlen(base) : 0;
	int botmatic = n > 0 && strncmp(url, base, n) == 0 &&
	    (url[n] == '/' || url[n] == '?' || url[n] == '\0');

	app_metrics_add(APP_METRIC_OUTBOUND, botmatic ? APP_OUT_BOTMATIC :
	    APP_OUT_EXT, rc < 0 ? APP_OUT_FAILED : status >= 200 &&
	    status < 300 ? APP_OUT_OK : APP_OUT_HTTP_ERROR, 1);
}

struct app_http *
app_http_new(const struct app_conf *conf)
{
	struct app_http *h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->conf = conf;
	if ((h->easy = curl_easy_init()) == NULL) {
		free(h);
		return NULL;
	}
	return h;
}

void
app_http_free(struct app_http *h)
{
	if (h == NULL)
		return;
	curl_easy_cleanup(h->easy);
	free(h);
}

int
app_http_request(struct app_http *h, const char *method, const char *url,
    const struct curl_slist *headers, const char *body, long *status,
    char **answer, size_t *len, char *err, size_t errlen)
{
	struct http_buf buf = { NULL, 0, 0, 0, 0 };
	char cerr[CURL_ERROR_SIZE];
	struct curl_slist *hdrs = NULL, *last;
	const struct curl_slist *p;
	CURL *c = h->easy;
	CURLcode cc;
	int64_t timeout = (int64_t)h->conf->http_timeout;
	int64_t connect_timeout = (int64_t)h->conf->http_connect_timeout;
	int rc = -1;

	*status = 0;
	if (answer != NULL)
		*answer = NULL;
	if (len != NULL)
		*len = 0;
	cerr[0] = '\0';

	/*
	 * The caller's list is const; ours adds "Expect:" so curl never
	 * waits for a 100-continue before a body (a second of delay with
	 * servers that do not send one).
	 */
	for (p = headers; p != NULL; p = p->next)
		if ((last = curl_slist_append(hdrs, p->data)) == NULL)
			goto nomem;
		else
			hdrs = last;
	if ((last = curl_slist_append(hdrs, "Expect:")) == NULL)
		goto nomem;
	hdrs = last;
	/*
	 * A POST of a job carries a key stable across its attempts (job and
	 * step: the path), so a service can recognise a repeat after a kill.
	 */
	if (strcmp(method, "POST") == 0 && http_job.idem[0] != '\0' &&
	    !http_job.secret) {
		char line[200];
		const char *path = strstr(url, "://");

		path = path != NULL ? strchr(path + 3, '/') : NULL;
		snprintf(line, sizeof(line), "Idempotency-Key: %s-%08x",
		    http_job.idem, http_hash(path != NULL ? path : "/"));
		if ((last = curl_slist_append(hdrs, line)) == NULL)
			goto nomem;
		hdrs = last;
	}
	if (http_job.deadline != 0) {
		int64_t left = http_job.deadline - app_now_ms();

		if (left <= 0) {
			snprintf(err, errlen, "deadline passed");
			http_note(method, url, 0, NULL, 0, err);
			goto out;
		}
		if (left < timeout)
			timeout = left;
		if (left < connect_timeout)
			connect_timeout = left;
	}

	/* Reset forgets the last call's options, not the connection cache. */
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_timeout);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_header);
	/* Refuses early an answer announcing a larger Content-Length. */
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)APP_HTTP_ANSWER_MAX);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (strcmp(method, "POST") == 0 && body == NULL)
		body = "";
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)strlen(body));
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, body != NULL ? "POST" : "GET") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);

	if ((cc = curl_easy_perform(c)) != CURLE_OK) {
		if (buf.over || cc == CURLE_FILESIZE_EXCEEDED)
			snprintf(err, errlen, "answer larger than %lu bytes",
			    (unsigned long)APP_HTTP_ANSWER_MAX);
		else if (buf.nomem)
			snprintf(err, errlen, "out of memory");
		else
			snprintf(err, errlen, "%s", cerr[0] != '\0' ? cerr :
			    curl_easy_strerror(cc));
		http_note(method, url, 0, NULL, 0, err);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	http_note(method, url, *status, buf.data, buf.len, NULL);
	if (buf.data == NULL && answer != NULL &&
	    (buf.data = calloc(1, 1)) == NULL)
		goto nomem;
	if (answer != NULL) {
		*answer = buf.data;
		buf.data = NULL;
	}
	if (len != NULL)
		*len = buf.len;
	rc = 0;
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
out:
	http_count(h, url, rc, *status);
	/* The handle must not keep pointers to what is freed here. */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
	curl_slist_free_all(hdrs);
	free(buf.data);
	return rc;
}

int
app_http_json_headers(struct curl_slist **list, const char *extra)
{
	const char *lines[] = {
		"Accept: application/json",
		"Content-Type: application/json",
		extra,
	};
	struct curl_slist *l;
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		if (lines[i] == NULL)
			continue;
		if ((l = curl_slist_append(*list, lines[i])) == NULL)
			return -1;
		*list = l;
	}
	return 0;
}

char *
app_http_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	char *out, *o;

	if ((out = malloc(strlen(s) * 3 + 1)) == NULL)
		return NULL;
	for (p = (const unsigned char *)s, o = out; *p != '\0'; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == '~') {
			*o++ = (char)*p;
			continue;
		}
		*o++ = '%';
		*o++ = hex[*p >> 4];
		*o++ = hex[*p & 15];
	}
	*o = '\0';
	return out;
}

int
app_http_header_safe(const char *s)
{
	const unsigned char *p;

	if (s == NULL || *s == '\0')
		return 0;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

json_t *
app_http_failure(const char *component, const char *reqid,
    const char *method, const char *path, long status, const char *reason)
{
	char text[512], code[32], *o;
	const unsigned char *p;
	json_t *r;
	int plen = (int)strcspn(path, "?");

	/*
	 * Only printable ASCII goes into the result: reasons quote parser
	 * messages that may hold bytes of the answer, and json_string() would
	 * refuse invalid UTF-8.
	 */
	for (p = (const unsigned char *)reason, o = text;
	    *p != '\0' && o < text + sizeof(text) - 1; p++)
		*o++ = *p >= 0x20 && *p < 0x7f ? (char)*p : '?';
	*o = '\0';
	snprintf(code, sizeof(code), "HTTP %ld", status);
	if (status > 0 && strstr(text, code) == NULL)
		app_log(BM_LOG_WARN, reqid, component, "%s %.*s: %s (HTTP %ld)",
		    method, plen, path, text, status);
	else
		app_log(BM_LOG_WARN, reqid, component, "%s %.*s: %s", method,
		    plen, path, text);
	if ((r = json_pack("{s:b, s:s}", "success", 0, "error", text)) ==
	    NULL)
		return NULL;
	if (status > 0 &&
	    json_object_set_new(r, "status", json_integer(status)) < 0) {
		json_decref(r);
		return NULL;
	}
	return r;
}

json_t *
app_http_parse(const char *answer, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *v;

	if (len == 0) {
		snprintf(err, errlen, "empty body");
		return NULL;
	}
	if ((v = json_loadb(answer, len, JSON_REJECT_DUPLICATES |
	    JSON_DECODE_ANY, &je)) == NULL)
		snprintf(err, errlen, "not JSON (%s at byte %d)", je.text,
		    je.position);
	return v;
}
