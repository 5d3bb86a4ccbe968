#include "config.h"

#include <stdio.h>

#include "store/store_int.h"

int
store__redis_open(struct store **out, const struct store_opts *o, char *err,
    size_t errlen)
{
	(void)o;
	*out = NULL;
	snprintf(err, errlen, "BM_STORE=redis: not built in");
	return STORE_EINVAL;
}
