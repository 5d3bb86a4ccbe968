/*
 * fuzz-envelope.c - the request body Botmatic posts (SPEC §2), parsed as
 * the server parses it: any bytes.  The parse answers 0 with an event or an
 * action of valid names, or a 4xx status with a message, and frees all.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_name(const char *s)
{
	const unsigned char *p;

	if (s == NULL)
		return;
	if (*s == '\0' || strlen(s) > APP_NAME_MAX)
		abort();
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct app_envelope env;
	char err[512];
	int st;

	memset(&env, 0, sizeof(env));
	err[0] = '\0';
	st = app_envelope_parse((const char *)data, size, &env, err,
	    sizeof(err));
	if (st == 0) {
		check_name(env.event);
		check_name(env.action);
	} else if (st < 400 || st > 499 || err[0] == '\0')
		abort();
	app_envelope_free(&env);
	return 0;
}
