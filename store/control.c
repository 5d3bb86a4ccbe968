/*
 * store/control.c - a tool hands its command to the running server
 * (SPEC.md section 10).
 *
 * While a server runs, its master holds store.lock and is the only one that
 * may decide to recover the environment, so a tool must not open it: it
 * connects to BM_DB_HOME/control.sock (a SOCK_SEQPACKET unix socket, 0600)
 * and sends one message, "BMK1", the argument count (4 bytes, host order)
 * and the arguments, NUL-terminated, with its stdin, stdout and stderr
 * attached (SCM_RIGHTS).  The master runs the command in a child it
 * supervises like a responder and answers with its status (4 bytes).  Only
 * root and the server's own user are served (SO_PEERCRED).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "store/store_int.h"

#define MAGIC "BMK1"
/* Largest message: the arguments of any command fit easily. */
#define MSG_MAX 65536
#define ARGS_MAX 16

/*
 * Fills sa with home/control.sock.  A home too long for sun_path (108
 * bytes) is reached through /proc/self/fd/DIRFD/control.sock instead:
 * *dirfd (closed by the caller after bind or connect) is then >= 0.
 */
static int
sock_path(struct sockaddr_un *sa, const char *home, int *dirfd, char *err,
    size_t errlen)
{
	*dirfd = -1;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if ((size_t)snprintf(sa->sun_path, sizeof(sa->sun_path),
	    "%s/control.sock", home) < sizeof(sa->sun_path))
		return 0;
	if ((*dirfd = open(home, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: %s", home, strerror(errno));
		return -1;
	}
	snprintf(sa->sun_path, sizeof(sa->sun_path),
	    "/proc/self/fd/%d/control.sock", *dirfd);
	return 0;
}

int
store_control_call(const char *home, int argc, char *const *argv,
    const int fds[3], int *status, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct msghdr mh;
	struct iovec iov;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(3 * sizeof(int))];
	} cm;
	struct cmsghdr *c;
	char *msg = NULL;
	uint32_t n = (uint32_t)argc;
	int32_t st;
	size_t len = 8, k;
	ssize_t r;
	int fd = -1, i, rc = -1, dirfd = -1;

	*status = 2;
	if (errlen > 0)
		err[0] = '\0';
	if (sock_path(&sa, home, &dirfd, err, errlen) < 0)
		goto out;
	for (i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if (argc > ARGS_MAX || len > MSG_MAX) {
		snprintf(err, errlen, "arguments too long");
		goto out;
	}
	if ((msg = malloc(len)) == NULL) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		goto out;
	}
	memcpy(msg, MAGIC, 4);
	memcpy(msg + 4, &n, 4);
	for (k = 8, i = 0; i < argc; i++) {
		memcpy(msg + k, argv[i], strlen(argv[i]) + 1);
		k += strlen(argv[i]) + 1;
	}
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = errno == ENOENT || errno == ECONNREFUSED ?
		    STORE_CONTROL_NOSERVER : -1;
		snprintf(err, errlen, "%s/control.sock: %s", home,
		    strerror(errno));
		goto out;
	}
	memset(&mh, 0, sizeof(mh));
	memset(&cm, 0, sizeof(cm));
	iov.iov_base = msg;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(3 * sizeof(int));
	memcpy(CMSG_DATA(c), fds, 3 * sizeof(int));
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t)len) {
		snprintf(err, errlen, "%s/control.sock: send: %s", home,
		    strerror(errno));
		goto out;
	}
	/* The answer comes when the command ends, however long it takes;
	 * the server's death closes the socket. */
	while ((r = recv(fd, &st, sizeof(st), 0)) < 0 && errno == EINTR)
		;
	if (r != (ssize_t)sizeof(st)) {
		snprintf(err, errlen, "the server stopped before the command "
		    "ended; its effect is unknown, run it again");
		goto out;
	}
	if (st >= STORE_CONTROL_KILLED) {
		snprintf(err, errlen, "the server killed the command (signal "
		    "%d, store recovery or shutdown); run it again",
		    (int)(st - STORE_CONTROL_KILLED));
		goto out;
	}
	if (st < 0 || st > 255) {
		snprintf(err, errlen, "the server refused the command");
		goto out;
	}
	*status = st;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	free(msg);
	return rc;
}

int
store_control_listen(const char *home, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int fd = -1, dirfd = -1;

	if (sock_path(&sa, home, &dirfd, err, errlen) < 0)
		return -1;
	/* Only the lock holder gets here: a socket left by a dead server
	 * is stale. */
	(void)unlink(sa.sun_path);
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    chmod(sa.sun_path, 0600) != 0 || listen(fd, 16) != 0) {
		snprintf(err, errlen, "%s/control.sock: %s", home,
		    strerror(errno));
		goto fail;
	}
	if (dirfd >= 0)
		close(dirfd);
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	return -1;
}

void
store_control_unlink(const char *home)
{
	struct sockaddr_un sa;
	char err[64];
	int dirfd;

	if (sock_path(&sa, home, &dirfd, err, sizeof(err)) == 0)
		(void)unlink(sa.sun_path);
	if (dirfd >= 0)
		close(dirfd);
}

void
store_control_free(struct store_control_req *r)
{
	int i;

	if (r == NULL)
		return;
	for (i = 0; i < 3; i++)
		if (r->fds[i] >= 0)
			close(r->fds[i]);
	if (r->conn >= 0)
		close(r->conn);
	free(r->argv);
	free(r->buf);
	free(r);
}

int
store_control_accept(int lfd, struct store_control_req **out, char *err,
    size_t errlen)
{
	struct store_control_req *r = NULL;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct msghdr mh;
	struct iovec iov;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(3 * sizeof(int))];
	} cm;
	struct cmsghdr *c;
	struct timeval tv = { 2, 0 };
	uint32_t n;
	ssize_t len;
	size_t k;
	int conn, i, rc = -1;

	*out = NULL;
	if (errlen > 0)
		err[0] = '\0';
	if ((conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR ? 0 : (snprintf(err, errlen, "accept: %s",
		    strerror(errno)), -1);
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		close(conn);
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return -1;
	}
	r->conn = conn;
	r->fds[0] = r->fds[1] = r->fds[2] = -1;
	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0) {
		snprintf(err, errlen, "SO_PEERCRED: %s", strerror(errno));
		goto out;
	}
	r->pid = cred.pid;
	if (cred.uid != 0 && cred.uid != geteuid()) {
		snprintf(err, errlen, "refused a command from pid %ld, uid %ld "
		    "(only root and uid %ld)", (long)cred.pid, (long)cred.uid,
		    (long)geteuid());
		goto out;
	}
	/* A client sends at once: a silent one costs at most this. */
	(void)setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if ((r->buf = malloc(MSG_MAX + 1)) == NULL) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		goto out;
	}
	memset(&mh, 0, sizeof(mh));
	memset(&cm, 0, sizeof(cm));
	iov.iov_base = r->buf;
	iov.iov_len = MSG_MAX;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	len = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(3 * sizeof(int)))
			memcpy(r->fds, CMSG_DATA(c), 3 * sizeof(int));
	if (len < 8 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    memcmp(r->buf, MAGIC, 4) != 0 || r->fds[0] < 0) {
		snprintf(err, errlen, "a malformed command from pid %ld",
		    (long)cred.pid);
		goto out;
	}
	r->buf[len] = '\0';
	memcpy(&n, r->buf + 4, 4);
	if (n > ARGS_MAX || (r->argv = calloc(n + 1, sizeof(char *))) ==
	    NULL) {
		snprintf(err, errlen, "a malformed command from pid %ld",
		    (long)cred.pid);
		goto out;
	}
	for (k = 8, i = 0; i < (int)n; i++) {
		if (k >= (size_t)len) {
			snprintf(err, errlen, "a malformed command from pid "
			    "%ld", (long)cred.pid);
			goto out;
		}
		r->argv[i] = r->buf + k;
		k += strlen(r->buf + k) + 1;
	}
	if (k != (size_t)len) {
		snprintf(err, errlen, "a malformed command from pid %ld",
		    (long)cred.pid);
		goto out;
	}
	r->argc = (int)n;
	*out = r;
	r = NULL;
	rc = 1;
out:
	store_control_free(r);
	return rc;
}

void
store_control_reply(struct store_control_req *r, int status)
{
	int32_t st = status;

	if (r->conn >= 0)
		(void)send(r->conn, &st, sizeof(st), MSG_NOSIGNAL |
		    MSG_DONTWAIT);
}
