/*
 * host/trust.c - whether a module file may be loaded into a server, as
 * nginx and redis treat the code and configuration they load: anyone who
 * can change the file, or rename something in a directory above it, could
 * run code in every responder (and as root when the server is).  The file
 * is opened once, checked with fstat() on that descriptor and loaded from
 * it, so it cannot be swapped between the check and dlopen().
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/host.h"
#include "host/host_int.h"

/* Owned by root or by the user the server runs as. */
static int
trust_owner_ok(const struct stat *st)
{
	return st->st_uid == 0 || st->st_uid == geteuid();
}

/*
 * A directory: owned by root or us, and not writable by group or others,
 * unless it is sticky (as /tmp is): then nobody else can rename or replace
 * an entry they do not own.
 */
static int
trust_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		snprintf(err, errlen, "refused: directory %s: %s", dir,
		    strerror(errno));
		return -1;
	}
	if (!trust_owner_ok(&st)) {
		snprintf(err, errlen, "refused: directory %s is owned by uid "
		    "%u, not root or the server's user", dir,
		    (unsigned)st.st_uid);
		return -1;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
		snprintf(err, errlen, "refused: directory %s is writable by "
		    "group or others (mode %04o)", dir,
		    (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

int
app_module_open(const char *path, int *fdp, char *err, size_t errlen)
{
	char real[PATH_MAX], *slash;
	struct stat st;
	int fd = -1, rc = -1;

	*fdp = -1;
	if (path[0] != '/') {
		snprintf(err, errlen, "not an absolute path");
		goto out;
	}
	/* The directories checked are the ones the file really is in. */
	if (realpath(path, real) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto out;
	}
	if ((fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "fstat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		goto out;
	}
	if (!trust_owner_ok(&st)) {
		snprintf(err, errlen, "refused: owned by uid %u, not root or "
		    "the server's user", (unsigned)st.st_uid);
		goto out;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen, "refused: writable by group or others "
		    "(mode %04o)", (unsigned)(st.st_mode & 07777));
		goto out;
	}
	/* Each directory from the file's own up to "/". */
	while ((slash = strrchr(real, '/')) != NULL) {
		if (slash == real) {
			rc = trust_dir("/", err, errlen);
			break;
		}
		*slash = '\0';
		if (trust_dir(real, err, errlen) < 0)
			goto out;
	}
	if (rc < 0)
		goto out;
	*fdp = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}
