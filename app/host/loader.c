#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/host.h"
#include "host/host_int.h"

struct app_module {
	char *path;
	int fd;     /* the file checked and loaded, open while it is loaded */
	void *dl;
	struct bm_module def;  /* zeroed, then min(size, ours) copied in */
};

struct app_modules {
	struct app_module *v;
	size_t n;
};

static int
module_name_ok(const char *name)
{
	size_t len = name == NULL ? 0 : strlen(name);

	return len > 0 && len <= 64 &&
	    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == len;
}

/*
 * Loads one module into m.  Returns 0, or -1 with the reason in err (the
 * caller prefixes the path).
 */
static int
module_load_one(struct app_module *m, const char *path,
    const struct app_modules *loaded, struct app_registry *registry,
    const struct app_conf *conf, char *err, size_t errlen)
{
	const struct bm_module *entry;
	struct bm_reg reg;
	char fdpath[64];
	uint32_t size;
	size_t i;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (app_module_open(path, &m->fd, err, errlen) < 0)
		goto out;
	if ((m->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/*
	 * Loaded from the descriptor that was checked: the name in /proc
	 * leads to that open file, whatever happens to path meanwhile.  It
	 * stays open while the module is loaded, so no other module gets the
	 * same name (dlopen() would take it for this one).
	 */
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", m->fd);
	if ((m->dl = dlopen(fdpath, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(err, errlen, "dlopen: %s", dlerror());
		goto out;
	}
	if ((entry = dlsym(m->dl, "bm_module_entry")) == NULL) {
		snprintf(err, errlen, "missing symbol bm_module_entry (not a "
		    "botmatic-fcgi module?)");
		goto out;
	}
	if (entry->abi != BM_MODULE_ABI) {
		snprintf(err, errlen, "ABI mismatch: module has %u, server has "
		    "%u (rebuild it against this <botmatic/module.h>)",
		    (unsigned)entry->abi, (unsigned)BM_MODULE_ABI);
		goto out;
	}
	size = entry->size;
	if (size < offsetof(struct bm_module, init) + sizeof(entry->init)) {
		snprintf(err, errlen, "bm_module_entry too small (%u bytes)",
		    (unsigned)size);
		goto out;
	}
	memcpy(&m->def, entry, size < sizeof(m->def) ? size : sizeof(m->def));
	if (!module_name_ok(m->def.name)) {
		snprintf(err, errlen, "invalid module name (want [a-z0-9_]{1,64})");
		goto out;
	}
	for (i = 0; i < loaded->n; i++)
		if (strcmp(loaded->v[i].def.name, m->def.name) == 0) {
			snprintf(err, errlen, "a module named \"%s\" is already "
			    "loaded from %s", m->def.name, loaded->v[i].path);
			goto out;
		}
	if (m->def.init == NULL) {
		snprintf(err, errlen, "no init function");
		goto out;
	}
	memset(&reg, 0, sizeof(reg));
	reg.registry = registry;
	reg.conf = conf;
	reg.module = m->def.name;
	if (m->def.init(app_host(), &reg) != 0) {
		snprintf(err, errlen, "init failed");
		goto out;
	}
	app_log(BM_LOG_INFO, NULL, "module", "%s: loaded %s %s", path,
	    m->def.name, m->def.version != NULL ? m->def.version : "");
	rc = 0;
out:
	if (rc < 0) {
		if (m->dl != NULL)
			dlclose(m->dl);
		if (m->fd >= 0)
			close(m->fd);
		free(m->path);
		memset(m, 0, sizeof(*m));
	}
	return rc;
}

int
app_modules_load(const struct app_conf *conf, struct app_registry *registry,
    struct app_modules **out, char *err, size_t errlen)
{
	struct app_modules *mods = NULL;
	char *list = NULL, *path, *save = NULL;
	char why[512];
	int rc = -1;

	if ((mods = calloc(1, sizeof(*mods))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (conf->modules == NULL) {
		rc = 0;
		goto out;
	}
	if ((list = strdup(conf->modules)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (path = strtok_r(list, ":", &save); path != NULL;
	    path = strtok_r(NULL, ":", &save)) {
		struct app_module *v;

		if ((v = realloc(mods->v, (mods->n + 1) * sizeof(*v))) ==
		    NULL) {
			snprintf(err, errlen, "%s: out of memory", path);
			goto out;
		}
		mods->v = v;
		if (module_load_one(&v[mods->n], path, mods, registry, conf, why,
		    sizeof(why)) < 0) {
			snprintf(err, errlen, "%s: %s", path, why);
			goto out;
		}
		mods->n++;
	}
	rc = 0;
out:
	free(list);
	if (rc < 0) {
		app_modules_unload(mods);
		mods = NULL;
	}
	*out = mods;
	return rc;
}

int
app_modules_init_process(struct app_modules *mods)
{
	size_t i;

	for (i = 0; i < mods->n; i++) {
		const struct bm_module *d = &mods->v[i].def;
		if (d->init_process != NULL && d->init_process(app_host()) != 0) {
			app_log(BM_LOG_ERROR, NULL, "module",
			    "%s: init_process failed", d->name);
			return -1;
		}
	}
	return 0;
}

void
app_modules_exit_process(struct app_modules *mods)
{
	size_t i;

	for (i = mods != NULL ? mods->n : 0; i > 0; i--)
		if (mods->v[i - 1].def.exit_process != NULL)
			mods->v[i - 1].def.exit_process();
}

void
app_modules_unload(struct app_modules *mods)
{
	size_t i;

	if (mods == NULL)
		return;
	for (i = mods->n; i > 0; i--) {
		struct app_module *m = &mods->v[i - 1];
		if (m->def.fini != NULL)
			m->def.fini();
		dlclose(m->dl);
		close(m->fd);
		free(m->path);
	}
	free(mods->v);
	free(mods);
}
