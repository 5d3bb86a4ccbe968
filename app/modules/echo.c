/*
 * echo - the smallest useful module: action "echo" answers
 * {"data":{"echo":<data>},"type":"data"}.  Build it out of tree with
 *   cc -shared -fPIC $(pkg-config --cflags botmatic-module) echo.c -o echo.so
 */
#include <botmatic/module.h>

static enum bm_rc
echo_action(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	(void)ctx;
	(void)arg;
	/* "O" takes a new reference to data: the reply owns its copy. */
	*reply = json_pack("{s:{s:O}, s:s}", "data", "echo", data, "type",
	    "data");
	return *reply != NULL ? BM_OK : BM_ERROR;
}

static int
echo_init(const struct bm_host *host, struct bm_reg *reg)
{
	return host->reg_action(reg, "echo", echo_action, NULL);
}

BM_MODULE_DECLARE(
	.name = "echo",
	.version = "1.0",
	.init = echo_init,
);
