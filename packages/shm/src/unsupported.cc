// Built on platforms the native core does not support: loads, exports nothing, and the TypeScript
// layer reports ERR_LIBIPC_UNSUPPORTED_PLATFORM.
#include <napi.h>

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("unsupported", Napi::Boolean::New(env, true));
  return exports;
}

NODE_API_MODULE(shm_native, Init)
