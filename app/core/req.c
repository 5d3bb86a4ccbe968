#include "config.h"

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

struct app_req_block {
	struct app_req_block *next;
	alignas(max_align_t) unsigned char data[];
};

void
app_req_init(struct bm_req *req, struct app_env *env, const char *id)
{
	req->env = env;
	snprintf(req->id, sizeof(req->id), "%s", id);
	req->install_id[0] = '\0';
	req->blocks = NULL;
	req->used = 0;
}

void *
app_req_alloc(struct bm_req *req, size_t size)
{
	struct app_req_block *b;

	if (size == 0)
		size = 1;
	if (size > APP_REQ_ARENA_MAX - req->used)
		return NULL;
	if ((b = malloc(sizeof(*b) + size)) == NULL)
		return NULL;
	b->next = req->blocks;
	req->blocks = b;
	req->used += size;
	return b->data;
}

void
app_req_release(struct bm_req *req)
{
	struct app_req_block *b, *next;

	for (b = req->blocks; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	req->blocks = NULL;
	req->used = 0;
}
