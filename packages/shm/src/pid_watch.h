// Watches any pid's exit with a pidfd polled by the event loop (no thread, no polling).
#pragma once

#include <napi.h>
#include <uv.h>

#include "libipc/env_handles.h"
#include "libipc/fd_poll.h"

namespace libipc {

class PidWatch : public Napi::ObjectWrap<PidWatch>, public EnvClosable {
 public:
  static Napi::Function Init(Napi::Env env);
  PidWatch(const Napi::CallbackInfo& info);
  ~PidWatch() override;
  void close_for_teardown() override;

 private:
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Active(const Napi::CallbackInfo& info);
  static void on_readable(uv_poll_t* handle, int status, int events);
  void stop();

  FdPoll<PidWatch>* poll_ = nullptr;
  EnvHandles* handles_ = nullptr;
  Napi::FunctionReference callback_;
  Napi::ObjectReference self_;  // keeps this object alive while the watch is active
};

}  // namespace libipc
