/* Placeholder replaced below. */
#include "http.h"

const char starling_ui_html[] = "<!doctype html><title>Starling</title><p>Starling</p>\n";
