#include "guard.h"

extern "C" const char* ftlua_error() { return ftlua::last_error.c_str(); }
