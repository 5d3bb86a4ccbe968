/*
 * tests/bench/fcgi-ceiling.c - the FastCGI ceiling of the benchmarks: the
 * least a libfcgi responder can do per request.  Pre-forked like
 * botmatic-fcgi (a master opens the socket and forks N responders, each in
 * an FCGX_Accept_r loop); every responder reads the whole body and answers
 * a fixed JSON body with the same headers botmatic-fcgi sends.  Built on
 * demand (make fcgi-ceiling), never by all or check; tests/bench/run-bench.py
 * runs it.
 *
 *   fcgi-ceiling -s SOCKET [-w WORKERS] [-b BODY]
 *
 * SIGTERM or SIGINT to the master stops the responders and removes the
 * socket.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcgiapp.h>

#define MAX_WORKERS 64

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* One responder: accept, drain the body, answer, until told to stop. */
static int
respond(int fd, const char *body)
{
	char head[256], buf[16384];
	FCGX_Request req;
	size_t blen = strlen(body);
	int hlen;

	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, fd, 0) != 0) {
		fprintf(stderr, "fcgi-ceiling: FCGX_Init failed\n");
		return 1;
	}
	hlen = snprintf(head, sizeof(head), "Status: 200 OK\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\nX-Request-Id: "
	    "00000000000000000000000000000000\r\n\r\n", blen);
	while (!stop && FCGX_Accept_r(&req) >= 0) {
		/* Read the body, as the real server does, then answer. */
		while (FCGX_GetStr(buf, (int)sizeof(buf), req.in) > 0)
			continue;
		FCGX_PutStr(head, hlen, req.out);
		FCGX_PutStr(body, (int)blen, req.out);
		FCGX_Finish_r(&req);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *path = NULL;
	const char *body = "{\"data\":{\"echo\":{\"hello\":\"world\"}},"
	    "\"type\":\"data\",\"success\":true}";
	pid_t pids[MAX_WORKERS];
	struct sigaction sa;
	long workers = 2;
	int ch, fd, i, status;

	while ((ch = getopt(argc, argv, "s:w:b:")) != -1)
		switch (ch) {
		case 's': path = optarg; break;
		case 'w': workers = strtol(optarg, NULL, 10); break;
		case 'b': body = optarg; break;
		default: path = NULL; optind = argc; break;
		}
	if (path == NULL || workers < 1 || workers > MAX_WORKERS) {
		fprintf(stderr, "usage: fcgi-ceiling -s SOCKET [-w WORKERS 1-%d] "
		    "[-b BODY]\n", MAX_WORKERS);
		return 2;
	}
	unlink(path);
	if (FCGX_Init() != 0 || (fd = FCGX_OpenSocket(path, 1024)) < 0) {
		fprintf(stderr, "fcgi-ceiling: cannot listen on %s\n", path);
		return 1;
	}
	chmod(path, 0666);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (i = 0; i < workers; i++) {
		if ((pids[i] = fork()) == 0) {
			/* The master's SIGTERM ends a blocked accept. */
			sa.sa_handler = SIG_DFL;
			sigaction(SIGTERM, &sa, NULL);
			sigaction(SIGINT, &sa, NULL);
			_exit(respond(fd, body));
		}
		if (pids[i] < 0) {
			fprintf(stderr, "fcgi-ceiling: fork: %s\n",
			    strerror(errno));
			workers = i;
			stop = 1;
			break;
		}
	}
	printf("fcgi-ceiling: %ld responders on %s\n", workers, path);
	fflush(stdout);
	while (!stop)
		pause();
	for (i = 0; i < workers; i++)
		kill(pids[i], SIGTERM);
	for (i = 0; i < workers; i++)
		waitpid(pids[i], &status, 0);
	unlink(path);
	return 0;
}
