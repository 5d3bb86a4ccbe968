/*
 * host/host.h - handler modules: the loader (host/loader.c) and the
 * services table every module and built-in reaches the server through
 * (host/services.c, struct bm_host of <botmatic/module.h>, the only
 * installed header).  The services call into dispatch (the registry),
 * keystore, outbound and sync.  Depends on every part below server/.
 *
 * Modules are loaded in the master before fork: dlopen(RTLD_NOW |
 * RTLD_LOCAL) of a file that is not group- or world-writable, exactly one
 * symbol (bm_module_entry), the ABI checked, the struct copied, init()
 * called with the registration handle.  Any failure stops the start with
 * one line naming the module and the reason.
 */
#ifndef APP_HOST_H
#define APP_HOST_H

#include <stddef.h>

#include <botmatic/module.h>

#include "core/core.h"
#include "dispatch/dispatch.h"
#include "sync/sync.h"
#include "services/services.h"

struct app_modules;

/*
 * Loads every module of conf->modules, registering into reg.  On success
 * stores the loaded set in *out (unload with app_modules_unload) and
 * returns 0; on failure unloads what was loaded, writes
 * "<path>: <reason>" into err and returns -1.
 */
int app_modules_load(const struct app_conf *conf, struct app_registry *reg,
    struct app_modules **out, char *err, size_t errlen);

/* Runs init_process of every module in a new responder; 0 or -1 (logged). */
int app_modules_init_process(struct app_modules *mods);

/* Runs exit_process of every module in a stopping responder. */
void app_modules_exit_process(struct app_modules *mods);

/* Runs fini and dlcloses every module (master); mods may be NULL. */
void app_modules_unload(struct app_modules *mods);

/* The services table every module and context sees (static storage). */
const struct bm_host *app_host(void);

#endif
