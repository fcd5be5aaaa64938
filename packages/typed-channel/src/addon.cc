// Placeholder: the channel core goes here.
#include <napi.h>
#include "libipc/futex.h"

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return exports; }
NODE_API_MODULE(channel_native, InitAddon)
