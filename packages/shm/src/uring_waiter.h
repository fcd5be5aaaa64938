// Async futex waits completed by the kernel through io_uring (IORING_OP_FUTEX_WAIT, Linux 6.7+): the
// event loop polls an eventfd that the ring signals, so a wake-up from another process reaches
// JavaScript in one hop, without a helper thread. Where io_uring or its futex op is unavailable,
// WaitPool's threads are used instead.
#pragma once

#include <linux/io_uring.h>
#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <unordered_set>

#include "libipc/env_handles.h"
#include "wait_pool.h"

namespace libipc {

class UringWaiter {
 public:
  // nullptr when this kernel (or a seccomp policy) does not offer io_uring futex waits.
  static std::unique_ptr<UringWaiter> create(Napi::Env env, uv_loop_t* loop, EnvHandles* handles);
  ~UringWaiter();

  // False (job untouched) when the completion queue has no room for another wait: the caller uses the
  // thread pool for that one. The ring never holds more waits than its completion queue can report.
  bool submit(std::unique_ptr<WaitJob>& job);
  void cancel_mapping(const Mapping* mapping);
  void shutdown();  // env teardown: closing the ring cancels every pending wait
  void close_handle();
  size_t pending() const { return active_.size(); }

 private:
  UringWaiter(Napi::Env env, EnvHandles* handles) : env_(env), handles_(handles) {}
  bool setup(uv_loop_t* loop);
  io_uring_sqe* next_sqe();
  bool has_room(unsigned n);
  void submit_pending();
  void cancel(WaitJob* job);
  void reap();
  static void on_readable(uv_poll_t* handle, int status, int events);

  Napi::Env env_;
  EnvHandles* handles_;
  int ring_fd_ = -1;
  int event_fd_ = -1;
  void* sq_ptr_ = nullptr;
  size_t sq_size_ = 0;
  void* cq_ptr_ = nullptr;
  size_t cq_size_ = 0;
  io_uring_sqe* sqes_ = nullptr;
  size_t sqes_size_ = 0;
  unsigned* sq_head_ = nullptr;
  unsigned* sq_tail_ = nullptr;
  unsigned* sq_mask_ = nullptr;
  unsigned* sq_array_ = nullptr;
  unsigned* sq_flags_ = nullptr;
  unsigned cq_entries_ = 0;
  unsigned outstanding_ = 0;  // submitted entries whose completion is not reaped yet
  size_t uncancelled_ = 0;    // active waits that may still need a cancel entry
  size_t refs_ = 0;           // active waits that keep the event loop alive
  unsigned* cq_head_ = nullptr;
  unsigned* cq_tail_ = nullptr;
  unsigned* cq_mask_ = nullptr;
  io_uring_cqe* cqes_ = nullptr;
  unsigned to_submit_ = 0;
  uv_poll_t poll_;
  bool polling_ = false;
  bool handle_open_ = false;
  std::unique_ptr<Napi::AsyncContext> context_;
  std::unordered_set<WaitJob*> active_;
};

}  // namespace libipc
