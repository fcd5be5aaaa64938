// A process-shared mutex that survives its holder's death, in 16 bytes of shared memory.
//
// Layout (little-endian, 8-byte aligned; header format 2, documented in docs/layout.md):
//   u32 word        bits 0-21 owner pid (0 = free), bit 22 ABANDONED, bits 23-30 generation, bit 31 WAITERS
//   u32 start_pid   pid whose start time is in `start` (0 while unpublished)
//   u64 start       owner's start time (/proc/<pid>/stat field 22)
// Ownership is by process identity, not by thread, so any thread of the owner may unlock, and a waiter that
// finds the owner dead (SIGKILL, zombie, pid reused) takes the lock over: ownerDied. Every acquisition bumps
// the generation, so a takeover's compare-and-swap cannot succeed on a word that was freed and re-taken in
// between by a process that got the dead owner's pid (ABA). ABANDONED marks a lock whose holder's Node
// environment (a worker thread) ended while holding it: dead, though its process lives.
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

constexpr uint32_t kMutexPidMask = 0x003fffffu;  // Linux pids are below 2^22 (PID_MAX_LIMIT)
constexpr uint32_t kMutexAbandoned = 0x00400000u;
constexpr uint32_t kMutexGenShift = 23;
constexpr uint32_t kMutexGenMask = 0x7f800000u;
constexpr uint32_t kMutexWaiters = 0x80000000u;
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

  static bool held(uint32_t v) { return (v & (kMutexPidMask | kMutexAbandoned)) != 0; }
  static uint32_t pid_of(uint32_t v) { return v & kMutexPidMask; }

  uint32_t load() const { return m_->word.load(std::memory_order_acquire); }
  uint32_t owner() const { return pid_of(load()); }

  // On success *acquired_word (if given) is the word as we set it, without WAITERS: it identifies this
  // acquisition (see abandon).
  LockResult try_lock(bool mark_waiters = false, uint32_t* acquired_word = nullptr) {
    const ProcessIdentity& self = self_identity();
    uint32_t v = load();
    bool died = false;
    if (held(v)) {
      if (!(v & kMutexAbandoned) && owner_alive(v)) return LockResult::Busy;
      died = true;
    }
    const uint32_t gen = (((v & kMutexGenMask) >> kMutexGenShift) + 1) << kMutexGenShift & kMutexGenMask;
    const uint32_t mine = (static_cast<uint32_t>(self.pid) & kMutexPidMask) | gen;
    const uint32_t next = mine | (v & kMutexWaiters) | (mark_waiters ? kMutexWaiters : 0);
    if (!m_->word.compare_exchange_strong(v, next, std::memory_order_acq_rel)) return LockResult::Busy;
    m_->start.store(self.start_time, std::memory_order_relaxed);
    m_->start_pid.store(static_cast<uint32_t>(self.pid), std::memory_order_release);
    if (acquired_word) *acquired_word = mine;
    return died ? LockResult::AcquiredOwnerDied : LockResult::Acquired;
  }

  // Bounded synchronous lock; timeout_ns < 0 waits forever.
  LockResult lock(int64_t timeout_ns, int64_t spin_ns = 20000, uint32_t* acquired_word = nullptr) {
    const int64_t start = monotonic_ns();
    bool slept = false;
    for (;;) {
      LockResult r = try_lock(slept, acquired_word);
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

  // Sets the WAITERS bit so that unlock wakes us; returns the held word to sleep on (0: it is free now).
  uint32_t mark_waiting() {
    uint32_t v = load();
    while (held(v) && !(v & kMutexWaiters)) {
      if (m_->word.compare_exchange_weak(v, v | kMutexWaiters, std::memory_order_acq_rel)) return v | kMutexWaiters;
    }
    return held(v) ? v : 0;
  }

  // Returns false when the caller's process does not own the mutex. The generation stays, so a stale
  // takeover cannot match a later holder's word.
  bool unlock() {
    uint32_t v = load();
    if ((v & kMutexAbandoned) || pid_of(v) != static_cast<uint32_t>(self_identity().pid)) return false;
    m_->start_pid.store(0, std::memory_order_relaxed);
    uint32_t old = m_->word.exchange(v & kMutexGenMask, std::memory_order_acq_rel);
    if (old & kMutexWaiters) futex_wake(reinterpret_cast<const uint32_t*>(&m_->word));
    return true;
  }

  // The holder's environment ends without unlocking: mark the lock ABANDONED (the next locker gets ownerDied
  // and repairs) if it is still the acquisition `acquired_word` names. Wakes every waiter.
  bool abandon(uint32_t acquired_word) {
    uint32_t v = load();
    while ((v & ~kMutexWaiters) == acquired_word) {
      if (m_->word.compare_exchange_weak(v, v | kMutexAbandoned, std::memory_order_acq_rel)) {
        futex_wake(reinterpret_cast<const uint32_t*>(&m_->word));
        return true;
      }
    }
    return false;
  }

  // The identity of the owner of a held word `v` (from mark_waiting), for watching its exit; start 0 while
  // unpublished; pid 0 when `v` is free or abandoned (nobody to watch: retry at once).
  ProcessIdentity owner_identity(uint32_t v) const {
    if (!held(v) || (v & kMutexAbandoned)) return ProcessIdentity{0, 0};
    uint32_t owner = pid_of(v);
    uint64_t start = 0;
    if (m_->start_pid.load(std::memory_order_acquire) == owner) start = m_->start.load(std::memory_order_relaxed);
    return ProcessIdentity{static_cast<int>(owner), start};
  }

  const uint32_t* word_address() const { return reinterpret_cast<const uint32_t*>(&m_->word); }

 private:
  bool owner_alive(uint32_t v) const {
    const uint32_t owner = pid_of(v);
    // start_pid is cleared on unlock, so a matching start_pid was published by this owner.
    uint64_t start = 0;
    if (m_->start_pid.load(std::memory_order_acquire) == owner) start = m_->start.load(std::memory_order_relaxed);
    return is_alive(static_cast<int>(owner), start);
  }

  RobustMutexLayout* m_;
};

}  // namespace libipc
