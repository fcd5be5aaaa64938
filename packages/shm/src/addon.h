// Per-environment state of the addon (each worker thread has its own).
#pragma once

#include <napi.h>
#include <uv.h>

#include <memory>

#include "uring_waiter.h"
#include "wait_pool.h"

namespace libipc {

struct AddonState {
  Napi::FunctionReference segment_ctor;
  Napi::FunctionReference pid_watch_ctor;
  std::unique_ptr<WaitPool> waits;
  std::unique_ptr<UringWaiter> uring;  // preferred when the kernel offers io_uring futex waits
  uv_loop_t* loop = nullptr;
  bool closing = false;
};

AddonState* addon_state(Napi::Env env);

// Throws a JS Error carrying errno's name as `errno` so the TypeScript layer maps it to a LibipcError.
Napi::Error errno_error(Napi::Env env, const char* what, int err);

}  // namespace libipc
