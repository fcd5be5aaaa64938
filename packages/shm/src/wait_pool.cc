#include "wait_pool.h"

#include <algorithm>

#include "libipc/futex.h"

namespace libipc {

WaitPool::WaitPool(Napi::Env env, uv_loop_t* loop) : env_(env) {
  uv_async_init(loop, &async_, &WaitPool::on_async);
  async_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
  context_ = std::make_unique<Napi::AsyncContext>(env, "libipc.wait");
}

WaitPool::~WaitPool() { shutdown(); }

Napi::Promise WaitPool::submit(std::unique_ptr<WaitJob> job) {
  Napi::Promise promise = job->deferred.Promise();
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_.push_back(job.get());
    queue_.push_back(job.release());
    // Every queued wait needs a thread of its own: each sleeps in the kernel until woken.
    if (queue_.size() > idle_) {
      threads_.emplace_back(&WaitPool::thread_main, this);
    } else {
      cv_.notify_one();
    }
  }
  // A pending wait keeps the process alive, like a pending timer.
  if (pending_++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(&async_));
  return promise;
}

void WaitPool::thread_main() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    ++idle_;
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    --idle_;
    if (stopping_ && queue_.empty()) return;
    WaitJob* job = queue_.front();
    queue_.pop_front();
    lock.unlock();

    for (;;) {
      if (job->cancelled.load()) {
        job->result = "closed";
        break;
      }
      int64_t timeout = -1;
      if (job->deadline_ns >= 0) {
        timeout = job->deadline_ns - monotonic_ns();
        if (timeout <= 0) {
          job->result = "timed-out";
          break;
        }
      }
      WaitResult r = futex_wait(job->addr, job->expected, timeout);
      if (r == WaitResult::Interrupted) continue;
      if (job->cancelled.load()) continue;
      job->result = r == WaitResult::Woken ? "ok" : r == WaitResult::NotEqual ? "not-equal" : "timed-out";
      break;
    }

    lock.lock();
    active_.erase(std::find(active_.begin(), active_.end(), job));
    done_.push_back(job);
    uv_async_send(&async_);
  }
}

void WaitPool::on_async(uv_async_t* handle) { static_cast<WaitPool*>(handle->data)->drain_done(); }

void WaitPool::drain_done() {
  std::deque<WaitJob*> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(done_);
  }
  if (done.empty()) return;
  Napi::HandleScope scope(env_);
  // A callback scope runs the promise reactions (microtasks) right after we resolve.
  Napi::CallbackScope callback_scope(env_, *context_);
  for (WaitJob* job : done) {
    job->mapping->release();
    job->deferred.Resolve(Napi::String::New(env_, job->result));
    delete job;
    if (--pending_ == 0) uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
  }
}

void WaitPool::cancel_mapping(const Mapping* mapping) {
  std::lock_guard<std::mutex> lock(mu_);
  for (WaitJob* job : active_) {
    if (job->mapping.get() != mapping) continue;
    job->cancelled.store(true);
    // Spurious wake-ups of other waiters on this word are allowed by the futex contract.
    futex_wake(job->addr);
  }
}

void WaitPool::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (WaitJob* job : active_) {
      job->cancelled.store(true);
      futex_wake(job->addr);
    }
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads) t.join();
  // Jobs left in queues belong to an environment that is going away: free them without resolving.
  std::lock_guard<std::mutex> lock(mu_);
  for (WaitJob* job : queue_) {
    job->mapping->release();
    delete job;
  }
  for (WaitJob* job : done_) {
    job->mapping->release();
    delete job;
  }
  queue_.clear();
  done_.clear();
}

void WaitPool::close_handle(uv_close_cb cb, void* data) {
  async_.data = data;
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), cb);
}

}  // namespace libipc
