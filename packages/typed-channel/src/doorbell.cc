// A receiver's doorbell: a named FIFO that the event loop polls directly (uv_poll_t), so a sender's wake-up
// reaches JavaScript without a helper thread hopping into the loop. Senders ring it with a one-byte write.
#include "doorbell.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace libipc {
namespace chan {

namespace {

Napi::Error errno_error(Napi::Env env, const char* what, int err) {
  Napi::Error e = Napi::Error::New(env, std::string(what) + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  return e;
}

void drain(int fd) {
  char buf[256];
  while (read(fd, buf, sizeof buf) > 0) {
  }
}

}  // namespace

Napi::Function Doorbell::Init(Napi::Env env) {
  return DefineClass(env, "Doorbell",
                     {InstanceMethod<&Doorbell::Arm>("arm"), InstanceMethod<&Doorbell::Disarm>("disarm"),
                      InstanceMethod<&Doorbell::Close>("close")});
}

// new Doorbell(path): creates the FIFO (0600; a leftover at the path is replaced) and opens it for reading.
// O_RDWR keeps it from ever reporting end-of-file, and writers' opens succeed only while we hold it.
Doorbell::Doorbell(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Doorbell>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "Doorbell(path)").ThrowAsJavaScriptException();
    return;
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (mkfifo(path.c_str(), 0600) != 0) {
    if (errno != EEXIST || unlink(path.c_str()) != 0 || mkfifo(path.c_str(), 0600) != 0) {
      errno_error(env, "mkfifo", errno).ThrowAsJavaScriptException();
      return;
    }
  }
  int fd = open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    unlink(path.c_str());
    errno_error(env, "open", err).ThrowAsJavaScriptException();
    return;
  }
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  poll_ = FdPoll<Doorbell>::open(loop, fd, this);
  path_ = path;
  napi_add_env_cleanup_hook(env, &Doorbell::cleanup, this);
  cleanup_hook_ = true;
}

Doorbell::~Doorbell() { stop(); }

void Doorbell::cleanup(void* arg) {
  auto* self = static_cast<Doorbell*>(arg);
  self->cleanup_hook_ = false;  // the hook is being run: do not remove it
  // The environment (a worker thread) ends with the receiver still open: leave no FIFO behind.
  if (self->poll_ != nullptr) unlink(self->path_.c_str());
  self->stop();
}

void Doorbell::stop() {
  if (cleanup_hook_) {
    napi_remove_env_cleanup_hook(Env(), &Doorbell::cleanup, this);
    cleanup_hook_ = false;
  }
  if (poll_ == nullptr) return;
  FdPoll<Doorbell>* poll = poll_;
  poll_ = nullptr;
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
  if (self == nullptr) return;
  uv_poll_stop(handle);
  drain(poll->fd);  // rings that came in while we were awake are covered by the caller's re-check
  if (self->callback_.IsEmpty()) return;
  // Raw N-API, statuses ignored: while a worker is being terminated a call into JS fails, and node-addon-api
  // would turn that failure into a fatal error.
  napi_env env = self->Env();
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback = self->callback_.Value();
  napi_value recv = self->self_.Value();
  self->callback_.Reset();
  self->self_.Reset();
  napi_async_context context;
  napi_value resource_name;
  if (napi_create_string_utf8(env, "libipc.channel.recv", NAPI_AUTO_LENGTH, &resource_name) == napi_ok &&
      napi_async_init(env, nullptr, resource_name, &context) == napi_ok) {
    napi_value result;
    if (napi_make_callback(env, context, recv, callback, 0, nullptr, &result) != napi_ok) {
      bool pending = false;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
        napi_value ignored;
        napi_get_and_clear_last_exception(env, &ignored);
      }
    }
    napi_async_destroy(env, context);
  }
  napi_close_handle_scope(env, scope);
}

// ---- the sender side ----

bool BellRinger::ring(uint32_t row, uint32_t generation) {
  Entry& e = entries_[row];
  for (int attempt = 0; attempt < 2; attempt++) {
    if (e.fd < 0 || e.generation != generation) {
      if (e.fd >= 0) close(e.fd);
      std::string path = prefix_ + std::to_string(row);
      e.fd = open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      e.generation = generation;
      if (e.fd < 0) return false;  // ENXIO/ENOENT: the receiver is gone; the reaper cleans up
    }
    const char one = 1;
    if (write(e.fd, &one, 1) == 1 || errno == EAGAIN) return true;  // EAGAIN: full of rings already
    close(e.fd);  // EPIPE: the row's receiver left and a new one replaced the FIFO: reopen once
    e.fd = -1;
  }
  return false;
}

BellRinger::~BellRinger() {
  for (auto& e : entries_) {
    if (e.fd >= 0) close(e.fd);
  }
}

}  // namespace chan
}  // namespace libipc
