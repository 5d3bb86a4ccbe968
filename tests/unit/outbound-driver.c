/*
 * outbound-driver - runs outbound calls for tests/integration/test-outbound.py.
 *
 *   outbound-driver [repeat N] botmatic OP TOKEN ARGS...
 *   outbound-driver [repeat N] ext OP ARGS...
 *
 * The configuration comes from the environment, as the server reads it
 * (BM_DB_HOME must be set, to anything).  The operation runs N times (1
 * without "repeat") in this one process with the same clients, as a
 * responder would run them, and each result is printed on its own line of
 * stdout as JSON.  Logs go to stderr.  Exit status: 0 when every call
 * returned a result (successful or not), 1 when out of memory or the
 * clients cannot be made, 2 on a usage error.
 *
 * botmatic OPs: contact_create TOKEN JSON, contacts_create TOKEN JSON,
 * contact_update TOKEN ID JSON, contacts_update TOKEN JSON,
 * contact_delete TOKEN ID, properties_create TOKEN JSON,
 * campaign_event TOKEN NAME JSON, validate TOKEN ({"valid":true|false}),
 * bots_list TOKEN, bot_get TOKEN ID, bot_update TOKEN ID JSON.
 * ext OPs: create JSON, get ID, get_by_email EMAIL, list_page PAGE LIMIT,
 * update ID JSON, delete ID.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "host/host.h"
#include "mapping/mapping.h"
#include "outbound/outbound.h"

extern char **environ;

static void
usage(void)
{
	fputs("usage: outbound-driver [repeat N] botmatic OP TOKEN ARGS...\n"
	    "       outbound-driver [repeat N] ext OP ARGS...\n", stderr);
}

/* argv[i] parsed as JSON, or NULL (reported). */
static json_t *
arg_json(int argc, char **argv, int i)
{
	json_error_t je;
	json_t *v;

	if (i >= argc) {
		usage();
		return NULL;
	}
	if ((v = json_loads(argv[i], JSON_DECODE_ANY, &je)) == NULL)
		fprintf(stderr, "outbound-driver: argument %d: %s\n", i,
		    je.text);
	return v;
}

static const char *
arg_str(int argc, char **argv, int i)
{
	if (i >= argc) {
		usage();
		return NULL;
	}
	return argv[i];
}

/* One Botmatic call; *result new, or NULL on a usage error (*usage set). */
static json_t *
run_botmatic(struct app_botmatic *bm, int argc, char **argv, int *bad)
{
	const char *op, *token, *id, *name;
	json_t *arg = NULL, *result = NULL;
	const char *reqid = "outbound-test";

	*bad = 1;
	if ((op = arg_str(argc, argv, 0)) == NULL ||
	    (token = arg_str(argc, argv, 1)) == NULL)
		goto out;
	if (strcmp(op, "validate") == 0) {
		*bad = 0;
		result = json_pack("{s:b}", "valid",
		    app_botmatic_validate(bm, reqid, token));
	} else if (strcmp(op, "contact_create") == 0) {
		if ((arg = arg_json(argc, argv, 2)) == NULL)
			goto out;
		*bad = 0;
		result = app_botmatic_contact_create(bm, reqid, token, arg);
	} else if (strcmp(op, "contacts_create") == 0) {
		if ((arg = arg_json(argc, argv, 2)) == NULL)
			goto out;
		*bad = 0;
		result = app_botmatic_contacts_create(bm, reqid, token, arg);
	} else if (strcmp(op, "contact_update") == 0) {
		if ((id = arg_str(argc, argv, 2)) == NULL ||
		    (arg = arg_json(argc, argv, 3)) == NULL)
			goto out;
		*bad = 0;
		result = app_botmatic_contact_update(bm, reqid, token, id, arg);
	} else if (strcmp(op, "contacts_update") == 0) {
		if ((arg = arg_json(argc, argv, 2)) == NULL)
			goto out;
		*bad = 0;
		result = app_botmatic_contacts_update(bm, reqid, token, arg);
	} else if (strcmp(op, "contact_delete") == 0) {
		if ((id = arg_str(argc, argv, 2)) == NULL)
			goto out;
		*bad = 0;
		result = app_botmatic_contact_delete(bm, reqid, token, id);
	} else if (strcmp(op, "properties_create") == 0) {
		if ((arg = arg_json(argc, argv, 2)) == NULL)
			goto out;
		*bad = 0;
		result = app_botmatic_properties_create(bm, reqid, token, arg);
	} else if (strcmp(op, "campaign_event") == 0) {
		if ((name = arg_str(argc, argv, 2)) == NULL ||
		    (arg = arg_json(argc, argv, 3)) == NULL)
			goto out;
		*bad = 0;
		result = app_botmatic_campaign_event(bm, reqid, token, name,
		    arg);
	} else if (strcmp(op, "bots_list") == 0) {
		*bad = 0;
		result = app_botmatic_bots_list(bm, reqid, token);
	} else if (strcmp(op, "bot_get") == 0) {
		if ((id = arg_str(argc, argv, 2)) == NULL)
			goto out;
		*bad = 0;
		result = app_botmatic_bot_get(bm, reqid, token, id);
	} else if (strcmp(op, "bot_update") == 0) {
		if ((id = arg_str(argc, argv, 2)) == NULL ||
		    (arg = arg_json(argc, argv, 3)) == NULL)
			goto out;
		*bad = 0;
		result = app_botmatic_bot_update(bm, reqid, token, id, arg);
	} else {
		usage();
	}
out:
	json_decref(arg);
	return result;
}

/* One consumer call, as run_botmatic. */
static json_t *
run_ext(const struct bm_consumer *c, struct bm_ctx *ctx, int argc,
    char **argv, int *bad)
{
	const char *op, *id;
	json_t *arg = NULL, *result = NULL;
	unsigned long page, limit;

	*bad = 1;
	if ((op = arg_str(argc, argv, 0)) == NULL)
		goto out;
	ctx->name = op;
	if (strcmp(op, "create") == 0) {
		if ((arg = arg_json(argc, argv, 1)) == NULL)
			goto out;
		*bad = 0;
		result = c->create(ctx, arg, c->arg);
	} else if (strcmp(op, "get") == 0) {
		if ((id = arg_str(argc, argv, 1)) == NULL)
			goto out;
		*bad = 0;
		result = c->get(ctx, id, c->arg);
	} else if (strcmp(op, "get_by_email") == 0) {
		if ((id = arg_str(argc, argv, 1)) == NULL)
			goto out;
		*bad = 0;
		result = c->get_by_email(ctx, id, c->arg);
	} else if (strcmp(op, "list_page") == 0) {
		if (arg_str(argc, argv, 1) == NULL ||
		    arg_str(argc, argv, 2) == NULL)
			goto out;
		page = strtoul(argv[1], NULL, 10);
		limit = strtoul(argv[2], NULL, 10);
		*bad = 0;
		result = c->list_page(ctx, (unsigned)page, (unsigned)limit,
		    c->arg);
	} else if (strcmp(op, "update") == 0) {
		if ((id = arg_str(argc, argv, 1)) == NULL ||
		    (arg = arg_json(argc, argv, 2)) == NULL)
			goto out;
		*bad = 0;
		result = c->update(ctx, id, arg, c->arg);
	} else if (strcmp(op, "delete") == 0) {
		if ((id = arg_str(argc, argv, 1)) == NULL)
			goto out;
		*bad = 0;
		result = c->del(ctx, id, c->arg);
	} else {
		usage();
	}
out:
	json_decref(arg);
	return result;
}

int
main(int argc, char **argv)
{
	struct app_conf conf;
	struct app_botmatic *bm = NULL;
	struct app_extrest *x = NULL;
	struct bm_consumer consumer;
	struct bm_ctx ctx;
	char err[512], *text;
	json_t *result;
	long n = 1, i;
	int rc = 1, bad = 0, loaded = 0, curl = 0, botmatic;

	argc--, argv++;
	if (argc >= 2 && strcmp(argv[0], "repeat") == 0) {
		n = strtol(argv[1], NULL, 10);
		argc -= 2, argv += 2;
	}
	if (n < 1 || argc < 2 || (strcmp(argv[0], "botmatic") != 0 &&
	    strcmp(argv[0], "ext") != 0)) {
		usage();
		return 2;
	}
	botmatic = strcmp(argv[0], "botmatic") == 0;
	argc--, argv++;

	if (app_conf_load(&conf, environ, err, sizeof(err), NULL) < 0) {
		fprintf(stderr, "outbound-driver: %s\n", err);
		goto out;
	}
	loaded = 1;
	app_log_set_level(conf.log_level);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "outbound-driver: curl_global_init failed\n");
		goto out;
	}
	curl = 1;
	memset(&ctx, 0, sizeof(ctx));
	ctx.size = sizeof(ctx);
	ctx.request_id = "outbound-test";
	ctx.kind = "action";
	ctx.host = app_host();
	if (botmatic) {
		if ((bm = app_botmatic_new(&conf)) == NULL) {
			fprintf(stderr, "outbound-driver: app_botmatic_new "
			    "failed\n");
			goto out;
		}
	} else {
		if ((x = app_extrest_new(&conf, conf.ext_id_field, err,
		    sizeof(err))) == NULL) {
			fprintf(stderr, "outbound-driver: %s\n", err);
			goto out;
		}
		app_extrest_consumer(x, &consumer);
	}
	for (i = 0; i < n; i++) {
		result = botmatic ? run_botmatic(bm, argc, argv, &bad) :
		    run_ext(&consumer, &ctx, argc, argv, &bad);
		if (bad) {
			rc = 2;
			goto out;
		}
		if (result == NULL) {
			fprintf(stderr, "outbound-driver: out of memory\n");
			goto out;
		}
		text = map_stringify(result);
		json_decref(result);
		if (text == NULL)
			goto out;
		printf("%s\n", text);
		fflush(stdout);
		free(text);
	}
	rc = 0;
out:
	app_extrest_free(x);
	app_botmatic_free(bm);
	if (curl)
		curl_global_cleanup();
	if (loaded)
		app_conf_free(&conf);
	return rc;
}
