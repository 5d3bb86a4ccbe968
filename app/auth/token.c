#include "config.h"

#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "auth/auth.h"

int
app_auth_token(const char *authorization, char *out, size_t cap)
{
	const char *p = authorization;
	size_t len;

	out[0] = '\0';
	if (p == NULL)
		return 0;
	if (strncasecmp(p, "Bearer ", 7) == 0)
		p += 7;
	p += strspn(p, " \t");
	len = strlen(p);
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	if (len >= cap)
		return -1;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

int
app_auth_token_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char diff = (unsigned char)(la != lb);
	volatile unsigned char acc = 0;

	/* Walk the expected length whatever the input, compare every byte. */
	for (i = 0; i < lb; i++)
		acc |= (unsigned char)(b[i] ^ (i < la ? a[i] : 0));
	return (acc | diff) == 0;
}

int
app_auth_hmac_verify(const char *key, const char *body, size_t len,
    const char *signature)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[EVP_MAX_MD_SIZE];
	char want[65], got[65];
	size_t maclen = 0, i;

	if (signature == NULL)
		return 0;
	if (strncmp(signature, "sha256=", 7) == 0)
		signature += 7;
	if (strlen(signature) != 64)
		return 0;
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, strlen(key),
	    (const unsigned char *)body, len, mac, sizeof(mac), &maclen) ==
	    NULL || maclen != 32)
		return 0;
	for (i = 0; i < maclen; i++) {
		want[2 * i] = hex[mac[i] >> 4];
		want[2 * i + 1] = hex[mac[i] & 0xf];
	}
	want[64] = '\0';
	/* Hex is case-insensitive: compare lower case. */
	for (i = 0; i < 64; i++)
		got[i] = (char)(signature[i] >= 'A' && signature[i] <= 'F' ?
		    signature[i] + 32 : signature[i]);
	got[64] = '\0';
	return app_auth_token_eq(got, want);
}
