/*
 * auth/delivery.c - a signed delivery from outside, accepted or not: the
 * headers parsed and the signature verified (webhook.c) with the keys the
 * keystore holds for the installation (its secret, and the previous one
 * during a rotation's grace), then the delivery id claimed so a replay is
 * not applied twice.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "auth/auth.h"

/* Longest secret an external service may give (botmatic-keys secret set). */
#define WH_EXTERNAL_MAX 256

/*
 * The key bytes of scheme for the installation secret hex (and the
 * external one, when given) into key (cap bytes): Standard Webhooks the
 * decoded secret; the others the external secret's bytes, else the text
 * whsec_<base64> as botmatic-keys secret show prints it.  Returns the
 * length, or -1.
 */
static long
wh_key(enum app_wh_scheme scheme, const char *hex, const char *external,
    unsigned char *key, size_t cap)
{
	char text[64];
	size_t n;

	if (scheme == APP_WH_STANDARD) {
		if (cap < 32 || app_wh_secret_key(hex, key) < 0)
			return -1;
		return 32;
	}
	if (external != NULL) {
		n = strlen(external);
		if (n == 0 || n > cap)
			return -1;
		memcpy(key, external, n);
		return (long)n;
	}
	if (app_wh_secret_text(hex, text, sizeof(text)) < 0)
		return -1;
	n = strlen(text);
	memcpy(key, text, n);
	OPENSSL_cleanse(text, sizeof(text));
	return (long)n;
}

enum app_wh_result
app_wh_check(struct app_keystore *ks, const struct app_conf *conf,
    const char *reqid, enum app_wh_scheme scheme, app_wh_header_fn get,
    void *arg, const char *token, const char *secret, const char *body,
    size_t len, struct app_wh_delivery *d)
{
	unsigned char cur[WH_EXTERNAL_MAX], prev[WH_EXTERNAL_MAX];
	const unsigned char *keys[2] = { cur, prev };
	size_t klen[2] = { 0, 0 };
	enum app_wh_result res = APP_WH_REFUSED;
	char *old = NULL;
	const char *why = NULL, *ext = NULL;
	json_t *extj = NULL;
	int64_t now = (int64_t)time(NULL);
	size_t nkeys = 1;
	long n;
	int rc;

	if (app_wh_parse(scheme, get, arg, d, &why) < 0)
		goto out;
	if (scheme != APP_WH_STANDARD) {
		rc = app_ks_state_get(ks, reqid, token, APP_WH_EXTERNAL_STATE,
		    &extj);
		if (rc < 0) {
			res = APP_WH_TEMP;
			goto out;
		}
		ext = json_string_value(json_object_get(extj, "secret"));
	}
	if ((n = wh_key(scheme, secret, ext, cur, sizeof(cur))) < 0) {
		why = "the installation's secret is malformed";
		goto out;
	}
	klen[0] = (size_t)n;
	/* A rotation's grace covers our own secret; an external one is
	 * replaced by whoever gave it. */
	if (ext == NULL) {
		rc = app_ks_secret_previous(ks, reqid, token, now,
		    conf->secret_grace, &old);
		if (rc < 0) {
			res = APP_WH_TEMP;
			goto out;
		}
		if (rc == 0 && (n = wh_key(scheme, old, NULL, prev,
		    sizeof(prev))) > 0) {
			klen[1] = (size_t)n;
			nkeys = 2;
		}
	}
	if (app_wh_verify(d, keys, klen, nkeys, body, len, now, &why) < 0)
		goto out;
	res = APP_WH_ACCEPT;
out:
	if (res == APP_WH_REFUSED)
		app_log(BM_LOG_INFO, reqid, "webhook", "refused (%s): %s",
		    app_wh_scheme_name(scheme), why);
	OPENSSL_cleanse(cur, sizeof(cur));
	OPENSSL_cleanse(prev, sizeof(prev));
	if (old != NULL) {
		OPENSSL_cleanse(old, strlen(old));
		free(old);
	}
	json_decref(extj);
	return res;
}

enum app_wh_result
app_wh_accept(struct app_keystore *ks, const struct app_conf *conf,
    const char *reqid, enum app_wh_scheme scheme, app_wh_header_fn get,
    void *arg, const char *install_id, const char *token, const char *secret,
    const char *body, size_t len, struct app_wh_delivery *d)
{
	enum app_wh_result res;
	int rc;

	res = app_wh_check(ks, conf, reqid, scheme, get, arg, token, secret,
	    body, len, d);
	if (res != APP_WH_ACCEPT)
		return res;
	rc = app_ks_delivery_claim(ks, reqid, install_id, d->id,
	    (int64_t)time(NULL), APP_WH_DEDUP_TTL);
	res = rc < 0 ? APP_WH_TEMP : rc == 1 ? APP_WH_DUPLICATE :
	    APP_WH_ACCEPT;
	if (res == APP_WH_DUPLICATE)
		app_log(BM_LOG_INFO, reqid, "webhook", "delivery %s already "
		    "applied: not applied again", d->id);
	return res;
}

void
app_wh_release(struct app_keystore *ks, const char *reqid,
    const char *install_id, const struct app_wh_delivery *d)
{
	/* A failure is logged by the keystore: the retry is then a
	 * duplicate, which the log line explains. */
	(void)app_ks_delivery_release(ks, reqid, install_id, d->id);
}
