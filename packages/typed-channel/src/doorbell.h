// A receiver's doorbell polled by the event loop (the FIFO itself and the senders' BellRinger: libipc/doorbell_fifo.h).
#pragma once

#include <memory>

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <string>
#include <unordered_map>

#include "libipc/channel_layout.h"
#include "libipc/doorbell_fifo.h"
#include "libipc/env_handles.h"
#include "libipc/fd_poll.h"

namespace libipc {
namespace chan {

struct ChannelAddon;

// Owned by its environment's table (ChannelAddon::bells) and known to JavaScript by a number: its lifetime never
// waits on V8's garbage collector, whose finalizers may not run before a process or worker exits.
class Doorbell : public EnvClosable {
 public:
  Doorbell(ChannelAddon* addon, uint32_t id) : addon_(addon), id_(id) {}
  ~Doorbell() override;
  // Creates the FIFO and polls it: 0, an errno, or -1 with a libuv error in *uv_err.
  int open(const std::string& path, uv_loop_t* loop, int* uv_err);
  void arm(Napi::Function callback);
  void disarm();
  void close_for_teardown() override;

 private:
  static void on_readable(uv_poll_t* handle, int status, int events);
  void stop();

  ChannelAddon* addon_;
  uint32_t id_;
  FdPoll<Doorbell>* poll_ = nullptr;
  std::string path_;
  Napi::FunctionReference callback_;
};

// bellOpen(path) -> id; bellArm(id, callback) (called once, after the next ring); bellDisarm(id); bellClose(id).
Napi::Value BellOpen(const Napi::CallbackInfo& info);
Napi::Value BellArm(const Napi::CallbackInfo& info);
Napi::Value BellDisarm(const Napi::CallbackInfo& info);
Napi::Value BellClose(const Napi::CallbackInfo& info);

// The addon's per-environment state: the uv handles it owns, closed before the environment goes away.
struct ChannelAddon {
  explicit ChannelAddon(napi_env env)
      : handles(new EnvHandles(env, &ChannelAddon::teardown, this)),
        bell_context(std::make_unique<Napi::AsyncContext>(Napi::Env(env), "libipc.channel.recv")) {}
  ~ChannelAddon() { delete handles; }  // after every handle's close callback: the environment is gone
  // The environment ends: every doorbell removes its FIFO and closes its handle; the table lets go of them.
  static void teardown(void* arg) {
    auto* self = static_cast<ChannelAddon*>(arg);
    for (auto& [id, bell] : self->bells) bell->close_for_teardown();
    self->bells.clear();
  }
  EnvHandles* handles;
  std::unordered_map<uint32_t, std::unique_ptr<Doorbell>> bells;
  uint32_t next_bell = 0;
  // One async context for every doorbell callback of this environment: making one per wake-up cost more than
  // the rest of the callback.
  std::unique_ptr<Napi::AsyncContext> bell_context;
};

}  // namespace chan
}  // namespace libipc
