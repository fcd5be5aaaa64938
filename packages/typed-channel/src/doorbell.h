// A receiver's doorbell polled by the event loop (the FIFO itself and the senders' BellRinger: libipc/doorbell_fifo.h).
#pragma once

#include <memory>

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <string>

#include "libipc/channel_layout.h"
#include "libipc/doorbell_fifo.h"
#include "libipc/env_handles.h"
#include "libipc/fd_poll.h"

namespace libipc {
namespace chan {

class Doorbell : public Napi::ObjectWrap<Doorbell>, public EnvClosable {
 public:
  static Napi::Function Init(Napi::Env env);
  Doorbell(const Napi::CallbackInfo& info);
  ~Doorbell() override;
  void close_for_teardown() override;

 private:
  Napi::Value Arm(const Napi::CallbackInfo& info);
  Napi::Value Disarm(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  static void on_readable(uv_poll_t* handle, int status, int events);
  void stop();

  FdPoll<Doorbell>* poll_ = nullptr;
  EnvHandles* handles_ = nullptr;
  std::string path_;
  Napi::FunctionReference callback_;
  Napi::ObjectReference self_;  // keeps this object alive while armed
};

// The addon's per-environment state: the uv handles it owns, closed before the environment goes away.
struct ChannelAddon {
  explicit ChannelAddon(napi_env env)
      : handles(new EnvHandles(env)), bell_context(std::make_unique<Napi::AsyncContext>(Napi::Env(env), "libipc.channel.recv")) {}
  ~ChannelAddon() { delete handles; }  // after every handle's close callback: the environment is gone
  EnvHandles* handles;
  // One async context for every doorbell callback of this environment: making one per wake-up cost more than
  // the rest of the callback.
  std::unique_ptr<Napi::AsyncContext> bell_context;
};

}  // namespace chan
}  // namespace libipc
