// A process-shared mutex that survives its holder's death, in 16 bytes of shared memory.
//
// Layout (little-endian, 8-byte aligned), documented in docs/layout.md:
//   u32 word        0 = free, else owner pid | WAITERS bit
//   u32 start_pid   pid whose start time is in `start` (0 while unpublished)
//   u64 start       owner's start time (/proc/<pid>/stat field 22)
// Ownership is by process identity, not by thread, so any thread of the owner may unlock, and a
// waiter that finds the owner dead (SIGKILL, zombie, pid reused) takes the lock over: ownerDied.
#pragma once

#include <atomic>
#include <cstdint>

#include "futex.h"
#include "process_identity.h"

namespace libipc {

struct RobustMutexLayout {
  std::atomic<uint32_t> word;
  std::atomic<uint32_t> start_pid;
  std::atomic<uint64_t> start;
};
static_assert(sizeof(RobustMutexLayout) == 16, "robust mutex layout is 16 bytes");

constexpr uint32_t kMutexWaiters = 0x80000000u;
constexpr uint32_t kMutexPidMask = 0x7fffffffu;
// A sleeping waiter re-checks the owner's liveness this often: bounds recovery after a SIGKILL.
constexpr int64_t kMutexRecheckNs = 5 * 1000000LL;

enum class LockResult { Acquired, AcquiredOwnerDied, Busy, TimedOut };

class RobustMutex {
 public:
  explicit RobustMutex(void* at) : m_(static_cast<RobustMutexLayout*>(at)) {}

  static void init(void* at) {
    auto* m = static_cast<RobustMutexLayout*>(at);
    m->start.store(0, std::memory_order_relaxed);
    m->start_pid.store(0, std::memory_order_relaxed);
    m->word.store(0, std::memory_order_release);
  }

  uint32_t owner() const { return m_->word.load(std::memory_order_acquire) & kMutexPidMask; }

  LockResult try_lock(bool mark_waiters = false) {
    const ProcessIdentity& self = self_identity();
    uint32_t v = m_->word.load(std::memory_order_acquire);
    uint32_t owner = v & kMutexPidMask;
    bool died = false;
    if (owner != 0) {
      if (owner_alive(owner)) return LockResult::Busy;
      died = true;
    }
    uint32_t next = static_cast<uint32_t>(self.pid) | (v & kMutexWaiters) | (mark_waiters ? kMutexWaiters : 0);
    if (!m_->word.compare_exchange_strong(v, next, std::memory_order_acq_rel)) return LockResult::Busy;
    m_->start.store(self.start_time, std::memory_order_relaxed);
    m_->start_pid.store(static_cast<uint32_t>(self.pid), std::memory_order_release);
    return died ? LockResult::AcquiredOwnerDied : LockResult::Acquired;
  }

  // Bounded synchronous lock; timeout_ns < 0 waits forever.
  LockResult lock(int64_t timeout_ns, int64_t spin_ns = 20000) {
    const int64_t start = monotonic_ns();
    bool slept = false;
    for (;;) {
      LockResult r = try_lock(slept);
      if (r != LockResult::Busy) return r;
      int64_t elapsed = monotonic_ns() - start;
      if (timeout_ns >= 0 && elapsed >= timeout_ns) return LockResult::TimedOut;
      if (elapsed < spin_ns) continue;
      uint32_t observed = mark_waiting();
      if (observed == 0) continue;
      int64_t slice = kMutexRecheckNs;
      if (timeout_ns >= 0 && timeout_ns - elapsed < slice) slice = timeout_ns - elapsed;
      futex_wait(reinterpret_cast<const uint32_t*>(&m_->word), observed, slice);
      slept = true;
    }
  }

  // Sets the WAITERS bit so that unlock wakes us; returns the word to sleep on (0: it is free now).
  uint32_t mark_waiting() {
    uint32_t v = m_->word.load(std::memory_order_acquire);
    while ((v & kMutexPidMask) != 0 && !(v & kMutexWaiters)) {
      if (m_->word.compare_exchange_weak(v, v | kMutexWaiters, std::memory_order_acq_rel)) return v | kMutexWaiters;
    }
    return (v & kMutexPidMask) == 0 ? 0 : v;
  }

  // Returns false when the caller's process does not own the mutex.
  bool unlock() {
    uint32_t v = m_->word.load(std::memory_order_acquire);
    if ((v & kMutexPidMask) != static_cast<uint32_t>(self_identity().pid)) return false;
    m_->start_pid.store(0, std::memory_order_relaxed);
    uint32_t old = m_->word.exchange(0, std::memory_order_acq_rel);
    if (old & kMutexWaiters) futex_wake(reinterpret_cast<const uint32_t*>(&m_->word));
    return true;
  }

  // The owner's identity for watching its exit; start 0 while it is not yet published.
  ProcessIdentity owner_identity() const {
    uint32_t owner = this->owner();
    uint64_t start = 0;
    if (owner != 0 && m_->start_pid.load(std::memory_order_acquire) == owner) start = m_->start.load(std::memory_order_relaxed);
    return ProcessIdentity{static_cast<int>(owner), start};
  }

  const uint32_t* word_address() const { return reinterpret_cast<const uint32_t*>(&m_->word); }

 private:
  bool owner_alive(uint32_t owner) const {
    // start_pid is cleared on unlock, so a matching start_pid was published by this owner.
    uint64_t start = 0;
    if (m_->start_pid.load(std::memory_order_acquire) == owner) start = m_->start.load(std::memory_order_relaxed);
    return is_alive(static_cast<int>(owner), start);
  }

  RobustMutexLayout* m_;
};

}  // namespace libipc
