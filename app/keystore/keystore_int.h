/*
 * keystore/keystore_int.h - what the files of keystore/ share; no other
 * part includes it.
 */
#ifndef APP_KEYSTORE_INT_H
#define APP_KEYSTORE_INT_H

#include "keystore/keystore.h"

/* Marks the start of a store call for the master's watchdog. */
void app_ks__begin(struct app_keystore *ks);
/* Ends it: store_rc to 0 / 1 / -1, failures logged once with reqid. */
int app_ks__end(struct app_keystore *ks, const char *reqid, const char *what,
    int rc);

#endif
