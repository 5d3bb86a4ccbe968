/*
 * req.h - per-request memory: an arena freed in one go when the request
 * ends, after FCGX_Finish_r.  Nothing allocated here outlives the request.
 */
#ifndef APP_REQ_H
#define APP_REQ_H

#include <stddef.h>

#include <botmatic/module.h>

/* Most a request may allocate from its arena (modules included). */
#define APP_REQ_ARENA_MAX (64UL * 1024 * 1024)

struct app_req_block;
struct app_env;

/* Work a request asks for after its answer has gone out. */
struct app_deferred {
	int import;               /* import every external contact */
	char token[4096];         /* of this installation (zeroed after) */
	char reqid[72];           /* the request's id, for the log */
};

struct bm_req {
	struct app_env *env;          /* the responder's services (borrowed) */
	struct app_deferred *deferred;/* NULL, or where to ask for later work */
	char id[72];                  /* request id, for logs and X-Request-Id */
	char install_id[40];          /* its installation's id once known, or "" */
	struct app_req_block *blocks; /* arena allocations, newest first */
	size_t used;                  /* bytes allocated from the arena */
};

/* Starts a request of responder env: sets its id, empties the arena. */
void app_req_init(struct bm_req *req, struct app_env *env, const char *id);

/*
 * Returns size bytes (aligned for any type) freed by app_req_release, or
 * NULL when out of memory or over APP_REQ_ARENA_MAX.
 */
void *app_req_alloc(struct bm_req *req, size_t size);

/* Frees every allocation of the request. */
void app_req_release(struct bm_req *req);

#endif
