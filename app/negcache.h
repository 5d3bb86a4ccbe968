/*
 * negcache.h - tokens Botmatic refused, remembered for a short time by
 * every responder at once (BM_AUTH=validate), so a flood of requests with a
 * bad token does not become a flood of calls to Botmatic.
 *
 * The table lives in memory the master maps shared before forking.  It
 * holds keyed 64-bit hashes, never tokens; a lost race between two
 * responders costs at most one extra validation.
 */
#ifndef APP_NEGCACHE_H
#define APP_NEGCACHE_H

#include <stdint.h>

#define APP_NEGCACHE_SLOTS 4096

struct app_negcache;

/* Maps a new table (MAP_SHARED); NULL on failure.  Call before fork. */
struct app_negcache *app_negcache_new(void);
void app_negcache_free(struct app_negcache *nc);

/* Remembers that token was refused until now_s + ttl_s. */
void app_negcache_put(struct app_negcache *nc, const char *token,
    int64_t now_s, unsigned ttl_s);

/* Returns 1 when token was refused and the refusal has not expired. */
int app_negcache_hit(struct app_negcache *nc, const char *token,
    int64_t now_s);

#endif
