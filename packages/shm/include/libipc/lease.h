// A death lease: a liveness token in shared memory that the kernel itself breaks the moment its holder thread
// dies, before the dying process's address space is torn down.
//
// It is a process-shared robust pthread mutex, locked by the holder thread (the JavaScript thread that took it):
// the C library puts it on that thread's robust futex list, and the kernel walks that list at the start of the
// thread's exit (SIGKILL included), sets FUTEX_OWNER_DIED in the lock word and wakes one waiter. Watchers in any
// process sleep on the lock word; the first one woken wakes the others.
//
// Layout (96 bytes, 8-byte aligned; docs/layout.md "Lease"):
//   0   64 bytes  the C library's pthread_mutex_t (glibc: 40 or 48 bytes; musl: 40)
//   64  u32       offset of the lock word inside it (glibc 0, musl 4); 0xffffffff = no lease here
//   68  u32       holder pid
//   72  u32       holder tid (the thread on whose robust list it is)
//   76  u32       reserved (0)
//   80  u64       holder thread's start time (/proc/<tid>/stat field 22)
//   88  u64       reserved (0)
// Lock word (the kernel's robust futex ABI): bits 0-29 holder tid, bit 30 FUTEX_OWNER_DIED, bit 31 FUTEX_WAITERS.
#pragma once

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "futex.h"
#include "process_identity.h"

namespace libipc {

constexpr size_t kLeaseSize = 96;
constexpr size_t kLeaseMutexBytes = 64;
constexpr uint32_t kLeaseNone = 0xffffffffu;
constexpr uint32_t kFutexWaiters = 0x80000000u;
constexpr uint32_t kFutexOwnerDied = 0x40000000u;
constexpr uint32_t kFutexTidMask = 0x3fffffffu;
static_assert(sizeof(pthread_mutex_t) <= kLeaseMutexBytes, "pthread_mutex_t fits the lease");

struct LeaseMeta {
  std::atomic<uint32_t> word_offset;
  uint32_t pid;
  uint32_t tid;
  uint32_t reserved;
  uint64_t tid_start;
  uint64_t reserved2;
};
static_assert(sizeof(LeaseMeta) == 32, "lease metadata is 32 bytes");

enum class LeaseState { Free, Held, Released, OwnerDied };

inline int current_tid() { return static_cast<int>(syscall(SYS_gettid)); }

// The calling thread's tid and start time. Read from /proc once per thread (a thread keeps both for life); a new tid
// (a forked child's thread) reads again.
inline const ProcessIdentity& current_thread_identity() {
  thread_local ProcessIdentity cached{0, 0};
  const int tid = current_tid();
  if (cached.pid != tid || cached.start_time == 0) {
    ProcessIdentity id{tid, 0};
    read_process_identity(tid, &id);
    cached = id;
  }
  return cached;
}

// Where this C library keeps the lock word of a robust mutex: found once by locking one and looking for our tid.
inline uint32_t lease_word_offset() {
  static const uint32_t offset = [] {
    alignas(8) unsigned char buf[sizeof(pthread_mutex_t)];
    memset(buf, 0, sizeof buf);
    auto* m = reinterpret_cast<pthread_mutex_t*>(buf);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
    uint32_t found = 0;
    if (pthread_mutex_lock(m) == 0) {
      const uint32_t tid = static_cast<uint32_t>(current_tid());
      for (uint32_t off = 0; off + 4 <= sizeof buf; off += 4) {
        uint32_t v;
        memcpy(&v, buf + off, 4);
        if ((v & kFutexTidMask) == tid) {
          found = off;
          break;
        }
      }
      pthread_mutex_unlock(m);
    }
    pthread_mutex_destroy(m);
    return found;
  }();
  return offset;
}

class Lease {
 public:
  explicit Lease(void* at) : base_(static_cast<unsigned char*>(at)), meta_(reinterpret_cast<LeaseMeta*>(base_ + kLeaseMutexBytes)) {}

  // Marks the 96 bytes as "no lease here" (a registration of another process, which cannot hold one for it).
  static void clear(void* at) {
    memset(at, 0, kLeaseSize);
    reinterpret_cast<LeaseMeta*>(static_cast<unsigned char*>(at) + kLeaseMutexBytes)->word_offset.store(kLeaseNone);
  }

  // The lock word, or nullptr when there is no lease here (or the recorded offset is nonsense).
  std::atomic<uint32_t>* word() const {
    uint32_t off = meta_->word_offset.load(std::memory_order_acquire);
    if (off == kLeaseNone || off > kLeaseMutexBytes - 4 || off % 4 != 0) return nullptr;
    return reinterpret_cast<std::atomic<uint32_t>*>(base_ + off);
  }

  LeaseState state() const {
    std::atomic<uint32_t>* w = word();
    if (w == nullptr) return LeaseState::Free;
    uint32_t v = w->load(std::memory_order_acquire);
    if (v & kFutexOwnerDied) return LeaseState::OwnerDied;
    if ((v & kFutexTidMask) == 0) return meta_->tid == 0 ? LeaseState::Free : LeaseState::Released;
    // Held by a tid: the kernel marks a dead holder, but a mapping torn down before its holder died (or a word
    // written by someone else) is checked against the holder thread's identity too.
    if ((v & kFutexTidMask) == meta_->tid && meta_->tid_start != 0 && !is_alive(static_cast<int>(meta_->tid), meta_->tid_start)) {
      return LeaseState::OwnerDied;
    }
    return LeaseState::Held;
  }

  // Takes the lease on the calling thread. Refused (EBUSY) while another live thread holds it. The mutex is
  // initialised afresh: nobody else's robust list can hold it then (its holder released it, or is dead).
  int acquire() {
    if (state() == LeaseState::Held) return EBUSY;
    auto* m = reinterpret_cast<pthread_mutex_t*>(base_);
    memset(base_, 0, kLeaseMutexBytes);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    int err = pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
    if (err != 0) return err;
    err = pthread_mutex_trylock(m);
    if (err == EOWNERDEAD) err = pthread_mutex_consistent(m);
    if (err != 0) return err;
    const ProcessIdentity& self = self_identity();
    const ProcessIdentity& thread = current_thread_identity();
    meta_->pid = static_cast<uint32_t>(self.pid);
    meta_->tid = static_cast<uint32_t>(thread.pid);
    meta_->tid_start = thread.start_time;
    meta_->reserved = 0;
    meta_->reserved2 = 0;
    meta_->word_offset.store(lease_word_offset(), std::memory_order_release);
    return 0;
  }

  // Releases it (calling thread = holder only): watchers see 'released'. EPERM when this thread does not hold it.
  int release() {
    std::atomic<uint32_t>* w = word();
    if (w == nullptr || (w->load() & kFutexTidMask) != static_cast<uint32_t>(current_tid())) return EPERM;
    int err = pthread_mutex_unlock(reinterpret_cast<pthread_mutex_t*>(base_));
    // Wake every watcher, not just the one the C library wakes.
    futex_wake(reinterpret_cast<const uint32_t*>(w));
    return err;
  }

  // Before sleeping: sets FUTEX_WAITERS (so the kernel wakes a waiter when the holder dies) and returns the
  // word to sleep on; 0 when the lease is not held (nothing to wait for).
  uint32_t prepare_wait() {
    std::atomic<uint32_t>* w = word();
    if (w == nullptr) return 0;
    uint32_t v = w->load(std::memory_order_acquire);
    while ((v & kFutexTidMask) != 0 && !(v & kFutexOwnerDied) && !(v & kFutexWaiters)) {
      if (w->compare_exchange_weak(v, v | kFutexWaiters, std::memory_order_acq_rel)) return v | kFutexWaiters;
    }
    return ((v & kFutexTidMask) != 0 && !(v & kFutexOwnerDied)) ? v : 0;
  }

  // Offset of the word to sleep on, from the start of the lease (only meaningful while word() != nullptr).
  uint32_t word_offset() const { return meta_->word_offset.load(std::memory_order_acquire); }
  uint32_t holder_pid() const { return meta_->pid; }
  uint32_t holder_tid() const { return meta_->tid; }

 private:
  unsigned char* base_;
  LeaseMeta* meta_;
};

}  // namespace libipc
