/*
 * store/cli-migrate.h - botmatic-keys migrate: copies every installation,
 * id pair and state value from one store to another (Berkeley DB to Redis
 * or back), resumably.
 */
#ifndef BM_STORE_CLI_MIGRATE_H
#define BM_STORE_CLI_MIGRATE_H

struct store;

/*
 * Copies src into dst (both borrowed, opened by the caller) in batches of
 * store_apply().  Each batch also records, in dst, how many records are
 * copied so far (state "cursor" of the reserved integration
 * STORE_CLI_MIGRATE_TOKEN), in the same atomic change: a migrate killed at
 * any instant, run again, skips what was copied and carries on.  The
 * source must not change meanwhile (stop the server, or let it run on the
 * target only).  At the end the cursor is removed and dst verified
 * (store_verify()).  Progress and the result on stderr.  Returns the exit
 * status: 0 done, 1 verify found problems, 2 error (one line on stderr).
 */
int store_cli_migrate(struct store *src, struct store *dst);

#define STORE_CLI_MIGRATE_TOKEN "botmatic-keys:migrate"

#endif
