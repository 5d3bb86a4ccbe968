#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "server/server.h"

static int
listen_is_listening(int fd)
{
	int on = 0;
	socklen_t len = sizeof(on);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

/* systemd socket activation: LISTEN_PID is us and LISTEN_FDS >= 1. */
static int
listen_systemd_fd(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

	if (pid == NULL || fds == NULL || strtol(pid, NULL, 10) != getpid() ||
	    strtol(fds, NULL, 10) < 1)
		return -1;
	return 3;
}

static int
listen_unix(struct app_listener *l, const struct app_conf *conf, char *err,
    size_t errlen)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(conf->listen) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "BM_LISTEN: socket path too long");
		goto fail;
	}
	strcpy(sa.sun_path, conf->listen);
	/* A stale socket from a previous run is replaced; anything else kept. */
	if (lstat(conf->listen, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "BM_LISTEN: %s exists and is not "
			    "a socket", conf->listen);
			goto fail;
		}
		unlink(conf->listen);
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "BM_LISTEN: %s: %s", conf->listen,
		    strerror(errno));
		goto fail;
	}
	if (chmod(conf->listen, conf->listen_mode) < 0 ||
	    listen(fd, (int)conf->backlog) < 0) {
		snprintf(err, errlen, "BM_LISTEN: %s: %s", conf->listen,
		    strerror(errno));
		unlink(conf->listen);
		goto fail;
	}
	if ((l->path = strdup(conf->listen)) == NULL) {
		snprintf(err, errlen, "out of memory");
		unlink(conf->listen);
		goto fail;
	}
	l->fd = fd;
	snprintf(l->desc, sizeof(l->desc), "unix:%s", conf->listen);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

static int
listen_tcp(struct app_listener *l, const struct app_conf *conf, char *err,
    size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	char host[256];
	const char *colon = strrchr(conf->listen, ':');
	size_t hlen;
	int fd = -1, on = 1, rc;

	if (colon == NULL || colon[1] == '\0' ||
	    (hlen = (size_t)(colon - conf->listen)) >= sizeof(host)) {
		snprintf(err, errlen, "BM_LISTEN: expected a path or host:port");
		return -1;
	}
	memcpy(host, conf->listen, hlen);
	host[hlen] = '\0';
	/* [::1]:9000 */
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		memmove(host, host + 1, hlen - 2);
		host[hlen - 2] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints,
	    &res)) != 0) {
		snprintf(err, errlen, "BM_LISTEN: %s: %s", conf->listen,
		    gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, (int)conf->backlog) == 0)
			break;
		snprintf(err, errlen, "BM_LISTEN: %s: %s", conf->listen,
		    strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		if (ai == NULL && err[0] == '\0')
			snprintf(err, errlen, "BM_LISTEN: %s: no address",
			    conf->listen);
		return -1;
	}
	l->fd = fd;
	snprintf(l->desc, sizeof(l->desc), "tcp:%s", conf->listen);
	return 0;
}

int
app_listen_open(struct app_listener *l, const struct app_conf *conf,
    char *err, size_t errlen)
{
	int fd, flags;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	err[0] = '\0';
	if (conf->listen != NULL) {
		if (strchr(conf->listen, '/') != NULL) {
			if (listen_unix(l, conf, err, errlen) < 0)
				return -1;
		} else if (listen_tcp(l, conf, err, errlen) < 0)
			return -1;
	} else {
		if ((fd = listen_systemd_fd()) >= 0)
			snprintf(l->desc, sizeof(l->desc), "fd 3 (systemd)");
		else {
			fd = 0;
			snprintf(l->desc, sizeof(l->desc), "inherited fd 0");
		}
		if (!listen_is_listening(fd)) {
			snprintf(err, errlen, "BM_LISTEN is unset and %s is not "
			    "a listening socket (set BM_LISTEN, or start under "
			    "spawn-fcgi, mod_fcgid or systemd)", l->desc);
			return -1;
		}
		l->fd = fd;
	}
	/* Responders wait in poll(); accept must never block them. */
	if ((flags = fcntl(l->fd, F_GETFL)) < 0 ||
	    fcntl(l->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "BM_LISTEN: fcntl: %s", strerror(errno));
		app_listen_close(l, 1);
		return -1;
	}
	return 0;
}

void
app_listen_close(struct app_listener *l, int unlink_path)
{
	if (l->fd > 0)
		close(l->fd);
	else if (l->fd == 0)
		close(0);
	if (l->path != NULL && unlink_path)
		unlink(l->path);
	free(l->path);
	l->path = NULL;
	l->fd = -1;
}
