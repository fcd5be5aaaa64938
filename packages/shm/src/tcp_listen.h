#pragma once

#include <napi.h>

namespace libipc {

Napi::Value ListenTcp(const Napi::CallbackInfo& info);

}  // namespace libipc
