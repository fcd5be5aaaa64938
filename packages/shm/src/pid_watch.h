// Watches any pid's exit with a pidfd polled by the event loop (no thread, no polling). A watch is owned by its
// environment's table (AddonState::pid_watches) and known to JavaScript by a number, not by a wrapped object:
// its lifetime never waits on V8's garbage collector, whose finalizers may not run before a process or worker
// exits (an ObjectWrap'd watch leaked that way at exit, seen by LeakSanitizer in CI).
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstdint>

#include "libipc/env_handles.h"
#include "libipc/fd_poll.h"

namespace libipc {

struct AddonState;

class PidWatch : public EnvClosable {
 public:
  PidWatch(AddonState* state, uint32_t id) : state_(state), id_(id) {}
  ~PidWatch() override;
  // Opens the pidfd and starts polling; 0 or an errno (ESRCH: the pid is gone), or -1 with a libuv error in *uv_err.
  int start(int pid, Napi::Function callback, int* uv_err);
  void close_for_teardown() override;
  void set_ref(bool ref);

 private:
  static void on_readable(uv_poll_t* handle, int status, int events);
  void stop();

  AddonState* state_;
  uint32_t id_;
  FdPoll<PidWatch>* poll_ = nullptr;
  Napi::FunctionReference callback_;
};

// pidWatchOpen(pid, onExit) -> id; pidWatchClose(id) (idempotent); pidWatchRef(id, ref).
Napi::Value PidWatchOpen(const Napi::CallbackInfo& info);
Napi::Value PidWatchClose(const Napi::CallbackInfo& info);
Napi::Value PidWatchRef(const Napi::CallbackInfo& info);

}  // namespace libipc
