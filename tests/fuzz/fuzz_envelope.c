/*
 * A WebSocket message as a client sends it: strict JSON and the envelope.
 * A refusal must still let the id be echoed (it is valid or NULL).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct envelope env;
    char why[160];
    int rc = envelope_parse((const char *)data, size, &env, why, sizeof(why));
    if (rc == 0 && (!env.type || (env.data && !json_object_is_type(env.data, json_type_object))))
        abort();
    if (env.id && !json_object_is_type(env.id, json_type_string) &&
        !json_object_is_type(env.id, json_type_int))
        abort();
    if (rc < 0 && strlen(why) == 0)
        abort();
    envelope_clear(&env);
    return 0;
}
