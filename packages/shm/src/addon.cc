// @libipc/shm native entry: only what must be native (mmap, futex, pidfd, /proc identity).
#include "addon.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "libipc/process_identity.h"
#include "libipc/segment.h"
#include "pid_watch.h"
#include "segment_handle.h"

namespace libipc {

namespace {

const char* errno_name(int err) {
  switch (err) {
    case EEXIST: return "EEXIST";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case ENOSPC: return "ENOSPC";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ESRCH: return "ESRCH";
    case ENOSYS: return "ENOSYS";
    case EMFILE: return "EMFILE";
    case ENODATA: return "ENODATA";
    case EFBIG: return "EFBIG";
    default: return "EUNKNOWN";
  }
}

Napi::Value UnlinkSegment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "unlinkSegment(objectName)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (shm_unlink(name.c_str()) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  errno_error(env, "unlink", errno).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value SegmentInode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  return Napi::BigInt::New(env, segment_inode(name.c_str()));
}

// processStartTime(pid) -> bigint, or undefined for no such process / a zombie.
Napi::Value ProcessStartTime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ProcessIdentity id;
  int pid = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  if (!read_process_identity(pid, &id)) return env.Undefined();
  return Napi::BigInt::New(env, id.start_time);
}

// Closes the event-loop handles when an environment (main or worker) goes away.
void AsyncCleanup(napi_async_cleanup_hook_handle handle, void* arg) {
  auto* state = static_cast<AddonState*>(arg);
  state->closing = true;
  state->waits->shutdown();
  if (state->uring) state->uring->shutdown();
  struct Done {
    napi_async_cleanup_hook_handle handle;
    int open_handles;
  };
  auto* done = new Done{handle, state->uring ? 2 : 1};
  uv_close_cb closed = [](uv_handle_t* h) {
    auto* d = static_cast<Done*>(h->data);
    if (--d->open_handles > 0) return;
    napi_remove_async_cleanup_hook(d->handle);
    delete d;
  };
  state->waits->close_handle(closed, done);
  if (state->uring) state->uring->close_handle(closed, done);
}

}  // namespace

Napi::Error errno_error(Napi::Env env, const char* what, int err) {
  Napi::Error e = Napi::Error::New(env, std::string(what) + ": " + strerror(err));
  e.Set("errno", Napi::String::New(env, errno_name(err)));
  return e;
}

AddonState* addon_state(Napi::Env env) { return env.GetInstanceData<AddonState>(); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* state = new AddonState();
  napi_get_uv_event_loop(env, &state->loop);
  state->waits = std::make_unique<WaitPool>(env, state->loop);
  state->uring = UringWaiter::create(env, state->loop);
  env.SetInstanceData<AddonState>(state);
  napi_add_async_cleanup_hook(env, AsyncCleanup, state, nullptr);

  exports.Set("SegmentHandle", SegmentHandle::Init(env));
  exports.Set("PidWatch", PidWatch::Init(env));
  exports.Set("unlinkSegment", Napi::Function::New<UnlinkSegment>(env, "unlinkSegment"));
  exports.Set("segmentInode", Napi::Function::New<SegmentInode>(env, "segmentInode"));
  exports.Set("waitBackend", Napi::String::New(env, state->uring ? "io_uring" : "threads"));
  exports.Set("processStartTime", Napi::Function::New<ProcessStartTime>(env, "processStartTime"));
  return exports;
}

}  // namespace libipc

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return libipc::Init(env, exports); }

NODE_API_MODULE(shm_native, InitAddon)
