#include "pid_watch.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "addon.h"
#include "libipc/js_call.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace libipc {

PidWatch::~PidWatch() { stop(); }

int PidWatch::start(int pid, Napi::Function callback, int* uv_err) {
  if (pid <= 0) return ESRCH;
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno;
  poll_ = FdPoll<PidWatch>::open(state_->loop, state_->handles.get(), fd, this, uv_err);
  if (poll_ == nullptr) return -1;
  state_->handles->track(this);
  uv_poll_start(&poll_->handle, UV_READABLE, &PidWatch::on_readable);
  callback_ = Napi::Persistent(callback);
  return 0;
}

void PidWatch::stop() {
  if (poll_ == nullptr) return;
  FdPoll<PidWatch>* poll = poll_;
  poll_ = nullptr;
  state_->handles->untrack(this);
  poll->close();
}

// The environment ends with the watch active: close the pidfd handle, never call into JavaScript again. The table
// that owns this watch is cleared right after (see Teardown in addon.cc).
void PidWatch::close_for_teardown() {
  if (poll_ == nullptr) return;
  FdPoll<PidWatch>* poll = poll_;
  poll_ = nullptr;
  poll->close();
  callback_.Reset();
}

void PidWatch::set_ref(bool ref) {
  if (poll_ == nullptr) return;
  auto* h = reinterpret_cast<uv_handle_t*>(&poll_->handle);
  ref ? uv_ref(h) : uv_unref(h);
}

void PidWatch::on_readable(uv_poll_t* handle, int status, int events) {
  PidWatch* self = FdPoll<PidWatch>::of(handle)->owner;
  if (self == nullptr || self->state_->handles->tearing_down()) return;
  napi_env env = self->callback_.Env();
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn = nullptr;
  napi_get_reference_value(env, self->callback_, &fn);
  // Fired once: the table lets go of the watch (this deletes it) before the callback runs.
  self->state_->pid_watches.erase(self->id_);
  napi_value global = nullptr;
  napi_get_global(env, &global);
  call_js(env, global, fn, "libipc.watchExit");
  napi_close_handle_scope(env, scope);
}

Napi::Value PidWatchOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "pidWatchOpen(pid, callback)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  AddonState* state = addon_state(env);
  uint32_t id = ++state->next_pid_watch;
  if (id == 0) id = ++state->next_pid_watch;
  auto watch = std::make_unique<PidWatch>(state, id);
  int uv_err = 0;
  int err = watch->start(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Function>(), &uv_err);
  if (err == -1) {
    Napi::Error::New(env, std::string("uv_poll_init: ") + uv_strerror(uv_err)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (err != 0) {
    errno_error(env, "pidfd_open", err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  state->pid_watches.emplace(id, std::move(watch));
  return Napi::Number::New(env, id);
}

Napi::Value PidWatchClose(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsNumber()) addon_state(info.Env())->pid_watches.erase(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

Napi::Value PidWatchRef(const Napi::CallbackInfo& info) {
  if (info.Length() > 1 && info[0].IsNumber()) {
    auto& table = addon_state(info.Env())->pid_watches;
    auto it = table.find(info[0].As<Napi::Number>().Uint32Value());
    if (it != table.end()) it->second->set_ref(info[1].ToBoolean().Value());
  }
  return info.Env().Undefined();
}

}  // namespace libipc
