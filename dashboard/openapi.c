/* The OpenAPI document (merged from the fragments in dashboard/openapi/ and embedded at build time,
 * see CMakeLists.txt) and the other embedded files: found by their address. */
#include <string.h>

#include "dash.h"

const struct dash_asset *dash_asset_find(const char *path)
{
    for (size_t i = 0; i < dash_n_assets; i++)
        if (strcmp(dash_assets[i].path, path) == 0)
            return &dash_assets[i];
    return NULL;
}

static void openapi(struct dash_req *r)
{
    const struct dash_asset *a = dash_asset_find("/api/v1/openapi.json");
    if (!a) {
        dash_error(r, 500, "internal", "the OpenAPI document was not built into this binary");
        return;
    }
    dash_reply_raw(r, 200, a->content_type, a->data, a->len);
    dash_add_header(r, "Cache-Control", "public, max-age=60");
}

const struct dash_route dash_routes_static[] = {
    {"GET", "/api/v1/openapi.json", DASH_PUBLIC, openapi},
    {NULL, NULL, 0, NULL},
};
