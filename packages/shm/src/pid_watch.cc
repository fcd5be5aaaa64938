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

Napi::Function PidWatch::Init(Napi::Env env) {
  return DefineClass(env, "PidWatch",
                     {InstanceMethod<&PidWatch::Cancel>("cancel"), InstanceMethod<&PidWatch::Ref>("ref"),
                      InstanceMethod<&PidWatch::Unref>("unref"), InstanceAccessor<&PidWatch::Active>("active")});
}

// new PidWatch(pid, onExit): throws with errno 'ESRCH' when the pid is already gone.
PidWatch::PidWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PidWatch>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "PidWatch(pid, callback)").ThrowAsJavaScriptException();
    return;
  }
  int pid = info[0].As<Napi::Number>().Int32Value();
  if (pid <= 0) {
    errno_error(env, "pidfd_open", ESRCH).ThrowAsJavaScriptException();
    return;
  }
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    errno_error(env, "pidfd_open", errno).ThrowAsJavaScriptException();
    return;
  }
  AddonState* state = addon_state(env);
  int err = 0;
  poll_ = FdPoll<PidWatch>::open(state->loop, state->handles.get(), fd, this, &err);
  if (poll_ == nullptr) {
    Napi::Error::New(env, std::string("uv_poll_init: ") + uv_strerror(err)).ThrowAsJavaScriptException();
    return;
  }
  handles_ = state->handles.get();
  handles_->track(this);
  uv_poll_start(&poll_->handle, UV_READABLE, &PidWatch::on_readable);
  callback_ = Napi::Persistent(info[1].As<Napi::Function>());
  self_ = Napi::Persistent(info.This().As<Napi::Object>());
}

PidWatch::~PidWatch() { stop(); }

void PidWatch::stop() {
  if (poll_ == nullptr) return;
  FdPoll<PidWatch>* poll = poll_;
  poll_ = nullptr;
  handles_->untrack(this);
  poll->close();
  if (!self_.IsEmpty()) self_.Reset();
}

// The environment ends with the watch active: close the pidfd handle and let go of the references that kept this
// object alive (else the environment's finalizers never reach it: a leak per active watch); never call JS again.
void PidWatch::close_for_teardown() {
  if (poll_ == nullptr) return;
  FdPoll<PidWatch>* poll = poll_;
  poll_ = nullptr;
  poll->close();
  callback_.Reset();
  self_.Reset();
}

void PidWatch::on_readable(uv_poll_t* handle, int status, int events) {
  PidWatch* self = FdPoll<PidWatch>::of(handle)->owner;
  if (self == nullptr || self->handles_->tearing_down()) return;
  napi_env env = self->Env();
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value recv = nullptr, fn = nullptr;
  napi_get_reference_value(env, self->self_, &recv);  // kept in this scope across stop(), which drops self_
  napi_get_reference_value(env, self->callback_, &fn);
  self->callback_.Reset();
  self->stop();
  call_js(env, recv, fn, "libipc.watchExit");
  napi_close_handle_scope(env, scope);
}

Napi::Value PidWatch::Cancel(const Napi::CallbackInfo& info) {
  stop();
  callback_.Reset();
  return info.Env().Undefined();
}

Napi::Value PidWatch::Ref(const Napi::CallbackInfo& info) {
  if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
  return info.Env().Undefined();
}

Napi::Value PidWatch::Unref(const Napi::CallbackInfo& info) {
  if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
  return info.Env().Undefined();
}

Napi::Value PidWatch::Active(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), poll_ != nullptr); }

}  // namespace libipc
