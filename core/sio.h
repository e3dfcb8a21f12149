/*
 * sio: the Engine.IO 4 / Socket.IO 5 text codec, pure (no lws, no sockets),
 * so it is unit-tested and fuzzed as is. What the wire looks like:
 *
 *   Engine.IO packet   <type digit 0..6><data>        (binary: refused)
 *   polling payload    packets joined by 0x1e (record separator)
 *   Socket.IO packet   <type digit>[<nsp>,][<ack id>][<JSON>] inside an
 *                      Engine.IO message (type 4)
 *
 * Strict and bounded: a namespace starts with '/', is printable ASCII
 * without ',' and at most SIO_NSP_MAX bytes; an ack id is 1..15 digits; the
 * JSON is parsed by envelope_json_parse (strict, UTF-8, depth-limited, no
 * \u0000); an EVENT's data is an array whose first element is an event name
 * of 1..SIO_EVENT_MAX bytes (not one of the names Socket.IO reserves); an
 * ACK's data is an array; a CONNECT's data, when present, an object; binary
 * packets and attachments (Socket.IO 5 and 6, "b" Engine.IO packets) are
 * refused with a message that says so.
 *
 * Ownership: a parsed packet owns its data (sio_packet_clear); encoders
 * return malloc'd NUL-terminated text the caller frees.
 */
#ifndef COMPANION_SIO_H
#define COMPANION_SIO_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#define SIO_NSP_MAX    128
#define SIO_EVENT_MAX  64
#define SIO_ACK_DIGITS 15

enum sio_eio {
    SIO_EIO_OPEN = 0,
    SIO_EIO_CLOSE = 1,
    SIO_EIO_PING = 2,
    SIO_EIO_PONG = 3,
    SIO_EIO_MESSAGE = 4,
    SIO_EIO_UPGRADE = 5,
    SIO_EIO_NOOP = 6,
};

enum sio_type {
    SIO_CONNECT = 0,
    SIO_DISCONNECT = 1,
    SIO_EVENT = 2,
    SIO_ACK = 3,
    SIO_CONNECT_ERROR = 4,
    SIO_BINARY_EVENT = 5,
    SIO_BINARY_ACK = 6,
};

/* One Engine.IO packet: 0 with *type and its data (borrowed from p), or -1
 * with why. */
int sio_eio_parse(const char *p, size_t len, int *type, const char **data, size_t *dlen, char *why,
                  size_t whylen);

/* The next packet of a polling payload from *off (start at 0; advanced
 * past it and its separator): 1 with pkt/plen set (borrowed from body),
 * 0 when the payload is used up. An empty body is one empty packet. */
int sio_payload_next(const char *body, size_t len, size_t *off, const char **pkt, size_t *plen);

struct sio_packet {
    int type;                  /* enum sio_type */
    char nsp[SIO_NSP_MAX + 1]; /* "/" when absent */
    int64_t ack;               /* -1: none */
    json_object *data;         /* owned; NULL when absent */
    const char *event;         /* EVENT: the name, borrowed from data */
};

/* The data of an Engine.IO message (without its '4'): 0, or -1 with why
 * (pkt->data NULL). sio_packet_clear in both cases. */
int sio_packet_parse(const char *p, size_t len, struct sio_packet *pkt, char *why, size_t whylen);
void sio_packet_clear(struct sio_packet *pkt);

/* "4<type>[<nsp>,][<ack>][<json>]": an Engine.IO message carrying a
 * Socket.IO packet (nsp NULL or "/": the main one; ack < 0: none; data
 * borrowed, may be NULL). NULL when out of memory. */
char *sio_packet_encode(int type, const char *nsp, int64_t ack, json_object *data, size_t *len);

/* ["name", payload?] as an EVENT text: name copied, payload owned (may be
 * NULL: no argument). */
char *sio_event_encode(const char *name, json_object *payload, int64_t ack, size_t *len);

#endif
