// Per-environment state of the addon (each worker thread has its own).
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "libipc/env_handles.h"
#include "mapping.h"
#include "pid_watch.h"
#include "uring_waiter.h"
#include "wait_pool.h"

namespace libipc {

// A robust mutex this environment locked and has not unlocked: if the environment ends first (a worker
// terminated mid-section), the lock is marked abandoned so the next locker gets ownerDied instead of waiting
// for a process that is alive but will never unlock.
struct HeldLock {
  std::shared_ptr<Mapping> mapping;  // holds a user reference (Mapping::acquire): mapped until released
  size_t offset;
  uint32_t acquired;  // the word as this acquisition set it
};

// A lease this environment's thread holds. Its mapping is pinned (Mapping::acquire) until release: the mutex is on
// the thread's robust list, and neither the C library nor the kernel may ever find that memory unmapped. A lease
// still held when the environment ends stays pinned: the thread exits next, and the kernel marks it owner-died.
struct HeldLease {
  std::shared_ptr<Mapping> mapping;
  size_t offset;
};

struct AddonState {
  Napi::FunctionReference segment_ctor;
  std::unique_ptr<EnvHandles> handles;
  std::unique_ptr<WaitPool> waits;
  std::unique_ptr<UringWaiter> uring;  // preferred when the kernel offers io_uring futex waits
  std::vector<HeldLock> held;
  std::vector<HeldLease> leases;
  uv_loop_t* loop = nullptr;
  // Active exit watches by id: owned here, so none outlives its environment or waits on V8 to be freed.
  std::unordered_map<uint32_t, std::unique_ptr<PidWatch>> pid_watches;
  uint32_t next_pid_watch = 0;
};

AddonState* addon_state(Napi::Env env);

// A JS Error carrying errno's name as `errno` and the failing call as `syscall`, so the TypeScript layer maps
// it to a LibipcError (ERR_LIBIPC_NO_SPACE, ERR_LIBIPC_PERMISSION, ERR_LIBIPC_SYSTEM …).
Napi::Error errno_error(Napi::Env env, const char* what, int err);

}  // namespace libipc
