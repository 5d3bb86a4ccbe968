/*
 * outbound/breaker.c - the circuit breaker: one counter of consecutive
 * transient failures per target, in anonymous shared memory mapped by the
 * master before fork, so every responder and delivery process sees the
 * same state.  Atomics only: no lock a dying process could hold.
 */
#include "config.h"

#include <stdatomic.h>
#include <sys/mman.h>

#include "outbound/outbound.h"

struct breaker_state {
	_Atomic unsigned fails[APP_TARGET__MAX];
};

static struct breaker_state *breaker;
static unsigned breaker_threshold;

static const char *const breaker_names[APP_TARGET__MAX] = {
	"the external service", "Botmatic"
};

int
app_breaker_init(unsigned threshold)
{
	void *p;

	p = mmap(NULL, sizeof(*breaker), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	breaker = p;
	breaker_threshold = threshold > 0 ? threshold : 1;
	return 0;
}

void
app_breaker_free(void)
{
	if (breaker != NULL)
		munmap(breaker, sizeof(*breaker));
	breaker = NULL;
}

int
app_breaker_open(enum app_target t)
{
	if (breaker == NULL || t >= APP_TARGET__MAX)
		return 0;
	return atomic_load(&breaker->fails[t]) >= breaker_threshold;
}

void
app_breaker_note(enum app_target t, int ok)
{
	unsigned before;

	if (breaker == NULL || t >= APP_TARGET__MAX)
		return;
	if (ok) {
		before = atomic_exchange(&breaker->fails[t], 0);
		if (before >= breaker_threshold)
			app_log(BM_LOG_INFO, NULL, "breaker", "%s answers again: "
			    "contact events are tried inline again",
			    breaker_names[t]);
		return;
	}
	before = atomic_fetch_add(&breaker->fails[t], 1);
	if (before + 1 == breaker_threshold)
		app_log(BM_LOG_WARN, NULL, "breaker", "%s failed %u times in a "
		    "row: contact events are queued at once until it answers",
		    breaker_names[t], breaker_threshold);
}
