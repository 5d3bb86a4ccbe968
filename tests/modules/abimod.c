/* A module built for another ABI: the loader must refuse it. */
#include <botmatic/module.h>

static int
abi_init(const struct bm_host *host, struct bm_reg *reg)
{
	(void)host;
	(void)reg;
	return 0;
}

__attribute__((visibility("default")))
const struct bm_module bm_module_entry = {
	.size = sizeof(struct bm_module),
	.abi = BM_MODULE_ABI + 98,
	.name = "abimod",
	.init = abi_init,
};
