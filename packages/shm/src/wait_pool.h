// Async futex waits on a small pool of our own threads, never on libuv's threadpool (a pending wait there
// starves fs). Each thread sleeps on up to 127 waits at once with futex_waitv (Linux 5.16+; one wait per thread
// before that) plus a control word that wakes it to take new waits, drop cancelled ones, or exit. Idle threads
// exit after a while; a thread that cannot be started fails that wait with an error, never an abort.
#pragma once

#include <linux/time_types.h>
#include <napi.h>
#include <pthread.h>
#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "libipc/env_handles.h"
#include "mapping.h"

namespace libipc {

struct WaitJob {
  std::shared_ptr<Mapping> mapping;
  const uint32_t* addr;
  uint32_t expected;
  int64_t deadline_ns;  // < 0: no timeout
  // Called once from the event loop with the outcome. A function reference, not a promise: Node-API frees
  // references with the environment, while a promise never settled at a worker's teardown would leak.
  Napi::FunctionReference callback;
  std::atomic<bool> cancelled{false};
  bool slept = false;  // a value change after we slept is a wake-up ('ok'), before it 'not-equal'
  bool ref = true;     // keeps the event loop alive while pending (like a ref'd timer)
  const char* result = "ok";
  __kernel_timespec timeout{};  // io_uring's linked timeout reads it at submission
  explicit WaitJob(Napi::Function fn) : callback(Napi::Persistent(fn)) {}
  // Delivers the outcome to JavaScript (event loop thread only).
  void settle(napi_env env, const char* outcome, napi_async_context context);
};

class WaitPool {
 public:
  WaitPool(Napi::Env env, uv_loop_t* loop, EnvHandles* handles);
  ~WaitPool();
  // Takes the job; when no thread can take it, returns an error (errno name in *errno_out) and frees nothing:
  // the caller still owns the job.
  const char* submit(std::unique_ptr<WaitJob>& job, const char** errno_out, const char** syscall_out);
  void cancel_mapping(const Mapping* mapping);  // close(): pending waits on it settle as 'closed'
  void shutdown();                              // env teardown: cancel everything, wait for the threads
  void close_handle();
  size_t threads() const;  // live threads (for tests and diagnostics)

 private:
  struct Worker {
    WaitPool* pool;
    pthread_t thread{};
    std::atomic<uint32_t> control{0};
    std::vector<WaitJob*> jobs;      // owned by the thread while it runs; handed over under mu_
    std::vector<WaitJob*> incoming;  // added by the event loop under mu_
    size_t assigned = 0;             // jobs + incoming, under mu_
  };
  static void* thread_entry(void* arg);
  void thread_main(Worker* w);
  bool sleep_once(Worker* w, uint32_t control);
  void finish(Worker* w, WaitJob* job, const char* result);
  void poke(Worker* w);
  void drain_done();

  Napi::Env env_;
  uv_async_t async_;
  EnvHandles* handles_;
  std::unique_ptr<Napi::AsyncContext> context_;
  mutable std::mutex mu_;
  std::vector<Worker*> workers_;
  std::deque<WaitJob*> done_;
  size_t live_threads_ = 0;
  std::condition_variable all_exited_;
  size_t pending_ = 0;  // ref'd waits not yet settled; event loop thread only
  bool stopping_ = false;
  bool handle_closed_ = false;
};

}  // namespace libipc
