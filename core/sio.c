/*
 * sio: Engine.IO 4 / Socket.IO 5 packets to and from text (see sio.h).
 */
#include "core/sio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/envelope.h"

int sio_eio_parse(const char *p, size_t len, int *type, const char **data, size_t *dlen, char *why,
                  size_t whylen)
{
    if (len == 0) {
        snprintf(why, whylen, "empty Engine.IO packet");
        return -1;
    }
    if (p[0] == 'b') {
        snprintf(why, whylen, "binary packets are not supported");
        return -1;
    }
    if (p[0] < '0' || p[0] > '6') {
        snprintf(why, whylen, "unknown Engine.IO packet type");
        return -1;
    }
    *type = p[0] - '0';
    *data = p + 1;
    *dlen = len - 1;
    return 0;
}

int sio_payload_next(const char *body, size_t len, size_t *off, const char **pkt, size_t *plen)
{
    /* Packets are what lies between separators: "" is one empty packet,
     * "a\x1e" is "a" and "". *off past len: used up. */
    if (*off > len)
        return 0;
    const char *start = body + *off;
    const char *sep = *off < len ? memchr(start, '\x1e', len - *off) : NULL;
    size_t n = sep ? (size_t)(sep - start) : len - *off;
    *pkt = start;
    *plen = n;
    *off += n + 1;
    return 1;
}

static int reserved_event(const char *name)
{
    static const char *const names[] = {"connect",       "connect_error", "disconnect",
                                        "disconnecting", "newListener",   "removeListener"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    return 0;
}

static int fail(struct sio_packet *pkt, char *why, size_t whylen, const char *msg)
{
    json_object_put(pkt->data);
    pkt->data = NULL;
    pkt->event = NULL;
    snprintf(why, whylen, "%s", msg);
    return -1;
}

int sio_packet_parse(const char *p, size_t len, struct sio_packet *pkt, char *why, size_t whylen)
{
    memset(pkt, 0, sizeof(*pkt));
    pkt->ack = -1;
    strcpy(pkt->nsp, "/");
    if (len == 0)
        return fail(pkt, why, whylen, "empty Socket.IO packet");
    if (p[0] < '0' || p[0] > '6')
        return fail(pkt, why, whylen, "unknown Socket.IO packet type");
    pkt->type = p[0] - '0';
    if (pkt->type == SIO_BINARY_EVENT || pkt->type == SIO_BINARY_ACK)
        return fail(pkt, why, whylen, "binary attachments are not supported");
    size_t i = 1;
    if (i < len && p[i] == '/') {
        size_t start = i;
        while (i < len && p[i] != ',') {
            unsigned char ch = (unsigned char)p[i];
            if (ch < 0x21 || ch > 0x7e)
                return fail(pkt, why, whylen, "namespace: printable ASCII only");
            i++;
        }
        if (i - start > SIO_NSP_MAX)
            return fail(pkt, why, whylen, "namespace too long");
        memcpy(pkt->nsp, p + start, i - start);
        pkt->nsp[i - start] = '\0';
        if (i < len)
            i++; /* the ',' */
    }
    size_t ds = i;
    while (i < len && p[i] >= '0' && p[i] <= '9')
        i++;
    if (i < len && p[i] == '-')
        return fail(pkt, why, whylen, "binary attachments are not supported");
    if (i > ds) {
        if (i - ds > SIO_ACK_DIGITS)
            return fail(pkt, why, whylen, "ack id too long");
        if (pkt->type != SIO_EVENT && pkt->type != SIO_ACK)
            return fail(pkt, why, whylen, "only EVENT and ACK packets carry an ack id");
        int64_t v = 0;
        for (size_t k = ds; k < i; k++)
            v = v * 10 + (p[k] - '0');
        pkt->ack = v;
    }
    if (i < len) {
        const char *jwhy = NULL;
        pkt->data = envelope_json_parse(p + i, len - i, &jwhy);
        if (!pkt->data) {
            char m[160];
            snprintf(m, sizeof(m), "invalid JSON: %s", jwhy ? jwhy : "null is not allowed");
            return fail(pkt, why, whylen, m);
        }
    }
    json_object *d = pkt->data;
    switch (pkt->type) {
    case SIO_CONNECT:
        if (d && !json_object_is_type(d, json_type_object))
            return fail(pkt, why, whylen, "CONNECT: the auth payload must be an object");
        break;
    case SIO_DISCONNECT:
        if (d)
            return fail(pkt, why, whylen, "DISCONNECT carries no data");
        break;
    case SIO_EVENT: {
        if (!d || !json_object_is_type(d, json_type_array) || json_object_array_length(d) < 1)
            return fail(pkt, why, whylen, "EVENT: expected a non-empty JSON array");
        json_object *n = json_object_array_get_idx(d, 0);
        if (!json_object_is_type(n, json_type_string))
            return fail(pkt, why, whylen, "EVENT: the event name must be a string");
        int nl = json_object_get_string_len(n);
        if (nl < 1 || nl > SIO_EVENT_MAX)
            return fail(pkt, why, whylen, "EVENT: the event name must be 1 to 64 bytes");
        if (reserved_event(json_object_get_string(n)))
            return fail(pkt, why, whylen, "EVENT: that event name is reserved");
        pkt->event = json_object_get_string(n);
        break;
    }
    case SIO_ACK:
        if (pkt->ack < 0)
            return fail(pkt, why, whylen, "ACK: missing ack id");
        if (!d || !json_object_is_type(d, json_type_array))
            return fail(pkt, why, whylen, "ACK: expected a JSON array");
        break;
    case SIO_CONNECT_ERROR:
        if (d && !json_object_is_type(d, json_type_object))
            return fail(pkt, why, whylen, "CONNECT_ERROR: expected an object");
        break;
    default:
        break;
    }
    return 0;
}

void sio_packet_clear(struct sio_packet *pkt)
{
    json_object_put(pkt->data);
    pkt->data = NULL;
    pkt->event = NULL;
}

char *sio_packet_encode(int type, const char *nsp, int64_t ack, json_object *data, size_t *len)
{
    const char *js = "";
    size_t jl = 0;
    if (data)
        js = json_object_to_json_string_length(
            data, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &jl);
    int main_nsp = !nsp || strcmp(nsp, "/") == 0;
    size_t nl = main_nsp ? 0 : strlen(nsp) + 1;
    size_t cap = 2 + nl + 24 + jl + 1;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t n = 0;
    out[n++] = '4';
    out[n++] = (char)('0' + type);
    if (!main_nsp) {
        memcpy(out + n, nsp, nl - 1);
        n += nl - 1;
        out[n++] = ',';
    }
    if (ack >= 0)
        n += (size_t)snprintf(out + n, cap - n, "%lld", (long long)ack);
    memcpy(out + n, js, jl);
    n += jl;
    out[n] = '\0';
    if (len)
        *len = n;
    return out;
}

char *sio_event_encode(const char *name, json_object *payload, int64_t ack, size_t *len)
{
    json_object *arr = json_object_new_array();
    json_object_array_add(arr, json_object_new_string(name));
    if (payload)
        json_object_array_add(arr, payload);
    char *out = sio_packet_encode(SIO_EVENT, "/", ack, arr, len);
    json_object_put(arr);
    return out;
}
