/*
 * listen.h - the FastCGI listening socket: created from BM_LISTEN (a unix
 * socket path or host:port), or inherited (fd 0 from spawn-fcgi or
 * mod_fcgid, fd 3 from systemd with LISTEN_FDS).
 */
#ifndef APP_LISTEN_H
#define APP_LISTEN_H

#include <stddef.h>

#include "conf.h"

struct app_listener {
	int fd;           /* the listening socket, non-blocking */
	char *path;       /* unix socket path we created (unlinked at stop) */
	char desc[300];   /* for the log */
};

/*
 * Opens or adopts the socket.  Returns 0, or -1 with the reason in err.
 */
int app_listen_open(struct app_listener *l, const struct app_conf *conf,
    char *err, size_t errlen);

/* Closes the socket; unlinks a path we created when unlink_path is set. */
void app_listen_close(struct app_listener *l, int unlink_path);

#endif
