#include "config.h"

#include <string.h>
#include <strings.h>

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
