/*
 * store/lock.c - who may open the environment (SPEC.md section 10).
 *
 * BDB's own registry (DB_REGISTER) cannot tell a process that was SIGKILLed
 * from a live one: the dead process drops its registry lock while its pid
 * lingers (in fsync, then as a zombie), so the next opener either waits on
 * a mutex the dead one held or runs a recovery under live processes.
 * Instead, everything that opens the store takes an exclusive flock() on
 * BM_DB_HOME/store.lock first: the server's master for its whole life
 * (its children inherit the open file, so the lock is held until the last
 * of them is gone), a tool for its command.  The holder writes "server PID"
 * or "tool PID" in the file and empties it after a clean close.  Linux
 * releases a dead process's files only after its memory, so whoever takes
 * the lock next and finds a pid left there knows that nobody else has the
 * environment mapped and can run a recovery safely, before it opens.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"

struct store_lock {
	int fd;
};

/* Reads the holder line: *server and *pid, or 0 and 0 if none. */
static void
read_holder(int fd, int *server, long *pid)
{
	char buf[64];
	ssize_t n;

	*server = 0;
	*pid = 0;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (strncmp(buf, "server ", 7) == 0) {
		*server = 1;
		*pid = strtol(buf + 7, NULL, 10);
	} else if (strncmp(buf, "tool ", 5) == 0)
		*pid = strtol(buf + 5, NULL, 10);
	else
		*pid = -1; /* something unknown: treat as dirty */
}

static void
pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int
store_lock_take(struct store_lock **out, const char *home, int server,
    int wait_ms, struct store_lock_info *info, char *err, size_t errlen)
{
	struct store_lock *l = NULL;
	char path[4096], line[64];
	struct timespec t0, t;
	struct stat st;
	long waited, pid;
	int rc = STORE_LOCK_ERROR, is_server, flags;

	*out = NULL;
	memset(info, 0, sizeof(*info));
	if (errlen > 0)
		err[0] = '\0';
	if (mkdir(home, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create: %s", home,
		    strerror(errno));
		goto out;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/store.lock", home) >=
	    sizeof(path)) {
		snprintf(err, errlen, "%s: path too long", home);
		goto out;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		snprintf(err, errlen, "%s: %s", home, strerror(ENOMEM));
		goto out;
	}
	l->fd = -1;
	/* The server's children must inherit it: no O_CLOEXEC then. */
	flags = O_RDWR | O_CREAT | O_NOFOLLOW | (server ? 0 : O_CLOEXEC);
	if ((l->fd = open(path, flags, 0600)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	/* root running a tool must not leave a lock file the server's own
	 * user cannot open: it belongs to the directory's owner. */
	if (geteuid() == 0 && stat(home, &st) == 0)
		(void)!fchown(l->fd, st.st_uid, st.st_gid);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (flock(l->fd, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			snprintf(err, errlen, "%s: flock: %s", path,
			    strerror(errno));
			goto out;
		}
		read_holder(l->fd, &is_server, &pid);
		info->holder_pid = pid;
		info->holder_server = is_server;
		/* A server holds it for its life: no use waiting. */
		if (is_server) {
			rc = STORE_LOCK_SERVER;
			goto out;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		waited = (t.tv_sec - t0.tv_sec) * 1000L +
		    (t.tv_nsec - t0.tv_nsec) / 1000000L;
		if (waited >= wait_ms) {
			rc = STORE_LOCK_BUSY;
			goto out;
		}
		pause_ms(20);
	}
	read_holder(l->fd, &is_server, &pid);
	info->dirty = pid != 0;
	info->holder_pid = pid;
	info->holder_server = is_server;
	snprintf(line, sizeof(line), "%s %ld\n", server ? "server" : "tool",
	    (long)getpid());
	if (ftruncate(l->fd, 0) != 0 ||
	    pwrite(l->fd, line, strlen(line), 0) != (ssize_t)strlen(line)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	*out = l;
	l = NULL;
	rc = STORE_LOCK_TAKEN;
out:
	if (l != NULL) {
		if (l->fd >= 0)
			close(l->fd);
		free(l);
	}
	return rc;
}

int
store_lock_fd(const struct store_lock *l)
{
	return l != NULL ? l->fd : -1;
}

void
store_lock_release(struct store_lock *l, int clean)
{
	if (l == NULL)
		return;
	/* Emptied only when every handle was closed cleanly: otherwise the
	 * next holder must recover. */
	if (clean)
		(void)!ftruncate(l->fd, 0);
	close(l->fd);
	free(l);
}
