#include "wait_pool.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "libipc/errno_name.h"
#include "libipc/futex.h"
#include "libipc/js_call.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

namespace libipc {

namespace {

struct FutexWaitv {  // struct futex_waitv (Linux 5.16)
  uint64_t val;
  uint64_t uaddr;
  uint32_t flags;
  uint32_t reserved;
};
constexpr uint32_t kFutex32 = 2;          // FUTEX2_SIZE_U32, shared (no FUTEX2_PRIVATE): other processes wake us
constexpr size_t kWaitvMax = 128;         // the kernel's limit per call; one entry is the control word
constexpr size_t kMaxThreads = 64;        // at most 64 x 127 = 8128 waits on threads at once per environment
constexpr int64_t kIdleExitNs = 2000000000LL;  // a thread with nothing to wait for exits after this
constexpr int64_t kSingleSliceNs = 50000000LL;  // without futex_waitv: re-check cancellation this often

bool waitv_supported() {
  static const bool supported = [] {
    long rc = syscall(SYS_futex_waitv, nullptr, 0, 0, nullptr, CLOCK_MONOTONIC);
    return !(rc < 0 && errno == ENOSYS);  // EINVAL for zero entries means it exists
  }();
  return supported;
}

size_t per_thread() { return waitv_supported() ? kWaitvMax - 1 : 1; }

timespec abs_timespec(int64_t ns) {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(ns / 1000000000LL);
  ts.tv_nsec = static_cast<long>(ns % 1000000000LL);
  return ts;
}


}  // namespace

WaitPool::WaitPool(Napi::Env env, uv_loop_t* loop, EnvHandles* handles) : env_(env), handles_(handles) {
  uv_async_init(loop, &async_, [](uv_async_t* h) { static_cast<WaitPool*>(h->data)->drain_done(); });
  async_.data = this;
  handles_->opened();
  uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
  context_ = std::make_unique<Napi::AsyncContext>(env, "libipc.wait");
}

WaitPool::~WaitPool() { shutdown(); }

size_t WaitPool::threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_threads_;
}

void WaitPool::poke(Worker* w) {
  w->control.fetch_add(1, std::memory_order_acq_rel);
  futex_wake(reinterpret_cast<const uint32_t*>(&w->control));
}

const char* WaitPool::submit(std::unique_ptr<WaitJob>& job, const char** errno_out, const char** syscall_out) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Worker* w = nullptr;
    for (Worker* candidate : workers_) {
      if (candidate->assigned < per_thread()) {
        w = candidate;
        break;
      }
    }
    if (w == nullptr && !stopping_ && workers_.size() < kMaxThreads) {
      auto* fresh = new Worker{};
      fresh->pool = this;
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      pthread_attr_setstacksize(&attr, 256 * 1024);
      int err = pthread_create(&fresh->thread, &attr, &WaitPool::thread_entry, fresh);
      pthread_attr_destroy(&attr);
      if (err != 0) {
        delete fresh;
        *errno_out = errno_name(err);
        *syscall_out = "pthread_create";
        return "could not start a wait thread (the process is at its thread limit); settle some waits or raise the limit";
      }
      workers_.push_back(fresh);
      live_threads_++;
      w = fresh;
    }
    if (w == nullptr) {
      *errno_out = "EAGAIN";
      *syscall_out = "wait";
      return stopping_ ? "the environment is shutting down" : "too many waits pending in this thread (more than 8128); settle some first";
    }
    // A pending wait keeps the process alive, like a pending timer (unless asked not to).
    if (job->ref && pending_++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(&async_));
    w->incoming.push_back(job.release());
    w->assigned++;
    poke(w);
  }
  return nullptr;
}

void WaitJob::settle(napi_env env, const char* outcome, napi_async_context context) {
  napi_value fn = nullptr, recv = nullptr, arg = nullptr;
  if (napi_get_reference_value(env, callback, &fn) == napi_ok && napi_get_global(env, &recv) == napi_ok &&
      napi_create_string_utf8(env, outcome, NAPI_AUTO_LENGTH, &arg) == napi_ok) {
    call_js(env, recv, fn, "libipc.wait", 1, &arg, context);
  }
  callback.Reset();
}

void* WaitPool::thread_entry(void* arg) {
  auto* w = static_cast<Worker*>(arg);
  w->pool->thread_main(w);
  return nullptr;
}

void WaitPool::thread_main(Worker* w) {
  int64_t idle_since = monotonic_ns();
  for (;;) {
    uint32_t control;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) break;
      for (WaitJob* job : w->incoming) w->jobs.push_back(job);
      w->incoming.clear();
      control = w->control.load(std::memory_order_acquire);
      if (!w->jobs.empty()) {
        idle_since = monotonic_ns();
      } else if (monotonic_ns() - idle_since >= kIdleExitNs) {
        workers_.erase(std::find(workers_.begin(), workers_.end(), w));
        delete w;
        if (--live_threads_ == 0) all_exited_.notify_all();
        return;
      }
    }
    sleep_once(w, control);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (--live_threads_ == 0) all_exited_.notify_all();
}

// One sleep on the control word and every job of this thread; settles what ended. Returns false on error.
bool WaitPool::sleep_once(Worker* w, uint32_t control) {
  std::vector<WaitJob*> jobs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs = w->jobs;
  }
  std::vector<WaitJob*> ended;
  std::vector<const char*> results;
  auto end = [&](WaitJob* job, const char* result) {
    ended.push_back(job);
    results.push_back(result);
  };
  const int64_t now = monotonic_ns();
  int64_t deadline = jobs.empty() ? now + kIdleExitNs : -1;
  for (WaitJob* job : jobs) {
    if (job->cancelled.load()) end(job, "closed");
    else if (job->deadline_ns >= 0 && job->deadline_ns <= now) end(job, "timed-out");
    else if (job->deadline_ns >= 0 && (deadline < 0 || job->deadline_ns < deadline)) deadline = job->deadline_ns;
  }
  if (ended.empty()) {
    if (waitv_supported()) {
      FutexWaitv vec[kWaitvMax];
      size_t n = 0;
      vec[n++] = FutexWaitv{control, reinterpret_cast<uint64_t>(&w->control), kFutex32, 0};
      for (WaitJob* job : jobs) vec[n++] = FutexWaitv{job->expected, reinterpret_cast<uint64_t>(job->addr), kFutex32, 0};
      timespec ts = abs_timespec(deadline);
      long rc = syscall(SYS_futex_waitv, vec, n, 0, deadline >= 0 ? &ts : nullptr, CLOCK_MONOTONIC);
      int err = rc < 0 ? errno : 0;
      if (rc >= 1 && static_cast<size_t>(rc) < n) {
        end(jobs[rc - 1], "ok");
      } else if (err == EAGAIN) {
        // Some word differed when we went to sleep: those waits are over.
        for (WaitJob* job : jobs) {
          if (__atomic_load_n(job->addr, __ATOMIC_ACQUIRE) != job->expected) end(job, job->slept ? "ok" : "not-equal");
        }
      } else if (err == ETIMEDOUT) {
        const int64_t t = monotonic_ns();
        for (WaitJob* job : jobs) {
          if (job->deadline_ns >= 0 && job->deadline_ns <= t) end(job, "timed-out");
        }
      }
      if (err != EAGAIN) {
        for (WaitJob* job : jobs) job->slept = true;
      }
    } else if (!jobs.empty()) {
      // One wait per thread: sleep on it in slices, so cancellation is seen within kSingleSliceNs.
      WaitJob* job = jobs[0];
      int64_t slice = kSingleSliceNs;
      if (job->deadline_ns >= 0 && job->deadline_ns - now < slice) slice = job->deadline_ns - now;
      WaitResult r = futex_wait(job->addr, job->expected, slice);
      if (r == WaitResult::Woken) end(job, "ok");
      else if (r == WaitResult::NotEqual) end(job, job->slept ? "ok" : "not-equal");
      else if (job->deadline_ns >= 0 && monotonic_ns() >= job->deadline_ns) end(job, "timed-out");
      job->slept = true;
    } else {
      futex_wait(reinterpret_cast<const uint32_t*>(&w->control), control, deadline - now);
    }
  }
  if (ended.empty()) return true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < ended.size(); i++) {
      WaitJob* job = ended[i];
      auto it = std::find(w->jobs.begin(), w->jobs.end(), job);
      if (it == w->jobs.end()) continue;  // already settled by an earlier pass
      w->jobs.erase(it);
      w->assigned--;
      job->result = job->cancelled.load() ? "closed" : results[i];
      done_.push_back(job);
    }
  }
  uv_async_send(&async_);
  return true;
}

void WaitPool::drain_done() {
  if (handles_->tearing_down()) return;  // shutdown() frees what is left
  std::deque<WaitJob*> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(done_);
  }
  if (done.empty()) return;
  Napi::HandleScope scope(env_);
  for (WaitJob* job : done) {
    job->mapping->release();
    const bool ref = job->ref;
    job->settle(env_, job->result, *context_);
    delete job;
    if (ref && --pending_ == 0) uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
  }
}

void WaitPool::cancel_mapping(const Mapping* mapping) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Worker* w : workers_) {
    bool hit = false;
    for (auto* list : {&w->jobs, &w->incoming}) {
      for (WaitJob* job : *list) {
        if (job->mapping.get() != mapping) continue;
        job->cancelled.store(true);
        hit = true;
      }
    }
    // The control word changes before the wake: the thread cannot sleep through it.
    if (hit) poke(w);
  }
}

void WaitPool::shutdown() {
  std::vector<Worker*> workers;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (Worker* w : workers_) poke(w);
    all_exited_.wait(lock, [this] { return live_threads_ == 0; });
    workers.swap(workers_);
  }
  // Jobs left belong to an environment that is going away: free them without resolving.
  auto drop = [](WaitJob* job) {
    job->mapping->release();
    delete job;
  };
  for (Worker* w : workers) {
    for (WaitJob* job : w->jobs) drop(job);
    for (WaitJob* job : w->incoming) drop(job);
    delete w;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (WaitJob* job : done_) drop(job);
  done_.clear();
}

void WaitPool::close_handle() {
  if (handle_closed_) return;
  handle_closed_ = true;
  async_.data = handles_;
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), [](uv_handle_t* h) { static_cast<EnvHandles*>(h->data)->closed(); });
}

}  // namespace libipc
