/*
 * store/redis-todo.c - what the Redis backend does not do yet: each says
 * so (STORE_ERROR with a clear message) rather than pretend.
 */
#include "config.h"

#include <stdio.h>

#include "store/redis_int.h"

static int
rd_unsupported(struct store *s, const char *what)
{
	snprintf(s->err, sizeof(s->err), "redis: %s is not supported on "
	    "BM_STORE=redis yet", what);
	return STORE_ERROR;
}

int
store__rd_service_put(struct store *s, const struct store_service *in)
{
	(void)in;
	return rd_unsupported(s, "service_put");
}

int
store__rd_service_get(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user,
    struct store_service **out)
{
	(void)install_id;
	(void)service;
	(void)group;
	(void)user;
	(void)out;
	return rd_unsupported(s, "service_get");
}

int
store__rd_service_lease(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, uint64_t gen,
    int64_t now, unsigned lease_s, int *got)
{
	(void)install_id;
	(void)service;
	(void)group;
	(void)user;
	(void)gen;
	(void)now;
	(void)lease_s;
	(void)got;
	return rd_unsupported(s, "service_lease");
}

int
store__rd_service_refreshed(struct store *s, const struct store_service *in,
    uint64_t gen)
{
	(void)in;
	(void)gen;
	return rd_unsupported(s, "service_refreshed");
}

int
store__rd_service_lease_end(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, uint64_t gen,
    int needs_link)
{
	(void)install_id;
	(void)service;
	(void)group;
	(void)user;
	(void)gen;
	(void)needs_link;
	return rd_unsupported(s, "service_lease_end");
}

int
store__rd_service_delete(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user)
{
	(void)install_id;
	(void)service;
	(void)group;
	(void)user;
	return rd_unsupported(s, "service_delete");
}

int
store__rd_service_foreach(struct store *s, const char *install_id,
    store_service_fn fn, void *arg)
{
	(void)install_id;
	(void)fn;
	(void)arg;
	return rd_unsupported(s, "service_foreach");
}

int
store__rd_oauth_link_create(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, int64_t now,
    unsigned ttl_s, char id[STORE_OAUTH_ID_LEN + 1])
{
	(void)install_id;
	(void)service;
	(void)group;
	(void)user;
	(void)now;
	(void)ttl_s;
	(void)id;
	return rd_unsupported(s, "oauth_link_create");
}

int
store__rd_oauth_link_take(struct store *s, const char *link,
    const char *service, int64_t now, unsigned ttl_s,
    char state[STORE_OAUTH_ID_LEN + 1],
    char verifier[STORE_OAUTH_VERIFIER_LEN + 1])
{
	(void)link;
	(void)service;
	(void)now;
	(void)ttl_s;
	(void)state;
	(void)verifier;
	return rd_unsupported(s, "oauth_link_take");
}

int
store__rd_oauth_state_take(struct store *s, const char *state,
    const char *service, int64_t now, struct store_service **bound,
    char verifier[STORE_OAUTH_VERIFIER_LEN + 1])
{
	(void)state;
	(void)service;
	(void)now;
	(void)bound;
	(void)verifier;
	return rd_unsupported(s, "oauth_state_take");
}

int
store__rd_rekey(struct store *s, const char *new_key_file, size_t *n)
{
	(void)new_key_file;
	(void)n;
	return rd_unsupported(s, "rekey");
}
