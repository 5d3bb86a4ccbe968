/*
 * settings/settings.h - the settings page (SPEC §13, what js-integration's
 * onSettingsPage / onUpdateSettings did): the form the server renders from
 * the BM_SETTINGS schema, the save of its values into the installation
 * (validated by the schema library, then by the modules' validators), and
 * the page's own script and stylesheet, compiled in.  Depends on core,
 * keystore and dispatch (the answer, the registry's validators), and on
 * schema/.
 *
 * The page is framed by Botmatic (BM_BOTMATIC_ORIGIN, the only origin in
 * its frame-ancestors and the only one its script talks to) and speaks
 * js-integration's postMessage protocol: {"iframe_loaded":{"height":n}} on
 * load, a save on {"post_form":true}, {"iframe_saved":{"success":b}} after
 * it.  Every value rendered is escaped; a "format":"password" field is
 * never rendered back, and left empty it keeps what is stored.
 */
#ifndef APP_SETTINGS_H
#define APP_SETTINGS_H

#include <stddef.h>

#include <jansson.h>

#include "core/core.h"
#include "dispatch/dispatch.h"
#include "keystore/keystore.h"

/* Most fields a settings schema may declare. */
#define APP_SETTINGS_FIELDS_MAX 200

/* A loaded BM_SETTINGS: the compiled schema and the form's fields. */
struct app_settings;

/*
 * Loads the schema file path: JSON, a schema the library compiles, an
 * object schema whose "properties" are each a string, integer, number,
 * boolean or enum (no property named "token", which carries the token).
 * On success stores a new form in *out (free with app_settings_free) and
 * returns 0; otherwise writes "<path>: <reason>" into err and returns -1.
 */
int app_settings_load(const char *path, struct app_settings **out, char *err,
    size_t errlen);
void app_settings_free(struct app_settings *s);

/* How many fields the form has. */
size_t app_settings_count(const struct app_settings *s);

/*
 * GET <endpoint>settings?<query>: the page for the installation whose token
 * is the query's "token" (401 without one), with its current values.
 * query (may be NULL) is the raw query string.  Fills ans.
 */
void app_settings_page(struct app_env *env, struct bm_req *req,
    const char *query, struct app_answer *ans);

/*
 * POST <endpoint>settings: body (len bytes; form-encoded when form is set,
 * else JSON) holds "token" and the values.  Valid values are saved in the
 * installation's settings and answered {"success":true}; otherwise
 * {"success":false,"errorFields":[names]} and nothing changes.  401 for a
 * token of no installation, 400 for a body that does not parse.
 */
void app_settings_save(struct app_env *env, struct bm_req *req, int form,
    const char *body, size_t len, struct app_answer *ans);

/* GET <endpoint>settings/<name>: the page's script or stylesheet, or 404. */
void app_settings_asset(const char *name, struct app_answer *ans);

/*
 * Decodes application/x-www-form-urlencoded text (len bytes) into an
 * object of strings (new in *out).  Returns 0, or -1 with the reason in
 * err: a bad %-escape, a name or value that is not UTF-8, a name given
 * twice, more than APP_SETTINGS_FIELDS_MAX * 2 pairs.
 */
int app_settings_form_decode(const char *text, size_t len, json_t **out,
    char *err, size_t errlen);

#endif
