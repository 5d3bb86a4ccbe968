/*
 * master.h - the pre-fork master: owns the listening socket, forks the
 * responders, restarts one that dies (with a backoff so a crash loop does
 * not spin), stops gracefully on SIGTERM/SIGINT and reloads on SIGHUP by
 * replacing responders one at a time.  It holds no database handle.
 */
#ifndef APP_MASTER_H
#define APP_MASTER_H

/*
 * Runs the server with the environment envp (kept for reloads).  Returns
 * the process exit status: 0 after a graceful stop, 1 when the start
 * failed (reason logged).
 */
int app_master_run(char *const *envp);

/*
 * Runs one import of every external contact of installation install_id
 * in this process (botmatic-fcgi --import-contacts), with the server's
 * configuration.  Safe while the server runs.  Returns the exit status.
 */
int app_master_import(char *const *envp, const char *install_id);

/*
 * botmatic-fcgi -t: loads the configuration, the modules and the mappings
 * as a start would and checks that BM_DB_HOME can be used (an existing
 * directory this user may enter and write, or one it may create), without
 * opening a socket or the store, so a running server is left alone.
 * Prints "botmatic-fcgi: configuration ok" on stdout, or the error line(s)
 * on stderr and "botmatic-fcgi: configuration test failed".  Returns the
 * exit status, 0 or 1.
 */
int app_master_check(char *const *envp);

#endif
