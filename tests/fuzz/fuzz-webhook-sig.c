/*
 * fuzz-webhook-sig.c - a signed delivery's headers and body (Standard
 * Webhooks, auth/webhook.c), from bytes an attacker chooses: the input is
 * split at NUL bytes into webhook-id, webhook-timestamp, webhook-signature
 * and the body.  The parse is bounded; a delivery is never accepted with a
 * key its signature was not made with; and when the fuzzer's signature
 * header is replaced by the right one, the same delivery is accepted.  The
 * same parts go through the shopify, github and stripe parsers too (the
 * first as the delivery id header, the third as the signature header):
 * bounded, and accepted only with the HMAC of the scheme's signed text.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct hdrs {
	const char *id, *ts, *sig;
};

static const char *
get(void *arg, const char *name)
{
	const struct hdrs *h = arg;

	if (strcmp(name, "webhook-id") == 0)
		return h->id;
	if (strcmp(name, "webhook-timestamp") == 0)
		return h->ts;
	if (strcmp(name, "webhook-signature") == 0)
		return h->sig;
	return NULL;
}

/* The other schemes: their id and signature headers are h's id and sig. */
static const char *
get_other(void *arg, const char *name)
{
	const struct hdrs *h = arg;

	if (strcmp(name, "x-shopify-webhook-id") == 0 ||
	    strcmp(name, "x-github-delivery") == 0)
		return h->id;
	if (strcmp(name, "x-shopify-hmac-sha256") == 0 ||
	    strcmp(name, "x-hub-signature-256") == 0 ||
	    strcmp(name, "stripe-signature") == 0)
		return h->sig;
	return NULL;
}

/* Parses and verifies under scheme; aborts when the invariants break. */
static void
other_scheme(enum app_wh_scheme scheme, const struct hdrs *h,
    const unsigned char *key, const char *body, size_t blen)
{
	const unsigned char *keys[1] = { key };
	const size_t klen[1] = { 32 };
	struct app_wh_delivery d;
	unsigned char mac[32], *msg;
	unsigned int maclen;
	const char *why = NULL;
	size_t i, mlen, tl;

	if (app_wh_parse(scheme, get_other, (void *)h, &d, &why) != 0)
		return;
	if (d.nsig == 0 || d.nsig > APP_WH_SIGS_MAX ||
	    strlen(d.id) > APP_WH_ID_MAX ||
	    (scheme != APP_WH_STRIPE && strcmp(d.id, h->id) != 0) ||
	    (scheme == APP_WH_STRIPE && (d.id[0] != '\0' || !d.timed)) ||
	    (scheme != APP_WH_STRIPE && d.timed))
		abort();
	tl = scheme == APP_WH_STRIPE ? strlen(d.ts) + 1 : 0;
	mlen = tl + blen;
	if ((msg = malloc(mlen + 1)) == NULL)
		return;
	if (tl > 0) {
		memcpy(msg, d.ts, tl - 1);
		msg[tl - 1] = '.';
	}
	memcpy(msg + tl, body, blen);
	HMAC(EVP_sha256(), key, 32, msg, mlen, mac, &maclen);
	free(msg);
	if (app_wh_verify(&d, keys, klen, 1, body, blen, d.t, &why) == 0) {
		for (i = 0; i < d.nsig; i++)
			if (memcmp(d.sig[i], mac, 32) == 0)
				break;
		if (i == d.nsig)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char key[32] = "0123456789abcdef0123456789abcde";
	const unsigned char *keys[1] = { key };
	const size_t klen[1] = { 32 };
	struct app_wh_delivery d;
	struct hdrs h = { NULL, NULL, NULL };
	unsigned char mac[32], dec[64], *msg;
	char *buf, *part[4], good[64];
	const char *why = NULL, *body = "";
	size_t i, n = 0, blen = 0, mlen;
	unsigned int maclen;
	long dl;

	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	part[n++] = buf;
	for (i = 0; i < size && n < 4; i++)
		if (buf[i] == '\0')
			part[n++] = buf + i + 1;
	if (n > 0)
		h.id = part[0];
	if (n > 1)
		h.ts = part[1];
	if (n > 2)
		h.sig = part[2];
	if (n > 3) {
		body = part[3];
		blen = size - (size_t)(part[3] - buf);
	}
	/* base64 alone: a decoded length within bounds, or a refusal. */
	dl = app_wh_base64_decode(buf, strnlen(buf, size), dec, sizeof(dec));
	if (dl > (long)sizeof(dec))
		abort();

	if (app_wh_parse(APP_WH_STANDARD, get, &h, &d, &why) == 0) {
		if (d.nsig == 0 || d.nsig > APP_WH_SIGS_MAX ||
		    strlen(d.id) > APP_WH_ID_MAX || strcmp(d.id, h.id) != 0)
			abort();
		/* Accepted only if a signature really is the HMAC. */
		mlen = strlen(d.id) + strlen(d.ts) + 2 + blen;
		if ((msg = malloc(mlen)) == NULL)
			goto out;
		memcpy(msg, d.id, strlen(d.id));
		msg[strlen(d.id)] = '.';
		memcpy(msg + strlen(d.id) + 1, d.ts, strlen(d.ts));
		msg[strlen(d.id) + 1 + strlen(d.ts)] = '.';
		memcpy(msg + strlen(d.id) + 2 + strlen(d.ts), body, blen);
		HMAC(EVP_sha256(), key, 32, msg, mlen, mac, &maclen);
		free(msg);
		if (app_wh_verify(&d, keys, klen, 1, body, blen, d.t, &why) == 0) {
			for (i = 0; i < d.nsig; i++)
				if (memcmp(d.sig[i], mac, 32) == 0)
					break;
			if (i == d.nsig)
				abort();
		}
		/* The right signature is accepted, at any time in range. */
		memcpy(good, "v1,", 3);
		EVP_EncodeBlock((unsigned char *)good + 3, mac, 32);
		h.sig = good;
		if (app_wh_parse(APP_WH_STANDARD, get, &h, &d, &why) != 0 ||
		    app_wh_verify(&d, keys, klen, 1, body, blen, d.t + 299,
		    &why) != 0 ||
		    app_wh_verify(&d, keys, klen, 1, body, blen, d.t + 301,
		    &why) == 0)
			abort();
	}
	if (h.id != NULL && h.sig != NULL) {
		other_scheme(APP_WH_SHOPIFY, &h, key, body, blen);
		other_scheme(APP_WH_GITHUB, &h, key, body, blen);
		other_scheme(APP_WH_STRIPE, &h, key, body, blen);
	}
out:
	free(buf);
	return 0;
}
