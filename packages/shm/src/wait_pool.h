// Async futex waits on our own threads, never on libuv's threadpool (a pending wait there starves fs).
// A parked thread takes a wait, sleeps in the kernel, then hands the result to the event loop.
#pragma once

#include <linux/time_types.h>
#include <napi.h>
#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "mapping.h"

namespace libipc {

struct WaitJob {
  std::shared_ptr<Mapping> mapping;
  const uint32_t* addr;
  uint32_t expected;
  int64_t deadline_ns;  // < 0: no timeout
  Napi::Promise::Deferred deferred;
  std::atomic<bool> cancelled{false};
  const char* result = "ok";
  __kernel_timespec timeout{};  // io_uring's linked timeout reads it at submission
  WaitJob(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

class WaitPool {
 public:
  WaitPool(Napi::Env env, uv_loop_t* loop);
  ~WaitPool();
  Napi::Promise submit(std::unique_ptr<WaitJob> job);
  void cancel_mapping(const Mapping* mapping);  // close(): pending waits on it settle as 'closed'
  void shutdown();                              // env teardown: cancel everything, join threads
  void close_handle(uv_close_cb cb, void* data);

 private:
  void thread_main();
  void drain_done();
  static void on_async(uv_async_t* handle);

  Napi::Env env_;
  uv_async_t async_;
  std::unique_ptr<Napi::AsyncContext> context_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WaitJob*> queue_;
  std::deque<WaitJob*> done_;
  std::vector<WaitJob*> active_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  size_t pending_ = 0;  // main thread only
  bool stopping_ = false;
};

}  // namespace libipc
