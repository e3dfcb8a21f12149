/*
 * web_assets.h: the phone client's files (web/dist/), embedded in the
 * helper at build time.
 *
 * Who owns what: web/ owns this header and web/scripts/embed.mjs, which
 * generates web-assets.c (the table and web_asset_find) from web/dist/;
 * nothing in web-assets.c is edited by hand. The helper owns serving:
 * HTTP paths, headers (Content-Encoding: gzip, ETag, Cache-Control, CSP)
 * and what happens when a path is not found.
 */
#ifndef COMPANION_WEB_ASSETS_H
#define COMPANION_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
    const char *path;                /* "/index.html", "/assets/app-XXXXXXXX.js" */
    size_t path_len;                 /* strlen(path) */
    const char *content_type;        /* "text/html; charset=utf-8", ... */
    const unsigned char *gzip_bytes; /* the file, gzip level 9 */
    size_t gzip_len;                 /* bytes in gzip_bytes */
    size_t size;                     /* the file's size uncompressed */
    const char *etag;                /* strong, quoted: "\"<sha256 of the file, 32 hex>\"" */
    int immutable;                   /* 1: hashed name, cache for a year; 0: revalidate */
};

/* The asset at path (len bytes, not necessarily NUL-terminated; no query
 * string), or NULL. "/" finds index.html. */
const struct web_asset *web_asset_find(const char *path, size_t len);

#endif
