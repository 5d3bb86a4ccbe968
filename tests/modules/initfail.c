/* A module whose init fails: the start must stop, naming it. */
#include <botmatic/module.h>

static int
initfail_init(const struct bm_host *host, struct bm_reg *reg)
{
	(void)reg;
	host->log(NULL, BM_LOG_ERROR, "initfail: refusing to start");
	return -1;
}

BM_MODULE_DECLARE(
	.name = "initfail",
	.init = initfail_init,
);
