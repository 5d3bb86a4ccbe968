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

enum app_wh_result
app_wh_accept(struct app_keystore *ks, const struct app_conf *conf,
    const char *reqid, enum app_wh_scheme scheme, app_wh_header_fn get,
    void *arg, const char *install_id, const char *token, const char *secret,
    const char *body, size_t len, struct app_wh_delivery *d)
{
	unsigned char cur[32], prev[32];
	const unsigned char *keys[2] = { cur, prev };
	size_t klen[2] = { 32, 32 };
	enum app_wh_result res = APP_WH_REFUSED;
	char *old = NULL;
	const char *why = NULL;
	int64_t now = (int64_t)time(NULL);
	size_t nkeys = 1;
	int rc;

	if (app_wh_parse(scheme, get, arg, d, &why) < 0)
		goto out;
	if (app_wh_secret_key(secret, cur) < 0) {
		why = "the installation's secret is malformed";
		goto out;
	}
	rc = app_ks_secret_previous(ks, reqid, token, now, conf->secret_grace,
	    &old);
	if (rc < 0) {
		res = APP_WH_TEMP;
		goto out;
	}
	if (rc == 0 && app_wh_secret_key(old, prev) == 0)
		nkeys = 2;
	if (app_wh_verify(d, keys, klen, nkeys, body, len, now, &why) < 0)
		goto out;
	rc = app_ks_delivery_claim(ks, reqid, install_id, d->id, now,
	    APP_WH_DEDUP_TTL);
	res = rc < 0 ? APP_WH_TEMP : rc == 1 ? APP_WH_DUPLICATE :
	    APP_WH_ACCEPT;
	if (res == APP_WH_DUPLICATE)
		app_log(BM_LOG_INFO, reqid, "webhook", "delivery %s already "
		    "applied: not applied again", d->id);
out:
	if (res == APP_WH_REFUSED)
		app_log(BM_LOG_INFO, reqid, "webhook", "refused: %s", why);
	OPENSSL_cleanse(cur, sizeof(cur));
	OPENSSL_cleanse(prev, sizeof(prev));
	if (old != NULL) {
		OPENSSL_cleanse(old, strlen(old));
		free(old);
	}
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
