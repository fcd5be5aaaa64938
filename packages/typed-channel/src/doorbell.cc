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

// open(path): creates the FIFO (0600; whatever sits at the path is removed first: unlink never follows a link) and
// opens it for reading. O_RDWR keeps it from ever reporting end-of-file, and writers' opens succeed only while we
// hold it.
int Doorbell::open(const std::string& path, uv_loop_t* loop, int* uv_err) {
  int fd = create_doorbell(path.c_str());
  if (fd < 0) return errno;
  poll_ = FdPoll<Doorbell>::open(loop, addon_->handles, fd, this, uv_err);
  if (poll_ == nullptr) {
    unlink(path.c_str());
    return -1;
  }
  addon_->handles->track(this);
  path_ = path;
  return 0;
}

Doorbell::~Doorbell() { stop(); }

// The environment (a worker thread) ends with the receiver still open: leave no FIFO behind. Untracked here, as
// the table deletes this bell right after.
void Doorbell::close_for_teardown() {
  if (poll_ == nullptr) return;
  unlink(path_.c_str());
  FdPoll<Doorbell>* poll = poll_;
  poll_ = nullptr;
  addon_->handles->untrack(this);
  poll->close();
  callback_.Reset();
}

void Doorbell::stop() {
  if (poll_ == nullptr) return;
  FdPoll<Doorbell>* poll = poll_;
  poll_ = nullptr;
  addon_->handles->untrack(this);
  poll->close();
  callback_.Reset();
}

void Doorbell::arm(Napi::Function callback) {
  callback_ = Napi::Persistent(callback);
  uv_poll_start(&poll_->handle, UV_READABLE, &Doorbell::on_readable);
}

void Doorbell::disarm() {
  if (poll_ != nullptr) uv_poll_stop(&poll_->handle);
  callback_.Reset();
}

void Doorbell::on_readable(uv_poll_t* handle, int status, int events) {
  FdPoll<Doorbell>* poll = FdPoll<Doorbell>::of(handle);
  Doorbell* self = poll->owner;
  if (self == nullptr || self->addon_->handles->tearing_down()) return;
  uv_poll_stop(handle);
  drain_doorbell(poll->fd);  // rings that came in while we were awake are covered by the caller's re-check
  if (self->callback_.IsEmpty()) return;
  napi_env env = self->callback_.Env();
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value recv = nullptr, fn = nullptr;
  napi_get_global(env, &recv);  // napi_make_callback needs an object receiver
  napi_get_reference_value(env, self->callback_, &fn);
  self->callback_.Reset();
  call_js(env, recv, fn, "libipc.channel.recv", 0, nullptr, static_cast<napi_async_context>(*self->addon_->bell_context));
  napi_close_handle_scope(env, scope);
}

namespace {

Doorbell* bell_of(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) return nullptr;
  auto& bells = info.Env().GetInstanceData<ChannelAddon>()->bells;
  auto it = bells.find(info[0].As<Napi::Number>().Uint32Value());
  return it == bells.end() ? nullptr : it->second.get();
}

}  // namespace

Napi::Value BellOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "bellOpen(path)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  ChannelAddon* addon = env.GetInstanceData<ChannelAddon>();
  uint32_t id = ++addon->next_bell;
  if (id == 0) id = ++addon->next_bell;
  auto bell = std::make_unique<Doorbell>(addon, id);
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  int uv_err = 0;
  int err = bell->open(info[0].As<Napi::String>().Utf8Value(), loop, &uv_err);
  if (err == -1) {
    Napi::Error::New(env, std::string("uv_poll_init: ") + uv_strerror(uv_err)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (err != 0) {
    errno_error(env, "mkfifo", err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  addon->bells.emplace(id, std::move(bell));
  return Napi::Number::New(env, id);
}

Napi::Value BellArm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Doorbell* bell = bell_of(info);
  if (bell == nullptr || info.Length() < 2 || !info[1].IsFunction()) {
    Napi::Error::New(env, "doorbell closed or no callback").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bell->arm(info[1].As<Napi::Function>());
  return env.Undefined();
}

Napi::Value BellDisarm(const Napi::CallbackInfo& info) {
  if (Doorbell* bell = bell_of(info)) bell->disarm();
  return info.Env().Undefined();
}

Napi::Value BellClose(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsNumber()) info.Env().GetInstanceData<ChannelAddon>()->bells.erase(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

}  // namespace chan
}  // namespace libipc
