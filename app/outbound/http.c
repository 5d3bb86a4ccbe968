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
 * The blocking path's delivery context (processes are single threaded, one
 * blocking job at a time): the Idempotency-Key prefix of its POSTs, the
 * deadline, and what the last call sent and got.  A call of the
 * asynchronous path carries its own (struct app_http_ctx of its job).
 */
static struct app_http_ctx http_job = { .last = { .retry_after = -1 } };

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
	struct app_http_ctx *ctx = arg;
	size_t n = size * nmemb;
	char v[128];
	long secs;

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
		ctx->last.retry_after = secs;
	}
	return n;
}

void
app_http_ctx_begin(struct app_http_ctx *ctx, const char *idem_prefix,
    int64_t deadline)
{
	memset(ctx, 0, sizeof(*ctx));
	snprintf(ctx->idem, sizeof(ctx->idem), "%s",
	    idem_prefix != NULL ? idem_prefix : "");
	ctx->deadline = deadline;
	ctx->last.retry_after = -1;
}

void
app_http_job_begin(const char *idem_prefix, int64_t deadline)
{
	int secret = http_job.secret;

	app_http_ctx_begin(&http_job, idem_prefix, deadline);
	http_job.secret = secret;
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
http_note(struct app_http_ctx *ctx, const char *method, const char *url,
    long status, const char *ans, size_t len, const char *err)
{
	struct app_http_last *l = &ctx->last;
	const char *p = strstr(url, "://");
	size_t i, n;

	p = p != NULL ? strchr(p + 3, '/') : NULL;
	snprintf(l->method, sizeof(l->method), "%s", method);
	snprintf(l->path, sizeof(l->path), "%.*s", p != NULL ?
	    (int)strcspn(p, "?") : 1, p != NULL ? p : "/");
	l->status = status;
	/* Printable ASCII only: it goes into JSON and onto a terminal. */
	n = ans != NULL && !ctx->secret ? len : 0;
	if (n > sizeof(l->answer) - 1)
		n = sizeof(l->answer) - 1;
	for (i = 0; i < n; i++)
		l->answer[i] = ans[i] >= 0x20 && ans[i] < 0x7f ? ans[i] : '?';
	l->answer[n] = '\0';
	snprintf(l->error, sizeof(l->error), "%s", err != NULL ? err : "");
	if (err != NULL || app_http_status_transient(status))
		ctx->transient++;
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
http_count(const struct app_conf *conf, const char *url, int rc, long status)
{
	const char *base = conf->botmatic_base_url;
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

/*
 * One call on an easy handle, blocking or in a multi handle: what its
 * options point to lives here until http_call_finish().
 */
struct http_call {
	const struct app_conf *conf;
	struct app_http_ctx *ctx;     /* borrowed: the job's context */
	CURL *easy;                   /* borrowed */
	const char *method, *url;     /* borrowed until finished */
	struct http_buf buf;
	struct curl_slist *hdrs;
	char cerr[CURL_ERROR_SIZE];
};

/*
 * Sets up c for method url: the limits every call has (http/https, no
 * redirect, timeouts cut to the job's deadline, bounded answer), the
 * caller's headers plus "Expect:" and a job's Idempotency-Key.  The one
 * setup of both paths.  Returns 0, or -1 with err set and the call noted
 * (then http_call_finish() still runs, with rc -1).
 */
static int
http_call_start(struct http_call *call, const char *method, const char *url,
    const struct curl_slist *headers, const char *body, char *err,
    size_t errlen)
{
	struct app_http_ctx *ctx = call->ctx;
	struct curl_slist *last;
	const struct curl_slist *p;
	CURL *c = call->easy;
	int64_t timeout = (int64_t)call->conf->http_timeout;
	int64_t connect_timeout = (int64_t)call->conf->http_connect_timeout;

	call->method = method;
	call->url = url;
	call->cerr[0] = '\0';
	/*
	 * The caller's list is const; ours adds "Expect:" so curl never
	 * waits for a 100-continue before a body (a second of delay with
	 * servers that do not send one).
	 */
	for (p = headers; p != NULL; p = p->next)
		if ((last = curl_slist_append(call->hdrs, p->data)) == NULL)
			goto nomem;
		else
			call->hdrs = last;
	if ((last = curl_slist_append(call->hdrs, "Expect:")) == NULL)
		goto nomem;
	call->hdrs = last;
	/*
	 * A POST of a job carries a key stable across its attempts (job and
	 * step: the path), so a service can recognise a repeat after a kill.
	 */
	if (strcmp(method, "POST") == 0 && ctx->idem[0] != '\0' &&
	    !ctx->secret) {
		char line[200];
		const char *path = strstr(url, "://");

		path = path != NULL ? strchr(path + 3, '/') : NULL;
		snprintf(line, sizeof(line), "Idempotency-Key: %s-%08x",
		    ctx->idem, http_hash(path != NULL ? path : "/"));
		if ((last = curl_slist_append(call->hdrs, line)) == NULL)
			goto nomem;
		call->hdrs = last;
	}
	if (ctx->deadline != 0) {
		int64_t left = ctx->deadline - app_now_ms();

		if (left <= 0) {
			snprintf(err, errlen, "deadline passed");
			http_note(ctx, method, url, 0, NULL, 0, err);
			return -1;
		}
		if (left < timeout)
			timeout = left;
		if (left < connect_timeout)
			connect_timeout = left;
	}

	/* Reset forgets the last call's options, not the connection cache. */
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, call->cerr);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_timeout);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, ctx);
	/* Refuses early an answer announcing a larger Content-Length. */
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)APP_HTTP_ANSWER_MAX);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &call->buf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, call->hdrs);
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
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	http_note(ctx, method, url, 0, NULL, 0, err);
	return -1;
}

/*
 * The answer handling of both paths, after the transfer ended with cc
 * (rc -1: http_call_start() failed, cc unused): the error text, the note
 * for the job's record, the count, the answer handed over.  Frees what the
 * call held and clears the handle's pointers to it.  Returns 0 (an answer,
 * any status) or -1 (err set).
 */
static int
http_call_finish(struct http_call *call, int rc, CURLcode cc, long *status,
    char **answer, size_t *len, char *err, size_t errlen)
{
	struct http_buf *buf = &call->buf;
	CURL *c = call->easy;

	*status = 0;
	if (answer != NULL)
		*answer = NULL;
	if (len != NULL)
		*len = 0;
	if (rc < 0)
		goto out;
	rc = -1;
	if (cc != CURLE_OK) {
		if (buf->over || cc == CURLE_FILESIZE_EXCEEDED)
			snprintf(err, errlen, "answer larger than %lu bytes",
			    (unsigned long)APP_HTTP_ANSWER_MAX);
		else if (buf->nomem)
			snprintf(err, errlen, "out of memory");
		else
			snprintf(err, errlen, "%s", call->cerr[0] != '\0' ?
			    call->cerr : curl_easy_strerror(cc));
		http_note(call->ctx, call->method, call->url, 0, NULL, 0, err);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	http_note(call->ctx, call->method, call->url, *status, buf->data,
	    buf->len, NULL);
	if (buf->data == NULL && answer != NULL &&
	    (buf->data = calloc(1, 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (answer != NULL) {
		*answer = buf->data;
		buf->data = NULL;
	}
	if (len != NULL)
		*len = buf->len;
	rc = 0;
out:
	http_count(call->conf, call->url, rc, *status);
	/* The handle must not keep pointers to what is freed here. */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, NULL);
	curl_slist_free_all(call->hdrs);
	call->hdrs = NULL;
	free(buf->data);
	memset(buf, 0, sizeof(*buf));
	return rc;
}

int
app_http_request(struct app_http *h, const char *method, const char *url,
    const struct curl_slist *headers, const char *body, long *status,
    char **answer, size_t *len, char *err, size_t errlen)
{
	struct http_call call;
	CURLcode cc = CURLE_OK;
	int rc;

	memset(&call, 0, sizeof(call));
	call.conf = h->conf;
	call.ctx = &http_job;
	call.easy = h->easy;
	if ((rc = http_call_start(&call, method, url, headers, body, err,
	    errlen)) == 0)
		cc = curl_easy_perform(h->easy);
	return http_call_finish(&call, rc, cc, status, answer, len, err,
	    errlen);
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

/* --- the asynchronous path (curl_multi) -------------------------------- */

/* A slot of the multi handle: one easy handle, reused call after call. */
struct http_slot {
	struct http_call call;
	char *url, *body;             /* copies, for the transfer's life */
	app_http_done_fn done;
	void *arg;
	int busy;
};

struct app_http_multi {
	const struct app_conf *conf;  /* borrowed */
	CURLM *multi;                 /* holds the connection cache */
	struct http_slot *slots;
	unsigned max, running;
};

struct app_http_multi *
app_http_multi_new(const struct app_conf *conf, unsigned max)
{
	struct app_http_multi *m;
	unsigned i;

	if (max < 1 || max > 1024 || (m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->conf = conf;
	m->max = max;
	if ((m->slots = calloc(max, sizeof(*m->slots))) == NULL ||
	    (m->multi = curl_multi_init()) == NULL)
		goto fail;
	for (i = 0; i < max; i++)
		if ((m->slots[i].call.easy = curl_easy_init()) == NULL)
			goto fail;
	/* Several calls to one service share its connections in turn. */
	curl_multi_setopt(m->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)max);
	return m;
fail:
	app_http_multi_free(m);
	return NULL;
}

/* Frees what a slot's call held; the slot is free again. */
static void
http_slot_clear(struct http_slot *sl)
{
	free(sl->url);
	free(sl->body);
	sl->url = sl->body = NULL;
	sl->done = NULL;
	sl->arg = NULL;
	sl->busy = 0;
}

void
app_http_multi_free(struct app_http_multi *m)
{
	long st;
	unsigned i;
	char err[8];

	if (m == NULL)
		return;
	for (i = 0; m->slots != NULL && i < m->max; i++) {
		struct http_slot *sl = &m->slots[i];

		if (sl->busy) {
			curl_multi_remove_handle(m->multi, sl->call.easy);
			(void)http_call_finish(&sl->call, -1, CURLE_OK, &st,
			    NULL, NULL, err, sizeof(err));
			http_slot_clear(sl);
		}
		if (sl->call.easy != NULL)
			curl_easy_cleanup(sl->call.easy);
	}
	if (m->multi != NULL)
		curl_multi_cleanup(m->multi);
	free(m->slots);
	free(m);
}

int
app_http_multi_add(struct app_http_multi *m, struct app_http_ctx *ctx,
    const char *method, const char *url, const struct curl_slist *headers,
    const char *body, app_http_done_fn done, void *arg, char *err,
    size_t errlen)
{
	struct http_slot *sl = NULL;
	long st;
	unsigned i;

	for (i = 0; i < m->max && sl == NULL; i++)
		if (!m->slots[i].busy)
			sl = &m->slots[i];
	if (sl == NULL) {
		/* The caller bounds its calls by max: a bug, still counted. */
		snprintf(err, errlen, "too many calls in flight");
		http_note(ctx, method, url, 0, NULL, 0, err);
		http_count(m->conf, url, -1, 0);
		return -1;
	}
	sl->call.conf = m->conf;
	sl->call.ctx = ctx;
	sl->url = strdup(url);
	sl->body = body != NULL ? strdup(body) : NULL;
	if (sl->url == NULL || (body != NULL && sl->body == NULL)) {
		snprintf(err, errlen, "out of memory");
		http_note(ctx, method, url, 0, NULL, 0, err);
		http_count(m->conf, url, -1, 0);
		http_slot_clear(sl);
		return -1;
	}
	/* method: one of the callers' literals, static. */
	if (http_call_start(&sl->call, method, sl->url, headers, sl->body, err,
	    errlen) < 0)
		goto fail;
	if (curl_multi_add_handle(m->multi, sl->call.easy) != CURLM_OK) {
		snprintf(err, errlen, "curl_multi_add_handle failed");
		http_note(ctx, method, url, 0, NULL, 0, err);
		goto fail;
	}
	curl_easy_setopt(sl->call.easy, CURLOPT_PRIVATE, sl);
	sl->done = done;
	sl->arg = arg;
	sl->busy = 1;
	m->running++;
	return 0;
fail:
	(void)http_call_finish(&sl->call, -1, CURLE_OK, &st, NULL, NULL, err,
	    errlen);
	http_slot_clear(sl);
	return -1;
}

unsigned
app_http_multi_running(const struct app_http_multi *m)
{
	return m->running;
}

int
app_http_multi_run(struct app_http_multi *m, int timeout_ms)
{
	struct http_slot *sl;
	app_http_done_fn done;
	CURLMsg *msg;
	char err[CURL_ERROR_SIZE + 64], *answer;
	size_t len;
	void *arg, *priv;
	long status;
	int still, left, n = 0, rc;

	if (m->running > 0 &&
	    (curl_multi_poll(m->multi, NULL, 0, timeout_ms, NULL) != CURLM_OK ||
	    curl_multi_perform(m->multi, &still) != CURLM_OK))
		return -1;
	while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		priv = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		sl = priv;
		rc = msg->data.result;
		curl_multi_remove_handle(m->multi, sl->call.easy);
		err[0] = '\0';
		rc = http_call_finish(&sl->call, 0, (CURLcode)rc, &status,
		    &answer, &len, err, sizeof(err));
		done = sl->done;
		arg = sl->arg;
		/* Free before the callback: it may start the job's next call. */
		http_slot_clear(sl);
		m->running--;
		n++;
		done(arg, rc, status, answer, len, rc < 0 ? err : NULL);
	}
	return n;
}
