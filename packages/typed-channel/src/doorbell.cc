// A receiver's doorbell: a named FIFO that the event loop polls directly (uv_poll_t), so a sender's wake-up
// reaches JavaScript without a helper thread hopping into the loop. Senders ring it with a one-byte write.
// Neither side ever follows a link or writes into anything but a FIFO (docs/security.md).
#include "doorbell.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "libipc/errno_name.h"
#include "libipc/js_call.h"

namespace libipc {
namespace chan {

namespace {

Napi::Error errno_error(Napi::Env env, const char* what, int err) {
  Napi::Error e = Napi::Error::New(env, std::string(what) + ": " + strerror(err));
  e.Set("errno", Napi::String::New(env, errno_name(err)));
  e.Set("syscall", Napi::String::New(env, what));
  return e;
}

}  // namespace

Napi::Function Doorbell::Init(Napi::Env env) {
  return DefineClass(env, "Doorbell",
                     {InstanceMethod<&Doorbell::Arm>("arm"), InstanceMethod<&Doorbell::Disarm>("disarm"),
                      InstanceMethod<&Doorbell::Close>("close")});
}

// new Doorbell(path): creates the FIFO (0600; whatever sits at the path is removed first: unlink never follows
// a link) and opens it for reading. O_RDWR keeps it from ever reporting end-of-file, and writers' opens
// succeed only while we hold it.
Doorbell::Doorbell(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Doorbell>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "Doorbell(path)").ThrowAsJavaScriptException();
    return;
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = create_doorbell(path.c_str());
  if (fd < 0) {
    errno_error(env, "mkfifo", errno).ThrowAsJavaScriptException();
    return;
  }
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  handles_ = env.GetInstanceData<ChannelAddon>()->handles;
  int err = 0;
  poll_ = FdPoll<Doorbell>::open(loop, handles_, fd, this, &err);
  if (poll_ == nullptr) {
    unlink(path.c_str());
    Napi::Error::New(env, std::string("uv_poll_init: ") + uv_strerror(err)).ThrowAsJavaScriptException();
    return;
  }
  handles_->track(this);
  path_ = path;
}

Doorbell::~Doorbell() { stop(); }

// The environment (a worker thread) ends with the receiver still open: leave no FIFO behind, and let go of the
// references that kept an armed bell alive (else the environment's finalizers never reach it: a leak).
void Doorbell::close_for_teardown() {
  if (poll_ == nullptr) return;
  unlink(path_.c_str());
  FdPoll<Doorbell>* poll = poll_;
  poll_ = nullptr;
  poll->close();
  callback_.Reset();
  self_.Reset();
}

void Doorbell::stop() {
  if (poll_ == nullptr) return;
  FdPoll<Doorbell>* poll = poll_;
  poll_ = nullptr;
  handles_->untrack(this);
  poll->close();
  callback_.Reset();
  self_.Reset();
}

// arm(callback): calls callback() once, from the event loop, when the bell has been rung (possibly already).
Napi::Value Doorbell::Arm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (poll_ == nullptr || info.Length() < 1 || !info[0].IsFunction()) {
    Napi::Error::New(env, "doorbell closed or no callback").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  callback_ = Napi::Persistent(info[0].As<Napi::Function>());
  if (self_.IsEmpty()) self_ = Napi::Persistent(info.This().As<Napi::Object>());
  uv_poll_start(&poll_->handle, UV_READABLE, &Doorbell::on_readable);
  return env.Undefined();
}

Napi::Value Doorbell::Disarm(const Napi::CallbackInfo& info) {
  if (poll_ != nullptr) uv_poll_stop(&poll_->handle);
  callback_.Reset();
  self_.Reset();
  return info.Env().Undefined();
}

Napi::Value Doorbell::Close(const Napi::CallbackInfo& info) {
  stop();
  return info.Env().Undefined();
}

void Doorbell::on_readable(uv_poll_t* handle, int status, int events) {
  FdPoll<Doorbell>* poll = FdPoll<Doorbell>::of(handle);
  Doorbell* self = poll->owner;
  if (self == nullptr || self->handles_->tearing_down()) return;
  uv_poll_stop(handle);
  drain_doorbell(poll->fd);  // rings that came in while we were awake are covered by the caller's re-check
  if (self->callback_.IsEmpty()) return;
  napi_env env = self->Env();
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value recv = nullptr, fn = nullptr;
  napi_get_reference_value(env, self->self_, &recv);
  napi_get_reference_value(env, self->callback_, &fn);
  self->callback_.Reset();
  self->self_.Reset();
  ChannelAddon* addon = Napi::Env(env).GetInstanceData<ChannelAddon>();
  call_js(env, recv, fn, "libipc.channel.recv", 0, nullptr, addon != nullptr ? static_cast<napi_async_context>(*addon->bell_context) : nullptr);
  napi_close_handle_scope(env, scope);
}

}  // namespace chan
}  // namespace libipc
