#include "config.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/core.h"

/* A label: its name and every value it can take (bounded: no user data). */
struct metrics_label {
	const char *name;
	const char *const *values;
	unsigned n;
};

enum metrics_type {
	METRICS_COUNTER = 0,
	METRICS_GAUGE,       /* set by its owner (app_metrics_set) */
	METRICS_HISTOGRAM,
	METRICS_TYPE__MAX
};

/* One family: one row of the table below. */
struct metrics_family {
	const char *name;                 /* after "botmatic_" */
	enum metrics_type type;
	const char *help;
	const struct metrics_label *a, *b;/* first and second label, or NULL */
	int sparse;                       /* show only cells that moved */
};

/* Statuses the server answers; anything else counts as "other". */
static const char *const metrics_status_v[] = {
	"200", "400", "401", "403", "404", "405", "411", "413", "415", "500",
	"502", "503", "other"
};
#define METRICS_NSTATUS (sizeof(metrics_status_v) / sizeof(metrics_status_v[0]))
static const char *const metrics_kind_v[APP_KIND__MAX] = {
	"event", "action", "ext", "status", "settings", "oauth", "none"
};
static const char *const metrics_target_v[APP_OUT_TARGET__MAX] = {
	"botmatic", "ext"
};
static const char *const metrics_outcome_v[APP_OUT_OUTCOME__MAX] = {
	"ok", "http_error", "failed"
};
static const char *const metrics_how_v[APP_EXIT__MAX] = {
	"expected", "unexpected"
};
static const char *const metrics_result_v[APP_RESULT__MAX] = {
	"ok", "failed"
};
static const char *const metrics_job_v[APP_JOB__MAX] = {
	"queued", "done", "retried", "dead"
};

static const struct metrics_label metrics_status = { "status",
	metrics_status_v, METRICS_NSTATUS };
static const struct metrics_label metrics_kind = { "kind", metrics_kind_v,
	APP_KIND__MAX };
static const struct metrics_label metrics_target = { "target",
	metrics_target_v, APP_OUT_TARGET__MAX };
static const struct metrics_label metrics_outcome = { "outcome",
	metrics_outcome_v, APP_OUT_OUTCOME__MAX };
static const struct metrics_label metrics_how = { "how", metrics_how_v,
	APP_EXIT__MAX };
static const struct metrics_label metrics_result = { "result",
	metrics_result_v, APP_RESULT__MAX };
static const struct metrics_label metrics_job = { "outcome", metrics_job_v,
	APP_JOB__MAX };

/* Upper bounds of the duration buckets, seconds; +Inf is implied. */
static const double metrics_buckets[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
#define METRICS_NBUCKETS (sizeof(metrics_buckets) / sizeof(metrics_buckets[0]))

/*
 * Every family, in the order of enum app_metric.  The queue's gauges are
 * set about once a second by the delivery processes, from counts the store
 * keeps in the jobs' own transactions (no scan per status request).
 */
static const struct metrics_family metrics_families[APP_METRIC__MAX] = {
	[APP_METRIC_REQUESTS] = { "requests_total", METRICS_COUNTER,
	    "Requests answered, by HTTP status and kind.", &metrics_status,
	    &metrics_kind, 1 },
	[APP_METRIC_DURATION] = { "request_duration_seconds",
	    METRICS_HISTOGRAM, "Time from accepting a request to its answer "
	    "being sent.", NULL, NULL, 0 },
	[APP_METRIC_OUTBOUND] = { "outbound_requests_total", METRICS_COUNTER,
	    "Outbound HTTP calls, by target and outcome.", &metrics_target,
	    &metrics_outcome, 0 },
	[APP_METRIC_RESPONDER_STARTS] = { "responder_starts_total",
	    METRICS_COUNTER, "Responders forked by the master.", NULL, NULL,
	    0 },
	[APP_METRIC_RESPONDER_EXITS] = { "responder_exits_total",
	    METRICS_COUNTER, "Responders ended, expected (stop, reload) or "
	    "not (crash, kill).", &metrics_how, NULL, 0 },
	[APP_METRIC_RECOVERIES] = { "store_recoveries_total", METRICS_COUNTER,
	    "Keystore recoveries run after the server started.",
	    &metrics_result, NULL, 0 },
	[APP_METRIC_WATCHDOG] = { "watchdog_escalations_total",
	    METRICS_COUNTER, "Keystore calls that outlasted BM_DB_WATCHDOG "
	    "and made the master recover.", NULL, NULL, 0 },
	[APP_METRIC_RELOADS] = { "reloads_total", METRICS_COUNTER,
	    "SIGHUP reloads, by result.", &metrics_result, NULL, 0 },
	[APP_METRIC_JOBS] = { "jobs_total", METRICS_COUNTER,
	    "The delivery queue: events answered queued, jobs done, failed "
	    "attempts rescheduled, jobs kept as dead.", &metrics_job, NULL,
	    0 },
	[APP_METRIC_POOL_GROWS] = { "pool_grows_total", METRICS_COUNTER,
	    "Responders the dynamic pool added because every responder was "
	    "busy and a request waited.", NULL, NULL, 0 },
	[APP_METRIC_POOL_RETIRES] = { "pool_retires_total", METRICS_COUNTER,
	    "Responders the dynamic pool retired after "
	    "BM_WORKERS_IDLE_TIMEOUT idle.", NULL, NULL, 0 },
	[APP_METRIC_POOL_TARGET] = { "pool_target_responders", METRICS_GAUGE,
	    "Responders the pool keeps now, between BM_WORKERS and "
	    "BM_WORKERS_MAX.", NULL, NULL, 0 },
	[APP_METRIC_JOBS_QUEUED] = { "jobs_queued", METRICS_GAUGE,
	    "Pending jobs in the delivery queue (updated each second by the "
	    "delivery processes).", NULL, NULL, 0 },
	[APP_METRIC_JOBS_DEAD] = { "jobs_dead", METRICS_GAUGE,
	    "Dead jobs kept for the operator (outbox revive or drop).", NULL,
	    NULL, 0 },
	[APP_METRIC_JOBS_OLDEST] = { "jobs_oldest_age_seconds", METRICS_GAUGE,
	    "Age of the oldest pending job, seconds; 0 when none is "
	    "pending.", NULL, NULL, 0 },
};

static const char *const metrics_state_v[APP_RESP__MAX] = {
	"starting", "idle", "busy", "stopping"
};

/* Set once by app_metrics_attach() before the first fork; read-only after. */
static _Atomic uint64_t *metrics_cells;
static app_metrics_states_fn metrics_states_cb;

/* Cells of a family: label cells, or buckets + +Inf + sum (µs) + count. */
static size_t
metrics_ncells(const struct metrics_family *f)
{
	if (f->type == METRICS_HISTOGRAM)
		return METRICS_NBUCKETS + 3;
	return (f->a != NULL ? f->a->n : 1) * (f->b != NULL ? f->b->n : 1);
}

/* Index of family m's first cell. */
static size_t
metrics_base(enum app_metric m)
{
	size_t i, base = 0;

	for (i = 0; i < (size_t)m; i++)
		base += metrics_ncells(&metrics_families[i]);
	return base;
}

size_t
app_metrics_size(void)
{
	return metrics_base(APP_METRIC__MAX) * sizeof(_Atomic uint64_t);
}

void
app_metrics_attach(void *shm, app_metrics_states_fn states)
{
	metrics_cells = shm;
	metrics_states_cb = states;
}

/*
 * Finds the cell of family m at labels (a, b), or NULL when not attached,
 * of another type than want, or out of range.
 */
static _Atomic uint64_t *
metrics_cell(enum app_metric m, enum metrics_type want, unsigned a, unsigned b)
{
	const struct metrics_family *f;
	unsigned na, nb;

	if (metrics_cells == NULL || m >= APP_METRIC__MAX)
		return NULL;
	f = &metrics_families[m];
	na = f->a != NULL ? f->a->n : 1;
	nb = f->b != NULL ? f->b->n : 1;
	if (f->type != want || a >= na || b >= nb)
		return NULL;
	return &metrics_cells[metrics_base(m) + a * nb + b];
}

void
app_metrics_add(enum app_metric m, unsigned a, unsigned b, uint64_t n)
{
	_Atomic uint64_t *c = metrics_cell(m, METRICS_COUNTER, a, b);

	if (c != NULL)
		atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

void
app_metrics_set(enum app_metric m, unsigned a, unsigned b, uint64_t v)
{
	_Atomic uint64_t *c = metrics_cell(m, METRICS_GAUGE, a, b);

	if (c != NULL)
		atomic_store_explicit(c, v, memory_order_relaxed);
}

void
app_metrics_request(int status, enum app_req_kind kind, int64_t us)
{
	_Atomic uint64_t *h;
	char code[16];
	unsigned s, i;

	if (metrics_cells == NULL)
		return;
	snprintf(code, sizeof(code), "%d", status);
	for (s = 0; s + 1 < METRICS_NSTATUS; s++)
		if (strcmp(metrics_status_v[s], code) == 0)
			break;
	app_metrics_add(APP_METRIC_REQUESTS, s, (unsigned)kind, 1);
	if (us < 0)
		us = 0;
	h = &metrics_cells[metrics_base(APP_METRIC_DURATION)];
	for (i = 0; i < METRICS_NBUCKETS; i++)
		if ((double)us <= metrics_buckets[i] * 1e6)
			break;
	/* Buckets are kept apart and summed when shown. */
	atomic_fetch_add_explicit(&h[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h[METRICS_NBUCKETS + 1], (uint64_t)us,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&h[METRICS_NBUCKETS + 2], 1,
	    memory_order_relaxed);
}

/* A growing text buffer for the Prometheus form. */
struct metrics_buf {
	char *data;
	size_t len, cap;
	int nomem;
};

static void
metrics_printf(struct metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
metrics_printf(struct metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->nomem)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->nomem = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap * 2 + (size_t)n;
			char *nd = realloc(b->data, cap);
			if (nd == NULL) {
				b->nomem = 1;
				return;
			}
			b->data = nd;
			b->cap = cap;
		}
	}
}

/* Responders per state, from the server's slots. */
static void
metrics_states(uint64_t count[APP_RESP__MAX])
{
	memset(count, 0, sizeof(uint64_t) * APP_RESP__MAX);
	if (metrics_states_cb != NULL)
		metrics_states_cb(count);
}

/* One snapshot of a histogram: cumulative buckets, sum in µs, count. */
static void
metrics_histogram(const _Atomic uint64_t *h, uint64_t cum[METRICS_NBUCKETS + 1],
    uint64_t *sum_us, uint64_t *count)
{
	uint64_t acc = 0;
	size_t i;

	for (i = 0; i <= METRICS_NBUCKETS; i++) {
		acc += atomic_load_explicit(&h[i], memory_order_relaxed);
		cum[i] = acc;
	}
	*sum_us = atomic_load_explicit(&h[METRICS_NBUCKETS + 1],
	    memory_order_relaxed);
	/*
	 * Read apart from the buckets: a request counted in between shows
	 * in one and not the other.  +Inf must equal _count, so +Inf wins.
	 */
	*count = cum[METRICS_NBUCKETS];
}

static char *
metrics_prometheus(void)
{
	struct metrics_buf b = { NULL, 0, 0, 0 };
	uint64_t states[APP_RESP__MAX], cum[METRICS_NBUCKETS + 1], sum, count;
	size_t m, a, c, base;

	if ((b.data = malloc(4096)) == NULL)
		return NULL;
	b.cap = 4096;
	b.data[0] = '\0';
	metrics_states(states);
	metrics_printf(&b, "# HELP botmatic_responders Responders now in each "
	    "state.\n# TYPE botmatic_responders gauge\n");
	for (a = 0; a < APP_RESP__MAX; a++)
		metrics_printf(&b, "botmatic_responders{state=\"%s\"} %llu\n",
		    metrics_state_v[a], (unsigned long long)states[a]);
	for (m = 0, base = 0; m < APP_METRIC__MAX; m++) {
		const struct metrics_family *f = &metrics_families[m];
		const _Atomic uint64_t *cell = &metrics_cells[base];
		unsigned na = f->a != NULL ? f->a->n : 1;
		unsigned nb = f->b != NULL ? f->b->n : 1;

		base += metrics_ncells(f);
		metrics_printf(&b, "# HELP botmatic_%s %s\n# TYPE botmatic_%s "
		    "%s\n", f->name, f->help, f->name,
		    f->type == METRICS_HISTOGRAM ? "histogram" :
		    f->type == METRICS_GAUGE ? "gauge" : "counter");
		if (f->type == METRICS_HISTOGRAM) {
			metrics_histogram(cell, cum, &sum, &count);
			for (a = 0; a < METRICS_NBUCKETS; a++)
				metrics_printf(&b, "botmatic_%s_bucket{le=\"%g\"} "
				    "%llu\n", f->name, metrics_buckets[a],
				    (unsigned long long)cum[a]);
			metrics_printf(&b, "botmatic_%s_bucket{le=\"+Inf\"} %llu\n"
			    "botmatic_%s_sum %.6f\nbotmatic_%s_count %llu\n",
			    f->name, (unsigned long long)count, f->name,
			    (double)sum / 1e6, f->name,
			    (unsigned long long)count);
			continue;
		}
		for (a = 0; a < na; a++)
			for (c = 0; c < nb; c++) {
				uint64_t v = atomic_load_explicit(&cell[a * nb + c],
				    memory_order_relaxed);
				if (f->sparse && v == 0)
					continue;
				if (f->a == NULL)
					metrics_printf(&b, "botmatic_%s %llu\n",
					    f->name, (unsigned long long)v);
				else if (f->b == NULL)
					metrics_printf(&b, "botmatic_%s{%s=\"%s\"} "
					    "%llu\n", f->name, f->a->name,
					    f->a->values[a], (unsigned long long)v);
				else
					metrics_printf(&b, "botmatic_%s{%s=\"%s\","
					    "%s=\"%s\"} %llu\n", f->name, f->a->name,
					    f->a->values[a], f->b->name,
					    f->b->values[c], (unsigned long long)v);
			}
	}
	if (b.nomem) {
		free(b.data);
		return NULL;
	}
	return b.data;
}

/* Sets key to the integer v in obj; returns -1 when out of memory. */
static int
metrics_jset(json_t *obj, const char *key, uint64_t v)
{
	return json_object_set_new(obj, key, json_integer((json_int_t)v));
}

static char *
metrics_json(void)
{
	uint64_t states[APP_RESP__MAX], cum[METRICS_NBUCKETS + 1], sum, count;
	json_t *root = NULL, *o, *in, *by_status;
	char *text = NULL, le[32];
	size_t m, a, c, base;
	int rc = 0;

	if ((root = json_object()) == NULL)
		return NULL;
	rc |= json_object_set_new(root, "version", json_string(PACKAGE_VERSION));
	metrics_states(states);
	o = json_object();
	rc |= json_object_set_new(root, "responders", o);
	for (a = 0; a < APP_RESP__MAX && o != NULL; a++)
		rc |= metrics_jset(o, metrics_state_v[a], states[a]);
	/* The SPEC's "requests by status", whatever their kind. */
	by_status = json_object();
	rc |= json_object_set_new(root, "requests_by_status", by_status);
	for (m = 0, base = 0; m < APP_METRIC__MAX; m++) {
		const struct metrics_family *f = &metrics_families[m];
		const _Atomic uint64_t *cell = &metrics_cells[base];
		unsigned na = f->a != NULL ? f->a->n : 1;
		unsigned nb = f->b != NULL ? f->b->n : 1;

		base += metrics_ncells(f);
		if (f->type == METRICS_HISTOGRAM) {
			metrics_histogram(cell, cum, &sum, &count);
			o = json_object();
			in = json_object();
			rc |= json_object_set_new(root, f->name, o);
			if (o == NULL || in == NULL) {
				json_decref(in);
				rc = -1;
				break;
			}
			rc |= metrics_jset(o, "count", count);
			rc |= json_object_set_new(o, "sum", json_real((double)sum /
			    1e6));
			rc |= json_object_set_new(o, "buckets", in);
			for (a = 0; a < METRICS_NBUCKETS; a++) {
				snprintf(le, sizeof(le), "%g", metrics_buckets[a]);
				rc |= metrics_jset(in, le, cum[a]);
			}
			rc |= metrics_jset(in, "+Inf", count);
			continue;
		}
		if (f->a == NULL) {
			rc |= metrics_jset(root, f->name, atomic_load(&cell[0]));
			continue;
		}
		o = json_object();
		rc |= json_object_set_new(root, f->name, o);
		for (a = 0; a < na && o != NULL; a++) {
			if (f->b == NULL) {
				rc |= metrics_jset(o, f->a->values[a],
				    atomic_load(&cell[a]));
				continue;
			}
			in = NULL;
			for (c = 0; c < nb; c++) {
				uint64_t v = atomic_load(&cell[a * nb + c]);
				if (f->sparse && v == 0)
					continue;
				if (in == NULL) {
					in = json_object();
					rc |= json_object_set_new(o,
					    f->a->values[a], in);
					if (in == NULL)
						break;
				}
				rc |= metrics_jset(in, f->b->values[c], v);
				if (m == APP_METRIC_REQUESTS && by_status != NULL) {
					json_t *s = json_object_get(by_status,
					    f->a->values[a]);
					rc |= metrics_jset(by_status,
					    f->a->values[a], v +
					    (uint64_t)json_integer_value(s));
				}
			}
		}
	}
	if (rc == 0)
		text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return text;
}

char *
app_metrics_render(int prometheus)
{
	if (metrics_cells == NULL)
		return NULL;
	return prometheus ? metrics_prometheus() : metrics_json();
}
