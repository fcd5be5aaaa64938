// Argument readers for the addon's entry points. Inline: the hot paths read their numbers with one raw N-API
// call each (node-addon-api's checked accessors make several).
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace libipc {
namespace chan {

inline bool array_buffer_arg(const Napi::Value& v, uint8_t** data, size_t* size) {
  if (!v.IsArrayBuffer()) return false;
  Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
  if (ab.IsDetached()) return false;
  *data = static_cast<uint8_t*>(ab.Data());
  *size = ab.ByteLength();
  return true;
}

inline double number_arg(const Napi::CallbackInfo& info, size_t i, double fallback) {
  double v;
  if (i >= info.Length() || napi_get_value_double(info.Env(), info[i], &v) != napi_ok) return fallback;
  return v;
}

// A detached or foreign value reads as no buffer (data null, size 0).
inline bool slab_arg(const Napi::CallbackInfo& info, size_t i, uint8_t** data, size_t* size) {
  void* d = nullptr;
  if (i >= info.Length() || napi_get_arraybuffer_info(info.Env(), info[i], &d, size) != napi_ok || d == nullptr) return false;
  *data = static_cast<uint8_t*>(d);
  return true;
}

// A Uint32Array argument with at least `need` elements, or null.
inline uint32_t* u32_array_arg(const Napi::CallbackInfo& info, size_t i, double need) {
  napi_typedarray_type type;
  size_t len = 0;
  void* data = nullptr;
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      napi_get_typedarray_info(info.Env(), info[i], &type, &len, &data, nullptr, nullptr) != napi_ok ||
      type != napi_uint32_array || static_cast<double>(len) < need || data == nullptr) {
    return nullptr;
  }
  return static_cast<uint32_t*>(data);
}

inline uint32_t u32_arg(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() && info[i].IsNumber() ? info[i].As<Napi::Number>().Uint32Value() : 0;
}

}  // namespace chan
}  // namespace libipc
