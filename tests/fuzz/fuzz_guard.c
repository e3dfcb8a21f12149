/*
 * Host and Origin headers as any client may send them. Only loopback
 * names with the server's port, or listed values, may pass.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/guard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char *listed[] = {"myhost.test", "box.lan:8443"};
    struct settings_strv allowed = {listed, 2};
    if (guard_host_allowed(s, 3001, NULL)) {
        /* Without a list, only loopback names on port 3001 may pass. */
        if (!strstr(s, ":3001") || !(strncasecmp(s, "localhost:", 10) == 0 ||
                                     strncmp(s, "127.", 4) == 0 || strncmp(s, "[::1]:", 6) == 0))
            abort();
    }
    guard_host_allowed(s, 3001, &allowed);
    if (guard_origin_allowed(s, NULL) && s[0])
        abort(); /* with no list, any Origin at all is refused */
    guard_origin_allowed(s, &allowed);
    free(s);
    return 0;
}
