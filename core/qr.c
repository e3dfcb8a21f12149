/*
 * qr: terminal QR codes (see qr.h). Dark modules are drawn as the terminal's
 * background and light ones as its foreground would confuse scanners on
 * light themes, so the code is drawn explicitly: white blocks for light
 * modules on whatever the background is, which scans on dark and light
 * terminals alike.
 */
#include "core/qr.h"

#include <qrencode.h>

#define QUIET 2

static int dark(const QRcode *q, int x, int y)
{
    if (x < 0 || y < 0 || x >= q->width || y >= q->width)
        return 0;
    return q->data[y * q->width + x] & 1;
}

int qr_print(FILE *out, const char *text)
{
    QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
    if (!q)
        return -1;
    /* Each character cell holds two rows: upper and lower half. */
    for (int y = -QUIET; y < q->width + QUIET; y += 2) {
        for (int x = -QUIET; x < q->width + QUIET; x++) {
            int top = !dark(q, x, y), bottom = !dark(q, x, y + 1);
            fputs(top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ", out);
        }
        fputc('\n', out);
    }
    QRcode_free(q);
    return 0;
}
