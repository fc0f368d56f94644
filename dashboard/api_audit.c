/* Placeholder: the routes of this resource are being written. */
#include "dash.h"

const struct dash_route dash_routes_audit[] = {
    {NULL, NULL, 0, NULL},
};
