/*
 * notify.h - tells systemd (Type=notify) what the master is doing:
 * READY=1 once serving, RELOADING=1 during a SIGHUP reload, STATUS= lines
 * for `systemctl status`.  Built without libsystemd (configure says so),
 * or run outside systemd (no NOTIFY_SOCKET), every call does nothing.
 */
#ifndef APP_NOTIFY_H
#define APP_NOTIFY_H

/*
 * Sends one notification, the printf-formatted state lines (e.g.
 * "READY=1\nSTATUS=serving").  Failures are ignored: systemd's view is a
 * convenience, never a reason to stop serving.
 */
void app_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
