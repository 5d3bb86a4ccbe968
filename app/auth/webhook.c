/*
 * auth/webhook.c - deliveries signed by a sender outside: the headers
 * parsed (bounded, one scheme a case), then the signature checked on the
 * raw body in constant time, with the current key and, during a rotation,
 * the previous one.  Standard Webhooks (https://www.standardwebhooks.com):
 * webhook-signature holds space-separated "v1,<base64 HMAC-SHA256 of
 * id.timestamp.body>", keyed by the bytes a "whsec_<base64>" secret names.
 * Pure functions of their arguments (OpenSSL only), so the fuzz targets
 * link this file alone; the keystore side is in delivery.c.
 */
#include "config.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "auth/auth.h"

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long
app_wh_base64_decode(const char *src, size_t srclen, unsigned char *out,
    size_t cap)
{
	size_t i, n = 0, pad = 0;
	unsigned long acc = 0;
	int v, bits = 0;

	if (srclen % 4 != 0)
		return -1;
	if (srclen > 0 && src[srclen - 1] == '=')
		pad++;
	if (srclen > 1 && src[srclen - 2] == '=')
		pad++;
	for (i = 0; i < srclen - pad; i++) {
		if ((v = b64_value((unsigned char)src[i])) < 0)
			return -1;
		acc = (acc << 6 | (unsigned long)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == cap)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	/* The bits padding leaves over must be zero: one text per value. */
	if ((acc & ((1UL << bits) - 1)) != 0)
		return -1;
	return (long)n;
}

/* Printable ASCII without space: what an id may hold. */
static int
wh_id_ok(const char *s)
{
	size_t len = strlen(s);
	const unsigned char *p;

	if (len == 0 || len > APP_WH_ID_MAX)
		return 0;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return 0;
	return 1;
}

/* Reads "v1,<b64>" entries of a Standard Webhooks signature header. */
static void
wh_standard_sigs(const char *h, struct app_wh_delivery *d)
{
	const char *p = h, *end, *comma;
	unsigned char buf[48];
	long n;

	while (*p != '\0' && d->nsig < APP_WH_SIGS_MAX) {
		p += strspn(p, " ");
		end = p + strcspn(p, " ");
		if (end == p)
			break;
		comma = memchr(p, ',', (size_t)(end - p));
		/* Another version, or no version: not ours to read. */
		if (comma != NULL && comma - p == 2 &&
		    strncmp(p, "v1", 2) == 0) {
			n = app_wh_base64_decode(comma + 1,
			    (size_t)(end - comma - 1), buf, sizeof(buf));
			if (n == 32)
				memcpy(d->sig[d->nsig++], buf, 32);
		}
		p = end;
	}
}

static const char *const wh_names[APP_WH__MAX] = {
	[APP_WH_STANDARD] = "standard-webhooks",
	[APP_WH_SHOPIFY] = "shopify",
	[APP_WH_GITHUB] = "github",
	[APP_WH_STRIPE] = "stripe",
};

int
app_wh_scheme_parse(const char *name)
{
	int i;

	for (i = 0; i < APP_WH__MAX; i++)
		if (strcmp(name, wh_names[i]) == 0)
			return i;
	return -1;
}

const char *
app_wh_scheme_name(enum app_wh_scheme scheme)
{
	return scheme < APP_WH__MAX ? wh_names[scheme] : "?";
}

static int
wh_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 64 hex digits (either case, as senders write them) into 32 bytes. */
static int
wh_hex32(const char *p, size_t n, unsigned char *out)
{
	size_t i;
	int hi, lo;

	if (n != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		hi = wh_hexval((unsigned char)p[2 * i]);
		lo = wh_hexval((unsigned char)p[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* The digits of a timestamp (1 to 12) into d.  Returns 0 or -1. */
static int
wh_set_ts(struct app_wh_delivery *d, const char *ts, size_t tlen)
{
	size_t i;

	if (tlen == 0 || tlen > 12)
		return -1;
	for (i = 0; i < tlen; i++)
		if (ts[i] < '0' || ts[i] > '9')
			return -1;
	memcpy(d->ts, ts, tlen);
	d->ts[tlen] = '\0';
	d->t = 0;
	for (i = 0; i < tlen; i++)
		d->t = d->t * 10 + (ts[i] - '0');
	d->timed = 1;
	return 0;
}

/* Stripe-Signature: "t=<ts>,v1=<hex>[,v1=<hex>][,v0=...]". */
static int
wh_stripe(const char *h, struct app_wh_delivery *d, const char **why)
{
	const char *p = h, *end;
	int have_t = 0;

	while (*p != '\0') {
		end = p + strcspn(p, ",");
		if (end - p > 2 && p[0] == 't' && p[1] == '=') {
			if (have_t || wh_set_ts(d, p + 2, (size_t)(end - p - 2))
			    < 0) {
				*why = "Stripe-Signature: t is not one timestamp "
				    "of 1 to 12 digits";
				return -1;
			}
			have_t = 1;
		} else if (end - p > 3 && strncmp(p, "v1=", 3) == 0 &&
		    d->nsig < APP_WH_SIGS_MAX) {
			if (wh_hex32(p + 3, (size_t)(end - p - 3),
			    d->sig[d->nsig]) == 0)
				d->nsig++;
		}
		p = *end == ',' ? end + 1 : end;
	}
	if (!have_t) {
		*why = "Stripe-Signature has no t=";
		return -1;
	}
	return 0;
}

int
app_wh_parse(enum app_wh_scheme scheme, app_wh_header_fn get, void *arg,
    struct app_wh_delivery *d, const char **why)
{
	const char *id = NULL, *ts = NULL, *sig;
	unsigned char buf[48];
	long n;

	memset(d, 0, sizeof(*d));
	d->scheme = scheme;
	switch (scheme) {
	case APP_WH_STANDARD:
		id = get(arg, "webhook-id");
		ts = get(arg, "webhook-timestamp");
		sig = get(arg, "webhook-signature");
		if (id == NULL || ts == NULL || sig == NULL) {
			*why = "unsigned: webhook-id, webhook-timestamp and "
			    "webhook-signature are required";
			return -1;
		}
		if (wh_set_ts(d, ts, strlen(ts)) < 0) {
			*why = "webhook-timestamp is not 1 to 12 digits";
			return -1;
		}
		wh_standard_sigs(sig, d);
		break;
	case APP_WH_SHOPIFY:
		id = get(arg, "x-shopify-webhook-id");
		sig = get(arg, "x-shopify-hmac-sha256");
		if (id == NULL || sig == NULL) {
			*why = "unsigned: X-Shopify-Webhook-Id and "
			    "X-Shopify-Hmac-Sha256 are required";
			return -1;
		}
		n = app_wh_base64_decode(sig, strlen(sig), buf, sizeof(buf));
		if (n == 32)
			memcpy(d->sig[d->nsig++], buf, 32);
		break;
	case APP_WH_GITHUB:
		id = get(arg, "x-github-delivery");
		sig = get(arg, "x-hub-signature-256");
		if (id == NULL || sig == NULL) {
			*why = "unsigned: X-GitHub-Delivery and "
			    "X-Hub-Signature-256 are required";
			return -1;
		}
		if (strncmp(sig, "sha256=", 7) == 0 && wh_hex32(sig + 7,
		    strlen(sig + 7), d->sig[0]) == 0)
			d->nsig = 1;
		break;
	case APP_WH_STRIPE:
		if ((sig = get(arg, "stripe-signature")) == NULL) {
			*why = "unsigned: Stripe-Signature is required";
			return -1;
		}
		if (wh_stripe(sig, d, why) < 0)
			return -1;
		break;
	case APP_WH__MAX:
	default:
		*why = "unknown signature scheme";
		return -1;
	}
	if (id != NULL && app_wh_set_id(d, id) < 0) {
		*why = "the delivery id is empty, too long or not printable";
		return -1;
	}
	if (d->nsig == 0) {
		*why = "the signature header holds no signature of a known "
		    "version";
		return -1;
	}
	return 0;
}

int
app_wh_set_id(struct app_wh_delivery *d, const char *id)
{
	if (!wh_id_ok(id))
		return -1;
	memcpy(d->id, id, strlen(id) + 1);
	return 0;
}

/* HMAC-SHA256 of the scheme's signed text under key into mac (32 bytes). */
static int
wh_mac(const struct app_wh_delivery *d, const unsigned char *key,
    size_t klen, const char *body, size_t len, unsigned char *mac)
{
	OSSL_PARAM params[2];
	EVP_MAC *m = NULL;
	EVP_MAC_CTX *c = NULL;
	size_t maclen = 0;
	int ok = 0;

	params[0] = OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((m = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (c = EVP_MAC_CTX_new(m)) == NULL)
		goto out;
	ok = EVP_MAC_init(c, key, klen, params) == 1;
	/* Standard Webhooks signs "id.ts.body", Stripe "ts.body", Shopify
	 * and GitHub the body alone. */
	if (ok && d->scheme == APP_WH_STANDARD)
		ok = EVP_MAC_update(c, (const unsigned char *)d->id,
		    strlen(d->id)) &&
		    EVP_MAC_update(c, (const unsigned char *)".", 1);
	if (ok && (d->scheme == APP_WH_STANDARD || d->scheme == APP_WH_STRIPE))
		ok = EVP_MAC_update(c, (const unsigned char *)d->ts,
		    strlen(d->ts)) &&
		    EVP_MAC_update(c, (const unsigned char *)".", 1);
	ok = ok && EVP_MAC_update(c, (const unsigned char *)body, len) &&
	    EVP_MAC_final(c, mac, &maclen, 32) == 1 && maclen == 32;
out:
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(m);
	return ok ? 0 : -1;
}

int
app_wh_verify(const struct app_wh_delivery *d,
    const unsigned char *const *keys, const size_t *klen, size_t nkeys,
    const char *body, size_t len, int64_t now, const char **why)
{
	unsigned char mac[32];
	size_t k, i;
	int match = 0;

	if (d->timed && d->t < now - APP_WH_TOLERANCE) {
		*why = "stale: the signed timestamp is more than 5 minutes old";
		return -1;
	}
	if (d->timed && d->t > now + APP_WH_TOLERANCE) {
		*why = "from the future: the signed timestamp is more than 5 "
		    "minutes ahead";
		return -1;
	}
	/* Every key against every signature: the time taken says nothing
	 * about which one matched. */
	for (k = 0; k < nkeys; k++) {
		if (wh_mac(d, keys[k], klen[k], body, len, mac) < 0)
			continue;
		for (i = 0; i < d->nsig; i++)
			match |= CRYPTO_memcmp(mac, d->sig[i], 32) == 0;
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	if (!match) {
		*why = "bad signature";
		return -1;
	}
	return 0;
}

static int
wh_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
app_wh_secret_key(const char *hex, unsigned char key[32])
{
	size_t i;
	int hi, lo;

	if (hex == NULL || strlen(hex) != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		hi = wh_hex(hex[2 * i]);
		lo = wh_hex(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		key[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int
app_wh_secret_text(const char *hex, char *text, size_t cap)
{
	unsigned char key[32];

	/* "whsec_", 44 base64 characters, NUL. */
	if (cap < 6 + 44 + 1 || app_wh_secret_key(hex, key) < 0)
		return -1;
	memcpy(text, "whsec_", 6);
	EVP_EncodeBlock((unsigned char *)text + 6, key, 32);
	OPENSSL_cleanse(key, sizeof(key));
	return 0;
}
