#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "botmatic.h"
#include "log.h"

struct app_botmatic {
	const struct app_conf *conf;
	CURL *easy;
};

/* An answer being received, bounded. */
struct bm_buf {
	char *data;
	size_t len, cap, max;
	int over;
};

static size_t
bm_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct bm_buf *b = arg;
	size_t n = size * nmemb;

	if (n > b->max - b->len) {
		b->over = 1;
		return 0;  /* aborts the transfer */
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *nd;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((nd = realloc(b->data, cap)) == NULL)
			return 0;
		b->data = nd;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

struct app_botmatic *
app_botmatic_new(const struct app_conf *conf)
{
	struct app_botmatic *bm;

	if ((bm = calloc(1, sizeof(*bm))) == NULL)
		return NULL;
	bm->conf = conf;
	if ((bm->easy = curl_easy_init()) == NULL) {
		free(bm);
		return NULL;
	}
	return bm;
}

void
app_botmatic_free(struct app_botmatic *bm)
{
	if (bm == NULL)
		return;
	curl_easy_cleanup(bm->easy);
	free(bm);
}

/* Options every call shares; reset keeps the connection cache. */
static void
bm_prepare(struct app_botmatic *bm, struct bm_buf *buf)
{
	CURL *c = bm->easy;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)bm->conf->http_connect_timeout);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)bm->conf->http_timeout);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, bm_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, buf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
}

int
app_botmatic_validate(struct app_botmatic *bm, const char *reqid,
    const char *token)
{
	struct bm_buf buf = { NULL, 0, 0, 64 * 1024, 0 };
	struct curl_slist *hdrs = NULL;
	char url[2048], *esc = NULL, *form = NULL;
	json_t *answer = NULL;
	long status = 0;
	CURLcode cc;
	int valid = 0;

	if (token == NULL || *token == '\0') {
		app_log(BM_LOG_INFO, reqid, "auth", "no token to validate");
		goto out;
	}
	snprintf(url, sizeof(url), "%s/api/integrationtokens/validate",
	    bm->conf->botmatic_base_url);
	bm_prepare(bm, &buf);
	if ((esc = curl_easy_escape(bm->easy, token, 0)) == NULL ||
	    (form = malloc(strlen(esc) + 7)) == NULL) {
		app_log(BM_LOG_ERROR, reqid, "auth", "out of memory");
		goto out;
	}
	sprintf(form, "token=%s", esc);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	curl_easy_setopt(bm->easy, CURLOPT_URL, url);
	curl_easy_setopt(bm->easy, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(bm->easy, CURLOPT_POSTFIELDS, form);
	if ((cc = curl_easy_perform(bm->easy)) != CURLE_OK) {
		app_log(BM_LOG_WARN, reqid, "auth", "token validation with "
		    "Botmatic failed: %s%s", curl_easy_strerror(cc),
		    buf.over ? " (answer too large)" : "");
		goto out;
	}
	curl_easy_getinfo(bm->easy, CURLINFO_RESPONSE_CODE, &status);
	answer = json_loadb(buf.data != NULL ? buf.data : "", buf.len, 0, NULL);
	if (!json_is_object(answer)) {
		app_log(BM_LOG_WARN, reqid, "auth", "token validation: Botmatic "
		    "answered %ld with no JSON object", status);
		goto out;
	}
	valid = json_is_true(json_object_get(answer, "success"));
	if (!valid)
		app_log(BM_LOG_INFO, reqid, "auth", "Botmatic refused the token "
		    "(status %ld)", status);
out:
	json_decref(answer);
	curl_slist_free_all(hdrs);
	curl_free(esc);
	free(form);
	free(buf.data);
	return valid;
}
