/*
 * registry.h - what modules and built-ins registered: action patterns,
 * event names, install/uninstall hooks, auth functions and transforms.
 *
 * Built in the master before fork (regexes are compiled once, there) and
 * only read by responders.  Strings passed in are copied.
 */
#ifndef APP_REGISTRY_H
#define APP_REGISTRY_H

#include <regex.h>
#include <stddef.h>

#include <botmatic/module.h>

struct app_handler {
	char *module;        /* owner's name, for logs */
	char *key;           /* the pattern or the event name */
	regex_t re;          /* compiled ^(key)$, actions only */
	bm_handler_fn fn;
	void *arg;
};

struct app_hook {
	char *module;
	bm_hook_fn fn;
	void *arg;
};

struct app_authfn {
	char *module;
	char *name;
	bm_auth_fn fn;
	void *arg;
};

struct app_transform {
	char *module;
	char *name;
	bm_transform_fn fn;
};

struct app_consumer {
	char *module;
	char *name;
	struct bm_consumer c;   /* copied, zero-filled past the module's size */
};

struct app_registry {
	struct app_handler *actions;  size_t nactions;
	struct app_handler *events;   size_t nevents;
	struct app_hook *installs;    size_t ninstalls;
	struct app_hook *uninstalls;  size_t nuninstalls;
	struct app_authfn *auths;     size_t nauths;
	struct app_transform *transforms; size_t ntransforms;
	struct app_consumer *consumers; size_t nconsumers;
};

/* Returns a new, empty registry (free with app_registry_free), or NULL. */
struct app_registry *app_registry_new(void);
void app_registry_free(struct app_registry *reg);

/*
 * Each adds one entry owned by module.  Returns 0, or -1 with the reason in
 * err (invalid regex, empty or duplicate name, out of memory).
 */
int app_registry_add_action(struct app_registry *reg, const char *module,
    const char *pattern, bm_handler_fn fn, void *arg, char *err, size_t errlen);
int app_registry_add_event(struct app_registry *reg, const char *module,
    const char *name, bm_handler_fn fn, void *arg, char *err, size_t errlen);
int app_registry_add_hook(struct app_registry *reg, int uninstall,
    const char *module, bm_hook_fn fn, void *arg, char *err, size_t errlen);
int app_registry_add_auth(struct app_registry *reg, const char *module,
    const char *name, bm_auth_fn fn, void *arg, char *err, size_t errlen);
int app_registry_add_transform(struct app_registry *reg, const char *module,
    const char *name, bm_transform_fn fn, char *err, size_t errlen);

int app_registry_add_consumer(struct app_registry *reg, const char *module,
    const char *name, const struct bm_consumer *c, char *err, size_t errlen);

/*
 * The next handler for kind ("event"/"action") and name after index *pos
 * (start with *pos = 0), in registration order; NULL when none is left.
 * Borrowed from the registry.
 */
const struct app_handler *app_registry_next(const struct app_registry *reg,
    int is_action, const char *name, size_t *pos);

/* The consumer registered under name, or NULL. */
const struct app_consumer *app_registry_consumer(const struct app_registry *reg,
    const char *name);

/* The auth function registered under name, or NULL. */
const struct app_authfn *app_registry_auth(const struct app_registry *reg,
    const char *name);

#endif
