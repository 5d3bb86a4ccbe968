#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch.h"

/* Longest pattern or name accepted: names on the wire are bounded too. */
#define REG_KEY_MAX 256

struct app_registry *
app_registry_new(void)
{
	return calloc(1, sizeof(struct app_registry));
}

static void
reg_handlers_free(struct app_handler *h, size_t n, int compiled)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (compiled)
			regfree(&h[i].re);
		free(h[i].module);
		free(h[i].key);
	}
	free(h);
}

static void
reg_hooks_free(struct app_hook *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(h[i].module);
	free(h);
}

void
app_registry_free(struct app_registry *reg)
{
	size_t i;

	if (reg == NULL)
		return;
	reg_handlers_free(reg->actions, reg->nactions, 1);
	reg_handlers_free(reg->events, reg->nevents, 0);
	reg_hooks_free(reg->installs, reg->ninstalls);
	reg_hooks_free(reg->uninstalls, reg->nuninstalls);
	for (i = 0; i < reg->nauths; i++) {
		free(reg->auths[i].module);
		free(reg->auths[i].name);
	}
	free(reg->auths);
	for (i = 0; i < reg->ntransforms; i++) {
		free(reg->transforms[i].module);
		free(reg->transforms[i].name);
	}
	free(reg->transforms);
	for (i = 0; i < reg->nconsumers; i++) {
		free(reg->consumers[i].module);
		free(reg->consumers[i].name);
	}
	free(reg->consumers);
	for (i = 0; i < reg->nvalidators; i++)
		free(reg->validators[i].module);
	free(reg->validators);
	reg_handlers_free(reg->ext_events, reg->next_events, 0);
	if (reg->hook_ops != NULL)
		free(reg->hook_ops->module);
	free(reg->hook_ops);
	free(reg);
}

/* Grows *v (of n elements of size sz) by one zeroed element. */
static void *
reg_grow(void *v, size_t n, size_t sz)
{
	char *nv = realloc(v, (n + 1) * sz);

	if (nv != NULL)
		memset(nv + n * sz, 0, sz);
	return nv;
}

static int
reg_check_key(const char *what, const char *key, char *err, size_t errlen)
{
	size_t len = key == NULL ? 0 : strlen(key);

	if (len == 0 || len > REG_KEY_MAX) {
		snprintf(err, errlen, "%s must be 1 to %d bytes", what,
		    REG_KEY_MAX);
		return -1;
	}
	return 0;
}

int
app_registry_add_action(struct app_registry *reg, const char *module,
    const char *pattern, bm_handler_fn fn, void *arg, char *err,
    size_t errlen)
{
	char anchored[REG_KEY_MAX + 8];
	struct app_handler *v, *h;
	int rc;

	if (fn == NULL || reg_check_key("action pattern", pattern, err,
	    errlen) < 0) {
		if (fn == NULL)
			snprintf(err, errlen, "action handler is NULL");
		return -1;
	}
	if ((v = reg_grow(reg->actions, reg->nactions, sizeof(*v))) == NULL)
		goto nomem;
	reg->actions = v;
	h = &v[reg->nactions];
	/* The whole name must match, as ^pattern$ did in the Node library. */
	snprintf(anchored, sizeof(anchored), "^(%s)$", pattern);
	if ((rc = regcomp(&h->re, anchored, REG_EXTENDED | REG_NOSUB)) != 0) {
		char msg[128];
		regerror(rc, &h->re, msg, sizeof(msg));
		snprintf(err, errlen, "invalid action pattern \"%s\": %s",
		    pattern, msg);
		return -1;
	}
	if ((h->module = strdup(module)) == NULL ||
	    (h->key = strdup(pattern)) == NULL) {
		regfree(&h->re);
		free(h->module);
		free(h->key);
		goto nomem;
	}
	h->fn = fn;
	h->arg = arg;
	reg->nactions++;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int
app_registry_add_event(struct app_registry *reg, const char *module,
    const char *name, bm_handler_fn fn, void *arg, char *err, size_t errlen)
{
	struct app_handler *v, *h;

	if (reg_check_key("event name", name, err, errlen) < 0)
		return -1;
	if (fn == NULL) {
		snprintf(err, errlen, "event handler is NULL");
		return -1;
	}
	if ((v = reg_grow(reg->events, reg->nevents, sizeof(*v))) == NULL)
		goto nomem;
	reg->events = v;
	h = &v[reg->nevents];
	if ((h->module = strdup(module)) == NULL ||
	    (h->key = strdup(name)) == NULL) {
		free(h->module);
		goto nomem;
	}
	h->fn = fn;
	h->arg = arg;
	reg->nevents++;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int
app_registry_add_ext_event(struct app_registry *reg, const char *module,
    const char *type, bm_handler_fn fn, void *arg, char *err, size_t errlen)
{
	struct app_handler *v, *h;

	if (reg_check_key("integration event type", type, err, errlen) < 0)
		return -1;
	if (fn == NULL) {
		snprintf(err, errlen, "integration event handler is NULL");
		return -1;
	}
	if ((v = reg_grow(reg->ext_events, reg->next_events, sizeof(*v))) ==
	    NULL)
		goto nomem;
	reg->ext_events = v;
	h = &v[reg->next_events];
	if ((h->module = strdup(module)) == NULL ||
	    (h->key = strdup(type)) == NULL) {
		free(h->module);
		goto nomem;
	}
	h->fn = fn;
	h->arg = arg;
	reg->next_events++;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int
app_registry_add_hook_ops(struct app_registry *reg, const char *module,
    const struct bm_hook_ops *ops, char *err, size_t errlen)
{
	struct app_hook_ops *h;
	size_t n;

	if (ops == NULL || ops->size < offsetof(struct bm_hook_ops, arg)) {
		snprintf(err, errlen, "webhook operations: bad struct size");
		return -1;
	}
	if (reg->hook_ops != NULL) {
		snprintf(err, errlen, "webhook operations: module %s "
		    "registered them already", reg->hook_ops->module);
		return -1;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (h->module = strdup(module)) == NULL) {
		free(h);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = ops->size < sizeof(h->ops) ? ops->size : sizeof(h->ops);
	memcpy(&h->ops, ops, n);
	h->ops.size = sizeof(h->ops);
	if (h->ops.list == NULL || h->ops.create == NULL ||
	    h->ops.del == NULL) {
		free(h->module);
		free(h);
		snprintf(err, errlen, "webhook operations: list, create and "
		    "del are required");
		return -1;
	}
	reg->hook_ops = h;
	return 0;
}

int
app_registry_add_hook(struct app_registry *reg, int uninstall,
    const char *module, bm_hook_fn fn, void *arg, char *err, size_t errlen)
{
	struct app_hook **v = uninstall ? &reg->uninstalls : &reg->installs;
	size_t *n = uninstall ? &reg->nuninstalls : &reg->ninstalls;
	struct app_hook *nv;

	if (fn == NULL) {
		snprintf(err, errlen, "hook is NULL");
		return -1;
	}
	if ((nv = reg_grow(*v, *n, sizeof(*nv))) == NULL)
		goto nomem;
	*v = nv;
	if ((nv[*n].module = strdup(module)) == NULL)
		goto nomem;
	nv[*n].fn = fn;
	nv[*n].arg = arg;
	(*n)++;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int
app_registry_add_settings_validator(struct app_registry *reg,
    const char *module, bm_settings_validate_fn fn, void *arg, char *err,
    size_t errlen)
{
	struct app_settings_validator *nv;

	if (fn == NULL) {
		snprintf(err, errlen, "settings validator is NULL");
		return -1;
	}
	if ((nv = reg_grow(reg->validators, reg->nvalidators,
	    sizeof(*nv))) == NULL)
		goto nomem;
	reg->validators = nv;
	if ((nv[reg->nvalidators].module = strdup(module)) == NULL)
		goto nomem;
	nv[reg->nvalidators].fn = fn;
	nv[reg->nvalidators].arg = arg;
	reg->nvalidators++;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int
app_registry_add_auth(struct app_registry *reg, const char *module,
    const char *name, bm_auth_fn fn, void *arg, char *err, size_t errlen)
{
	struct app_authfn *v;

	if (reg_check_key("auth name", name, err, errlen) < 0)
		return -1;
	if (fn == NULL) {
		snprintf(err, errlen, "auth function is NULL");
		return -1;
	}
	if (app_registry_auth(reg, name) != NULL) {
		snprintf(err, errlen, "auth function \"%s\" already registered",
		    name);
		return -1;
	}
	if ((v = reg_grow(reg->auths, reg->nauths, sizeof(*v))) == NULL)
		goto nomem;
	reg->auths = v;
	if ((v[reg->nauths].module = strdup(module)) == NULL ||
	    (v[reg->nauths].name = strdup(name)) == NULL) {
		free(v[reg->nauths].module);
		goto nomem;
	}
	v[reg->nauths].fn = fn;
	v[reg->nauths].arg = arg;
	reg->nauths++;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int
app_registry_add_transform(struct app_registry *reg, const char *module,
    const char *name, bm_transform_fn fn, char *err, size_t errlen)
{
	struct app_transform *v;
	size_t i;

	if (reg_check_key("transform name", name, err, errlen) < 0)
		return -1;
	if (fn == NULL) {
		snprintf(err, errlen, "transform is NULL");
		return -1;
	}
	for (i = 0; i < reg->ntransforms; i++)
		if (strcmp(reg->transforms[i].name, name) == 0) {
			snprintf(err, errlen, "transform \"%s\" already "
			    "registered by %s", name, reg->transforms[i].module);
			return -1;
		}
	if ((v = reg_grow(reg->transforms, reg->ntransforms, sizeof(*v))) ==
	    NULL)
		goto nomem;
	reg->transforms = v;
	if ((v[reg->ntransforms].module = strdup(module)) == NULL ||
	    (v[reg->ntransforms].name = strdup(name)) == NULL) {
		free(v[reg->ntransforms].module);
		goto nomem;
	}
	v[reg->ntransforms].fn = fn;
	reg->ntransforms++;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

const struct app_handler *
app_registry_next(const struct app_registry *reg, int is_action,
    const char *name, size_t *pos)
{
	const struct app_handler *v = is_action ? reg->actions : reg->events;
	size_t n = is_action ? reg->nactions : reg->nevents;

	for (; *pos < n; (*pos)++) {
		const struct app_handler *h = &v[*pos];
		int match = is_action ?
		    regexec(&h->re, name, 0, NULL, 0) == 0 :
		    strcmp(h->key, name) == 0;
		if (match) {
			(*pos)++;
			return h;
		}
	}
	return NULL;
}

const struct app_authfn *
app_registry_auth(const struct app_registry *reg, const char *name)
{
	size_t i;

	for (i = 0; i < reg->nauths; i++)
		if (strcmp(reg->auths[i].name, name) == 0)
			return &reg->auths[i];
	return NULL;
}

int
app_registry_add_consumer(struct app_registry *reg, const char *module,
    const char *name, const struct bm_consumer *c, char *err, size_t errlen)
{
	struct app_consumer *v;
	size_t size;

	if (reg_check_key("consumer name", name, err, errlen) < 0)
		return -1;
	if (c == NULL || c->size < offsetof(struct bm_consumer, del) +
	    sizeof(c->del) || c->create == NULL || c->get == NULL ||
	    c->get_by_email == NULL || c->list_page == NULL ||
	    c->update == NULL || c->del == NULL) {
		snprintf(err, errlen, "consumer \"%s\": every function is "
		    "required", name);
		return -1;
	}
	if (app_registry_consumer(reg, name) != NULL) {
		snprintf(err, errlen, "consumer \"%s\" already registered", name);
		return -1;
	}
	if ((v = reg_grow(reg->consumers, reg->nconsumers, sizeof(*v))) == NULL)
		goto nomem;
	reg->consumers = v;
	size = c->size < sizeof(v->c) ? c->size : sizeof(v->c);
	memcpy(&v[reg->nconsumers].c, c, size);
	if ((v[reg->nconsumers].module = strdup(module)) == NULL ||
	    (v[reg->nconsumers].name = strdup(name)) == NULL) {
		free(v[reg->nconsumers].module);
		goto nomem;
	}
	reg->nconsumers++;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

const struct app_consumer *
app_registry_consumer(const struct app_registry *reg, const char *name)
{
	size_t i;

	for (i = 0; i < reg->nconsumers; i++)
		if (strcmp(reg->consumers[i].name, name) == 0)
			return &reg->consumers[i];
	return NULL;
}
