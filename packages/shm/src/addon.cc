// @libipc/shm native entry: only what must be native (mmap, futex, pidfd, /proc identity).
#include "addon.h"

#include <sys/socket.h>

#include <cstring>
#include <string>

#include "libipc/errno_name.h"
#include "libipc/process_identity.h"
#include "libipc/robust_mutex.h"
#include "libipc/segment.h"
#include "pid_watch.h"
#include "segment_handle.h"
#include "tcp_listen.h"

namespace libipc {

namespace {

bool string_arg(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  if (i >= info.Length() || !info[i].IsString()) {
    Napi::TypeError::New(info.Env(), "expected a string argument").ThrowAsJavaScriptException();
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  return true;
}

Napi::Value UnlinkSegment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!string_arg(info, 0, &name)) return env.Undefined();
  if (unlink(shm_path(name.c_str()).c_str()) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  errno_error(env, "unlink", errno).ThrowAsJavaScriptException();
  return env.Undefined();
}

// segmentIdentity(objectName) -> [dev, inode] (bigints), or undefined when absent. lstat: no fd, no link followed.
Napi::Value SegmentIdentity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!string_arg(info, 0, &name)) return env.Undefined();
  uint64_t dev = 0, ino = 0;
  int err = segment_identity(name.c_str(), &dev, &ino);
  if (err == ENOENT || err == ENOTDIR) return env.Undefined();
  if (err != 0) {
    errno_error(env, "lstat", err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::BigInt::New(env, dev));
  out.Set(1u, Napi::BigInt::New(env, ino));
  return out;
}

// unlinkSegmentIf(objectName, dev, inode) -> 'removed' | 'gone' | 'replaced': removes a leftover only while the name
// still refers to the object that was looked at.
Napi::Value UnlinkSegmentIf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!string_arg(info, 0, &name)) return env.Undefined();
  bool lossless = true;
  uint64_t dev = info.Length() > 1 && info[1].IsBigInt() ? info[1].As<Napi::BigInt>().Uint64Value(&lossless) : 0;
  uint64_t ino = info.Length() > 2 && info[2].IsBigInt() ? info[2].As<Napi::BigInt>().Uint64Value(&lossless) : 0;
  int err = unlink_segment_if(name.c_str(), dev, ino);
  if (err == 0) return Napi::String::New(env, "removed");
  if (err == ENOENT) return Napi::String::New(env, "gone");
  if (err == ESTALE) return Napi::String::New(env, "replaced");
  errno_error(env, "unlink", err).ThrowAsJavaScriptException();
  return env.Undefined();
}

// peerCredentials(fd) -> [pid, uid, gid] of the process at the other end of a connected Unix socket (SO_PEERCRED:
// set by the kernel at connect time, so a client cannot lie about it). Node's net module does not expose it.
Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : -1;
  struct ucred cred {};
  socklen_t len = sizeof(cred);
  if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    errno_error(env, "getsockopt", fd < 0 ? EBADF : errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::Number::New(env, cred.pid));
  out.Set(1u, Napi::Number::New(env, cred.uid));
  out.Set(2u, Napi::Number::New(env, cred.gid));
  return out;
}

// processStartTime(pid) -> bigint, or undefined for no such process / a zombie.
Napi::Value ProcessStartTime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ProcessIdentity id;
  int pid = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  if (!read_process_identity(pid, &id)) return env.Undefined();
  return Napi::BigInt::New(env, id.start_time);
}

// waitThreads() -> how many wait threads this environment runs now (idle ones exit after a while).
Napi::Value WaitThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(addon_state(info.Env())->waits->threads()));
}

// The environment (main thread or worker) goes away: release what it holds, in the order libuv needs.
void Teardown(void* arg) {
  auto* state = static_cast<AddonState*>(arg);
  state->pid_watches.clear();  // closes their pidfd handles; no callback runs after this
  for (HeldLock& h : state->held) {
    RobustMutex(h.mapping->data() + h.offset).abandon(h.acquired);
    h.mapping->release();
  }
  state->held.clear();
  state->leases.clear();  // pins kept on purpose (see HeldLease): the kernel breaks these leases as the thread exits
  state->waits->shutdown();
  if (state->uring) state->uring->shutdown();
  state->waits->close_handle();
  if (state->uring) state->uring->close_handle();
}

}  // namespace

Napi::Error errno_error(Napi::Env env, const char* what, int err) {
  Napi::Error e = Napi::Error::New(env, std::string(what) + ": " + strerror(err));
  e.Set("errno", Napi::String::New(env, errno_name(err)));
  e.Set("syscall", Napi::String::New(env, what));
  return e;
}

AddonState* addon_state(Napi::Env env) { return env.GetInstanceData<AddonState>(); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* state = new AddonState();
  napi_get_uv_event_loop(env, &state->loop);
  state->handles = std::make_unique<EnvHandles>(env, &Teardown, state);
  state->waits = std::make_unique<WaitPool>(env, state->loop, state->handles.get());
  state->uring = UringWaiter::create(env, state->loop, state->handles.get());
  env.SetInstanceData<AddonState>(state);

  exports.Set("SegmentHandle", SegmentHandle::Init(env));
  exports.Set("pidWatchOpen", Napi::Function::New<PidWatchOpen>(env, "pidWatchOpen"));
  exports.Set("pidWatchClose", Napi::Function::New<PidWatchClose>(env, "pidWatchClose"));
  exports.Set("pidWatchRef", Napi::Function::New<PidWatchRef>(env, "pidWatchRef"));
  exports.Set("unlinkSegment", Napi::Function::New<UnlinkSegment>(env, "unlinkSegment"));
  exports.Set("unlinkSegmentIf", Napi::Function::New<UnlinkSegmentIf>(env, "unlinkSegmentIf"));
  exports.Set("segmentIdentity", Napi::Function::New<SegmentIdentity>(env, "segmentIdentity"));
  exports.Set("waitBackend", Napi::String::New(env, state->uring ? "io_uring" : "threads"));
  exports.Set("waitThreads", Napi::Function::New<WaitThreads>(env, "waitThreads"));
  exports.Set("processStartTime", Napi::Function::New<ProcessStartTime>(env, "processStartTime"));
  exports.Set("peerCredentials", Napi::Function::New<PeerCredentials>(env, "peerCredentials"));
  exports.Set("listenTcp", Napi::Function::New<ListenTcp>(env, "listenTcp"));
  return exports;
}

}  // namespace libipc

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return libipc::Init(env, exports); }

NODE_API_MODULE(shm_native, InitAddon)
