// Calls a JavaScript callback from an event-loop callback (a polled fd became readable) with raw Node-API,
// ignoring failures: while a worker is being terminated a call into JavaScript fails, and node-addon-api
// would turn that failure into a fatal error that kills the whole process. The caller holds a handle scope.
// `recv` must be an object (napi_make_callback refuses undefined): pass the global object when there is none.
#pragma once

#include <node_api.h>

namespace libipc {

// With `context` (reused across calls) or, when null, a new async context named `resource` for this call.
inline void call_js(napi_env env, napi_value recv, napi_value fn, const char* resource, size_t argc = 0,
                    const napi_value* argv = nullptr, napi_async_context context = nullptr) {
  napi_value name = nullptr, result = nullptr;
  const bool own = context == nullptr;
  if (recv == nullptr || fn == nullptr) return;
  if (own && (napi_create_string_utf8(env, resource, NAPI_AUTO_LENGTH, &name) != napi_ok ||
              napi_async_init(env, nullptr, name, &context) != napi_ok)) {
    return;
  }
  if (napi_make_callback(env, context, recv, fn, argc, argv, &result) != napi_ok) {
    bool pending = false;
    napi_value ignored;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
  }
  if (own) napi_async_destroy(env, context);
}

}  // namespace libipc
