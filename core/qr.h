/*
 * qr: a QR code in the terminal (libqrencode), two modules per character
 * cell with half blocks, with the quiet zone the standard asks for.
 */
#ifndef COMPANION_QR_H
#define COMPANION_QR_H

#include <stdio.h>

/* Prints `text` as a QR code; returns 0, or -1 when it cannot be encoded. */
int qr_print(FILE *out, const char *text);

#endif
