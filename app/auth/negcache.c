#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include <openssl/evp.h>

#include "auth/auth.h"

struct negcache_slot {
	_Atomic uint64_t hash;
	_Atomic int64_t until;
};

struct app_negcache {
	unsigned char key[32]; /* random, drawn once: the HMAC key */
	struct negcache_slot slots[APP_NEGCACHE_SLOTS];
};

/*
 * The first 64 bits of HMAC-SHA256 of the token under the table's key, as
 * the store keys tokens: the shared memory holds nothing a token can be
 * read or guessed back from.  0 is kept for "empty".
 */
static uint64_t
negcache_hash(const struct app_negcache *nc, const char *token)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t maclen = 0;
	uint64_t h = 0;
	int i;

	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, nc->key,
	    sizeof(nc->key), (const unsigned char *)token, strlen(token), mac,
	    sizeof(mac), &maclen) == NULL || maclen < 8)
		return 1; /* one slot for all: a miss costs a validation */
	for (i = 0; i < 8; i++)
		h = h << 8 | mac[i];
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
	if (getrandom(nc->key, sizeof(nc->key), 0) != sizeof(nc->key)) {
		munmap(nc, sizeof(*nc));
		return NULL;
	}
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
