/*
 * Engine.IO 4 / Socket.IO 5 text as a client sends it, in a polling body:
 * every packet of the payload goes through the Engine.IO and Socket.IO
 * parsers; what is accepted must hold together and encode back to text
 * that parses the same way.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    size_t off = 0, pl;
    const char *p;
    int n = 0;
    while (sio_payload_next(body, size, &off, &p, &pl) && n++ < 64) {
        int type;
        const char *d;
        size_t dl;
        char why[160] = "";
        if (sio_eio_parse(p, pl, &type, &d, &dl, why, sizeof(why)) < 0) {
            if (!why[0])
                abort();
            continue;
        }
        if (type != SIO_EIO_MESSAGE)
            continue;
        struct sio_packet pkt;
        int rc = sio_packet_parse(d, dl, &pkt, why, sizeof(why));
        if (rc < 0) {
            if (!why[0] || pkt.data)
                abort();
        } else {
            if (pkt.nsp[0] != '/' || strlen(pkt.nsp) > SIO_NSP_MAX)
                abort();
            if (pkt.type == SIO_EVENT && (!pkt.event || strlen(pkt.event) > SIO_EVENT_MAX))
                abort();
            size_t el;
            char *enc = sio_packet_encode(pkt.type, pkt.nsp, pkt.ack, pkt.data, &el);
            if (enc) {
                struct sio_packet again;
                if (sio_packet_parse(enc + 1, el - 1, &again, why, sizeof(why)) < 0 ||
                    again.type != pkt.type || again.ack != pkt.ack ||
                    strcmp(again.nsp, pkt.nsp) != 0)
                    abort();
                sio_packet_clear(&again);
                free(enc);
            }
        }
        sio_packet_clear(&pkt);
    }
    return 0;
}
