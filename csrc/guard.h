// Turning C++ exceptions into status codes at the C boundary: every ftlua_* function returns 0 on
// success and -1 on failure, with the message in ftlua_error() (csrc/guard.cpp).
#pragma once

#include <exception>
#include <string>

namespace ftlua {

inline thread_local std::string last_error;

template <typename F>
int guarded(F&& body) {
  try {
    body();
    return 0;
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return -1;
}

}  // namespace ftlua
