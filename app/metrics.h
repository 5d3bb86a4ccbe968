/*
 * metrics.h - the server's counters, and the status answer built from them
 * (BM_STATUS_PATH, SPEC §15): JSON, or Prometheus text exposition.
 *
 * The counters are plain atomics in memory the master maps MAP_SHARED
 * before the first fork, beside the responders' slots: every process adds
 * to them without a lock, a responder killed mid-request leaves every
 * counter whole, and reading the status costs one pass over that memory
 * (no store call, no message to the master).  Until app_metrics_attach()
 * runs (command-line modes, unit tests), counting does nothing.
 *
 * Adding a counter or a gauge is one row in the family table of
 * metrics.c, one enum app_metric value and, when it has labels, one enum
 * here for their values; app_metrics_add() counts, app_metrics_set() sets.
 */
#ifndef APP_METRICS_H
#define APP_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct app_slot;

/* The families; their names, help and labels are the table in metrics.c. */
enum app_metric {
	APP_METRIC_REQUESTS = 0,    /* counter: {status, kind} */
	APP_METRIC_DURATION,        /* histogram: request duration, seconds */
	APP_METRIC_OUTBOUND,        /* counter: {target, outcome} */
	APP_METRIC_RESPONDER_STARTS,/* counter: responders forked */
	APP_METRIC_RESPONDER_EXITS, /* counter: {how} */
	APP_METRIC_RECOVERIES,      /* counter: {result} store recoveries */
	APP_METRIC_WATCHDOG,        /* counter: watchdog escalations */
	APP_METRIC_RELOADS,         /* counter: {result} */
	APP_METRIC__MAX
};

/* The kind label of a request. */
enum app_req_kind {
	APP_KIND_EVENT = 0,  /* {"event":...} */
	APP_KIND_ACTION,     /* {"action":...} */
	APP_KIND_EXT,        /* a change posted by the external service */
	APP_KIND_STATUS,     /* BM_STATUS_PATH */
	APP_KIND_NONE,       /* refused before its kind was known */
	APP_KIND__MAX
};

/* The target label of an outbound call. */
enum app_out_target {
	APP_OUT_BOTMATIC = 0,  /* BOTMATIC_BASE_URL */
	APP_OUT_EXT,           /* the external service (and its JWT URL) */
	APP_OUT_TARGET__MAX
};

/* The outcome label of an outbound call. */
enum app_out_outcome {
	APP_OUT_OK = 0,        /* an answer with a 2xx status */
	APP_OUT_HTTP_ERROR,    /* an answer with another status */
	APP_OUT_FAILED,        /* no answer: refused, timeout, TLS, too large */
	APP_OUT_OUTCOME__MAX
};

/* The how label of a responder's end. */
enum app_exit_how {
	APP_EXIT_EXPECTED = 0, /* stopped by a stop or a reload */
	APP_EXIT_UNEXPECTED,   /* crashed, killed or exited by itself */
	APP_EXIT__MAX
};

/* The result label of recoveries and reloads. */
enum app_result {
	APP_RESULT_OK = 0,
	APP_RESULT_FAILED,
	APP_RESULT__MAX
};

/* Bytes of shared memory app_metrics_attach() needs. */
size_t app_metrics_size(void);

/*
 * Makes this process (and those it forks afterwards) count into shm:
 * app_metrics_size() bytes of zeroed MAP_SHARED memory, suitably aligned.
 * slots (nslots of them, borrowed, in the same kind of memory) are read
 * for the responders-by-state gauge.  Both must outlive every process.
 */
void app_metrics_attach(void *shm, const struct app_slot *slots,
    unsigned nslots);

/*
 * Adds n to the cell of family m at labels (a, b): the values of its first
 * and second label (0 when it has fewer).  Out-of-range labels are ignored.
 */
void app_metrics_add(enum app_metric m, unsigned a, unsigned b, uint64_t n);

/*
 * Sets the gauge cell of family m at labels (a, b) to v (its owner, e.g.
 * the master, publishes it there).  Out-of-range labels are ignored.
 */
void app_metrics_set(enum app_metric m, unsigned a, unsigned b, uint64_t v);

/* Counts one finished request: its HTTP status, kind and duration. */
void app_metrics_request(int status, enum app_req_kind kind, int64_t us);

/*
 * Returns the status as a new NUL-terminated string (free()), JSON when
 * prometheus is 0, else Prometheus text exposition format 0.0.4.  NULL
 * when out of memory or not attached.
 */
char *app_metrics_render(int prometheus);

#endif
