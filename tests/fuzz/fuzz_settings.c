/*
 * Settings as the editor or a config file sends them: any JSON object must
 * be accepted or refused with a message naming a key, never crash, and a
 * refusal must leave nothing allocated.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return 0;
    json_object *j = json_tokener_parse_ex(tok, (const char *)data, (int)size);
    json_tokener_free(tok);
    if (!j)
        return 0;
    struct settings s;
    char err[300] = "";
    if (settings_parse(&s, j, err, sizeof(err)) == 0) {
        struct settings copy;
        if (settings_copy(&copy, &s) == 0)
            settings_free(&copy);
        settings_free(&s);
    } else if (!err[0]) {
        abort();
    }
    json_object_put(j);
    return 0;
}
