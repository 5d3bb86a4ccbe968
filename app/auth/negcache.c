#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "auth/auth.h"

struct negcache_slot {
	_Atomic uint64_t hash;
	_Atomic int64_t until;
};

struct app_negcache {
	uint64_t key;   /* random, drawn once: hashes are not predictable */
	struct negcache_slot slots[APP_NEGCACHE_SLOTS];
};

/* FNV-1a over the key then the token; 0 is kept for "empty". */
static uint64_t
negcache_hash(const struct app_negcache *nc, const char *token)
{
	uint64_t h = 1469598103934665603ULL;
	const unsigned char *p;
	int i;

	for (i = 0; i < 8; i++) {
		h ^= (nc->key >> (i * 8)) & 0xff;
		h *= 1099511628211ULL;
	}
	for (p = (const unsigned char *)token; *p != '\0'; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h != 0 ? h : 1;
}

struct app_negcache *
app_negcache_new(void)
{
	struct app_negcache *nc;

	nc = mmap(NULL, sizeof(*nc), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (nc == MAP_FAILED)
		return NULL;
	if (getrandom(&nc->key, sizeof(nc->key), 0) != sizeof(nc->key))
		nc->key = (uint64_t)(uintptr_t)nc ^ 0x9e3779b97f4a7c15ULL;
	return nc;
}

void
app_negcache_free(struct app_negcache *nc)
{
	if (nc != NULL)
		munmap(nc, sizeof(*nc));
}

void
app_negcache_put(struct app_negcache *nc, const char *token, int64_t now_s,
    unsigned ttl_s)
{
	struct negcache_slot *s;
	uint64_t h;

	if (nc == NULL || ttl_s == 0)
		return;
	h = negcache_hash(nc, token);
	s = &nc->slots[h % APP_NEGCACHE_SLOTS];
	atomic_store(&s->until, 0);
	atomic_store(&s->hash, h);
	atomic_store(&s->until, now_s + ttl_s);
}

int
app_negcache_hit(struct app_negcache *nc, const char *token, int64_t now_s)
{
	uint64_t h;
	struct negcache_slot *s;

	if (nc == NULL)
		return 0;
	h = negcache_hash(nc, token);
	s = &nc->slots[h % APP_NEGCACHE_SLOTS];
	return atomic_load(&s->hash) == h && atomic_load(&s->until) > now_s;
}
