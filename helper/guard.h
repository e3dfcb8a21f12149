/*
 * guard: the checks made on an HTTP request before anything else, as pure
 * functions of header text (no lws) so they can be unit-tested and fuzzed.
 *
 * Browsers are the attack path to a localhost server: a page may open a
 * WebSocket to 127.0.0.1 (Origin check) or reach it through a rebinding DNS
 * name (Host check).
 */
#ifndef COMPANION_GUARD_H
#define COMPANION_GUARD_H

#include "helper/settings.h"

/* Host must be a loopback name (localhost, 127.0.0.1, [::1]) with the
 * server's port, or match an allowedHosts entry: Host equal to the entry, or,
 * for an entry without a port, that name with the server's port (a reverse
 * proxy on 80/443 sends the bare name). Case-insensitive. NULL or empty
 * host: refused. */
int guard_host_allowed(const char *host, int port, const struct settings_strv *allowed);

/* No Origin (native clients) passes; any Origin, loopback pages included,
 * must equal an allowedOrigins entry (case-insensitive, no trailing slash). */
int guard_origin_allowed(const char *origin, const struct settings_strv *allowed);

/* 1 for a host setting that only this machine can reach. */
int guard_host_is_loopback(const char *host);

#endif
