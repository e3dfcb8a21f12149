/* Test driver for web-assets.c: `embed_check meta PATH` prints the
 * asset's fields, `embed_check gzip PATH` writes its gzip bytes to
 * stdout. Exit 3 when web_asset_find returns NULL. */
#include "core/web_assets.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    const struct web_asset *a = web_asset_find(argv[2], strlen(argv[2]));
    if (a == NULL)
        return 3;
    if (strcmp(argv[1], "gzip") == 0)
        return fwrite(a->gzip_bytes, 1, a->gzip_len, stdout) == a->gzip_len ? 0 : 1;
    printf("%s\t%s\t%zu\t%zu\t%s\t%d\n", a->path, a->content_type, a->gzip_len, a->size, a->etag,
           a->immutable);
    return 0;
}
