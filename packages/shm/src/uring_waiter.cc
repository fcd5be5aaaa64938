#include "uring_waiter.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "libipc/futex.h"

namespace libipc {

namespace {

// Not yet in every distribution's kernel headers (Linux 6.7).
constexpr uint8_t kOpFutexWait = 51;
constexpr uint32_t kFutex2SizeU32 = 0x02;  // shared (not FUTEX2_PRIVATE): the word may be mapped by many processes
constexpr uint64_t kFutexMatchAny = 0xffffffffULL;
constexpr uint64_t kTimeoutTag = 1;  // user_data of linked timeouts (jobs are at least 8-byte aligned)
constexpr unsigned kEntries = 256;
constexpr unsigned kCqEntries = 8192;  // at most ~2,700 waits in the ring at once; more go to the thread pool

int uring_setup(unsigned entries, io_uring_params* p) { return static_cast<int>(syscall(__NR_io_uring_setup, entries, p)); }
int uring_enter(int fd, unsigned to_submit) {
  return static_cast<int>(syscall(__NR_io_uring_enter, fd, to_submit, 0, 0, nullptr, 0));
}
int uring_register(int fd, unsigned op, void* arg, unsigned n) {
  return static_cast<int>(syscall(__NR_io_uring_register, fd, op, arg, n));
}

template <typename T>
T* at(void* base, uint32_t off) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + off);
}

bool futex_op_supported(int fd) {
  const size_t size = sizeof(io_uring_probe) + 256 * sizeof(io_uring_probe_op);
  auto* probe = static_cast<io_uring_probe*>(calloc(1, size));
  bool ok = false;
  if (uring_register(fd, IORING_REGISTER_PROBE, probe, 256) == 0 && probe->last_op >= kOpFutexWait) {
    for (unsigned i = 0; i < probe->ops_len; i++) {
      if (probe->ops[i].op == kOpFutexWait) ok = (probe->ops[i].flags & IO_URING_OP_SUPPORTED) != 0;
    }
  }
  free(probe);
  return ok;
}

}  // namespace

std::unique_ptr<UringWaiter> UringWaiter::create(Napi::Env env, uv_loop_t* loop, EnvHandles* handles) {
  const char* backend = getenv("LIBIPC_WAIT_BACKEND");
  if (backend != nullptr && strcmp(backend, "threads") == 0) return nullptr;
  std::unique_ptr<UringWaiter> w(new UringWaiter(env, handles));
  if (!w->setup(loop)) return nullptr;
  return w;
}

bool UringWaiter::setup(uv_loop_t* loop) {
  io_uring_params p;
  memset(&p, 0, sizeof p);
  // A large completion queue (16 bytes an entry) bounds how many waits the ring holds at once.
  p.flags = IORING_SETUP_CQSIZE;
  p.cq_entries = kCqEntries;
  ring_fd_ = uring_setup(kEntries, &p);
  if (ring_fd_ < 0) return false;
  if (!(p.features & IORING_FEAT_SINGLE_MMAP) || !futex_op_supported(ring_fd_)) return false;
  cq_entries_ = p.cq_entries;
  sq_size_ = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  cq_size_ = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  if (cq_size_ > sq_size_) sq_size_ = cq_size_;
  sq_ptr_ = mmap(nullptr, sq_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd_, IORING_OFF_SQ_RING);
  if (sq_ptr_ == MAP_FAILED) return (sq_ptr_ = nullptr), false;
  cq_ptr_ = sq_ptr_;  // IORING_FEAT_SINGLE_MMAP: one mapping holds both rings
  sqes_size_ = p.sq_entries * sizeof(io_uring_sqe);
  void* sqes = mmap(nullptr, sqes_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd_, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) return false;
  sqes_ = static_cast<io_uring_sqe*>(sqes);
  sq_head_ = at<unsigned>(sq_ptr_, p.sq_off.head);
  sq_tail_ = at<unsigned>(sq_ptr_, p.sq_off.tail);
  sq_mask_ = at<unsigned>(sq_ptr_, p.sq_off.ring_mask);
  sq_array_ = at<unsigned>(sq_ptr_, p.sq_off.array);
  sq_flags_ = at<unsigned>(sq_ptr_, p.sq_off.flags);
  cq_head_ = at<unsigned>(cq_ptr_, p.cq_off.head);
  cq_tail_ = at<unsigned>(cq_ptr_, p.cq_off.tail);
  cq_mask_ = at<unsigned>(cq_ptr_, p.cq_off.ring_mask);
  cqes_ = at<io_uring_cqe>(cq_ptr_, p.cq_off.cqes);
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0 || uring_register(ring_fd_, IORING_REGISTER_EVENTFD, &event_fd_, 1) != 0) return false;
  if (uv_poll_init(loop, &poll_, event_fd_) != 0) return false;
  handle_open_ = true;
  handles_->opened();
  poll_.data = this;
  uv_poll_start(&poll_, UV_READABLE, &UringWaiter::on_readable);
  uv_unref(reinterpret_cast<uv_handle_t*>(&poll_));
  polling_ = true;
  context_ = std::make_unique<Napi::AsyncContext>(env_, "libipc.wait");
  return true;
}

UringWaiter::~UringWaiter() {
  shutdown();
  if (sqes_ != nullptr) munmap(sqes_, sqes_size_);
  if (sq_ptr_ != nullptr) munmap(sq_ptr_, sq_size_);
  if (ring_fd_ >= 0) close(ring_fd_);
  // The eventfd is closed in the poll handle's close callback (epoll must never see a stale fd number);
  // only a setup that failed before the handle existed closes it here.
  if (!handle_open_ && event_fd_ >= 0) close(event_fd_);
}

// A zeroed entry at the tail; the caller has checked there is room (has_room).
io_uring_sqe* UringWaiter::next_sqe() {
  unsigned index = (*sq_tail_ + to_submit_) & *sq_mask_;
  io_uring_sqe* sqe = &sqes_[index];
  memset(sqe, 0, sizeof *sqe);
  sq_array_[index] = index;
  to_submit_++;
  return sqe;
}

bool UringWaiter::has_room(unsigned n) {
  unsigned head = __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE);
  return *sq_tail_ + to_submit_ - head + n <= *sq_mask_ + 1;
}

void UringWaiter::submit_pending() {
  if (to_submit_ == 0) return;
  __atomic_store_n(sq_tail_, *sq_tail_ + to_submit_, __ATOMIC_RELEASE);
  unsigned n = to_submit_;
  to_submit_ = 0;
  while (n > 0) {
    int r = uring_enter(ring_fd_, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n -= static_cast<unsigned>(r);
  }
}

bool UringWaiter::submit(std::unique_ptr<WaitJob>& job) {
  const bool timed = job->deadline_ns >= 0;
  const unsigned need = timed ? 2 : 1;
  // Room for this wait's completions, plus one cancel for every wait that may still need one.
  if (ring_fd_ < 0 || outstanding_ + need + uncancelled_ + 1 > cq_entries_) return false;
  if (!has_room(need)) submit_pending();
  if (!has_room(need)) return false;
  WaitJob* j = job.release();
  io_uring_sqe* sqe = next_sqe();
  sqe->opcode = kOpFutexWait;
  sqe->fd = static_cast<int32_t>(kFutex2SizeU32);
  sqe->addr = reinterpret_cast<uint64_t>(j->addr);
  sqe->off = j->expected;
  sqe->addr3 = kFutexMatchAny;
  sqe->user_data = reinterpret_cast<uint64_t>(j);
  if (timed) {
    sqe->flags |= IOSQE_IO_LINK;
    int64_t left = j->deadline_ns - monotonic_ns();
    if (left < 0) left = 0;
    j->timeout.tv_sec = left / 1000000000LL;
    j->timeout.tv_nsec = left % 1000000000LL;
    io_uring_sqe* timeout = next_sqe();
    timeout->opcode = IORING_OP_LINK_TIMEOUT;
    timeout->addr = reinterpret_cast<uint64_t>(&j->timeout);
    timeout->len = 1;
    timeout->user_data = kTimeoutTag;
  }
  outstanding_ += need;
  uncancelled_++;
  active_.insert(j);
  submit_pending();
  if (j->ref && refs_++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(&poll_));
  return true;
}

void UringWaiter::cancel(WaitJob* job) {
  job->cancelled.store(true);
  if (!has_room(1)) submit_pending();
  if (!has_room(1)) return;
  uncancelled_--;
  outstanding_++;  // the cancel's own completion (its room was reserved when the wait was submitted)
  io_uring_sqe* sqe = next_sqe();
  sqe->opcode = IORING_OP_ASYNC_CANCEL;
  sqe->addr = reinterpret_cast<uint64_t>(job);
  sqe->user_data = kTimeoutTag;
}

void UringWaiter::cancel_mapping(const Mapping* mapping) {
  for (WaitJob* job : active_) {
    if (job->mapping.get() == mapping && !job->cancelled.load()) cancel(job);
  }
  submit_pending();
}

void UringWaiter::on_readable(uv_poll_t* handle, int status, int events) {
  static_cast<UringWaiter*>(handle->data)->reap();
}

void UringWaiter::reap() {
  uint64_t count;
  while (read(event_fd_, &count, sizeof count) > 0) {
  }
  Napi::HandleScope scope(env_);
  for (;;) {
    unsigned head = *cq_head_;
    unsigned tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
    if (head == tail) {
      // Completions the queue could not take wait in the kernel's overflow list until we ask for them.
      if (!(__atomic_load_n(sq_flags_, __ATOMIC_ACQUIRE) & IORING_SQ_CQ_OVERFLOW)) break;
      syscall(__NR_io_uring_enter, ring_fd_, 0, 0, IORING_ENTER_GETEVENTS, nullptr, 0);
      if (__atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE) == head) break;
      continue;
    }
    io_uring_cqe cqe = cqes_[head & *cq_mask_];
    __atomic_store_n(cq_head_, head + 1, __ATOMIC_RELEASE);
    if (outstanding_ > 0) outstanding_--;
    if (cqe.user_data == kTimeoutTag) continue;
    auto* job = reinterpret_cast<WaitJob*>(cqe.user_data);
    if (active_.erase(job) == 0) continue;
    if (!job->cancelled.load()) uncancelled_--;
    const char* result = "ok";
    if (cqe.res == -EAGAIN || cqe.res == -EWOULDBLOCK) result = "not-equal";
    else if (cqe.res == -ECANCELED || cqe.res == -ETIME) result = job->cancelled.load() ? "closed" : "timed-out";
    else if (cqe.res < 0) result = "ok";  // anything else (EINTR-like): a spurious wake-up, the caller re-checks
    job->mapping->release();
    if (job->ref && --refs_ == 0) uv_unref(reinterpret_cast<uv_handle_t*>(&poll_));
    job->settle(env_, result, *context_);
    delete job;
  }
}

void UringWaiter::shutdown() {
  if (polling_) {
    uv_poll_stop(&poll_);
    polling_ = false;
  }
  if (ring_fd_ < 0) return;
  close(ring_fd_);  // the kernel cancels every pending request with the ring
  ring_fd_ = -1;
  for (WaitJob* job : active_) {
    job->mapping->release();
    delete job;
  }
  active_.clear();
  refs_ = 0;
  outstanding_ = 0;
  uncancelled_ = 0;
}

void UringWaiter::close_handle() {
  if (!handle_open_) return;
  handle_open_ = false;
  poll_.data = this;
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), [](uv_handle_t* h) {
    auto* self = static_cast<UringWaiter*>(h->data);
    close(self->event_fd_);  // only now: libuv has removed it from epoll
    self->event_fd_ = -1;
    self->handles_->closed();
  });
}

}  // namespace libipc
