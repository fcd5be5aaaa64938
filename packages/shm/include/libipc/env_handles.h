// Every libuv handle an addon owns in one Node environment (the main thread or a worker), so that the
// environment's teardown closes them all and is held until libuv has run each close callback: a callback that
// runs after teardown (or a handle still open when the worker's loop is closed) crashes the whole process.
// Header-only: both libipc addons use it.
#pragma once

#include <node_api.h>
#include <uv.h>

#include <unordered_set>

namespace libipc {

// Something that owns a uv handle and can close it when the environment goes away.
class EnvClosable {
 public:
  virtual ~EnvClosable() = default;
  // Called once at teardown: stop, uv_close, and never call into JavaScript again.
  virtual void close_for_teardown() = 0;
};

class EnvHandles {
 public:
  // `on_teardown` runs first at teardown (e.g. to release locks or stop threads), on the environment's thread.
  explicit EnvHandles(napi_env env, void (*on_teardown)(void*) = nullptr, void* arg = nullptr)
      : on_teardown_(on_teardown), arg_(arg) {
    napi_add_async_cleanup_hook(env, &EnvHandles::teardown, this, &hook_);
  }

  bool tearing_down() const { return tearing_down_; }

  // A handle was initialised (uv_*_init succeeded): teardown waits for its close callback.
  void opened() { open_++; }
  // Its close callback ran.
  void closed() {
    if (--open_ == 0 && tearing_down_) finish();
  }
  // An owner whose handle is open; it is told to close at teardown unless it left first.
  void track(EnvClosable* c) { owners_.insert(c); }
  void untrack(EnvClosable* c) { owners_.erase(c); }

 private:
  static void teardown(napi_async_cleanup_hook_handle, void* arg) {
    auto* self = static_cast<EnvHandles*>(arg);
    self->tearing_down_ = true;
    if (self->on_teardown_) self->on_teardown_(self->arg_);
    std::unordered_set<EnvClosable*> owners;
    owners.swap(self->owners_);
    for (EnvClosable* c : owners) c->close_for_teardown();
    if (self->open_ == 0) self->finish();
  }
  void finish() {
    if (hook_ == nullptr) return;
    napi_async_cleanup_hook_handle h = hook_;
    hook_ = nullptr;
    napi_remove_async_cleanup_hook(h);  // the environment may now be torn down (and this addon unloaded)
  }

  void (*on_teardown_)(void*);
  void* arg_;
  napi_async_cleanup_hook_handle hook_ = nullptr;
  std::unordered_set<EnvClosable*> owners_;
  int open_ = 0;
  bool tearing_down_ = false;
};

}  // namespace libipc
