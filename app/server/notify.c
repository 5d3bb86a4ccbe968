#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "server/server.h"

void
app_notify(const char *fmt, ...)
{
#ifdef HAVE_LIBSYSTEMD
	char state[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(state, sizeof(state), fmt, ap);
	va_end(ap);
	/* 0: keep NOTIFY_SOCKET, later notifications use it too. */
	(void)sd_notify(0, state);
#else
	(void)fmt;
#endif
}
