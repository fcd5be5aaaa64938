// An fd watched by the event loop (uv_poll_t), whose fd is closed only after libuv has let go of it, and whose
// environment's teardown waits for that. Shared by the addons' pidfd watches and channel doorbells.
#pragma once

#include <unistd.h>
#include <uv.h>

#include "env_handles.h"

namespace libipc {

template <typename Owner>
struct FdPoll {
  uv_poll_t handle;
  int fd;
  Owner* owner;  // nullptr once closed: a callback already queued must not reach a dead owner
  EnvHandles* env;

  // Takes over `fd` (closed on failure too). nullptr with *err set (a libuv error) when the loop refuses it.
  static FdPoll* open(uv_loop_t* loop, EnvHandles* env, int fd, Owner* owner, int* err) {
    auto* p = new FdPoll{};
    p->fd = fd;
    p->owner = owner;
    p->env = env;
    int r = uv_poll_init(loop, &p->handle, fd);
    if (r != 0) {
      ::close(fd);
      delete p;
      *err = r;
      return nullptr;
    }
    p->handle.data = p;
    env->opened();
    return p;
  }

  static FdPoll* of(uv_poll_t* handle) { return static_cast<FdPoll*>(handle->data); }

  // Stops watching and frees itself; the fd is closed in libuv's close callback.
  void close() {
    owner = nullptr;
    uv_poll_stop(&handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&handle), [](uv_handle_t* h) {
      auto* p = static_cast<FdPoll*>(h->data);
      ::close(p->fd);
      EnvHandles* env = p->env;
      delete p;
      env->closed();
    });
  }
};

}  // namespace libipc
