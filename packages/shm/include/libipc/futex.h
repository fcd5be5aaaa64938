// Cross-process futex wait/wake on a 32-bit word in shared memory (Linux).
// Header-only so that other libipc addons (the channel core) use the same primitive.
#pragma once

#include <cerrno>
#include <climits>
#include <cstdint>
#include <ctime>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace libipc {

enum class WaitResult { Woken, NotEqual, TimedOut, Interrupted };

// Waits while *addr == expected. timeout_ns < 0 waits forever. Shared (not PRIVATE) futex: the word
// may be mapped at different addresses in different processes.
inline WaitResult futex_wait(const uint32_t* addr, uint32_t expected, int64_t timeout_ns) {
  struct timespec ts;
  struct timespec* tsp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout_ns / 1000000000LL);
    ts.tv_nsec = static_cast<long>(timeout_ns % 1000000000LL);
    tsp = &ts;
  }
  long rc = syscall(SYS_futex, addr, FUTEX_WAIT, expected, tsp, nullptr, 0);
  if (rc == 0) return WaitResult::Woken;
  switch (errno) {
    case EAGAIN: return WaitResult::NotEqual;
    case ETIMEDOUT: return WaitResult::TimedOut;
    default: return WaitResult::Interrupted;  // EINTR: the caller re-checks and waits again
  }
}

// Wakes up to `count` waiters (any process). Returns how many were woken.
inline int futex_wake(const uint32_t* addr, int count = INT_MAX) {
  long rc = syscall(SYS_futex, addr, FUTEX_WAKE, count, nullptr, nullptr, 0);
  return rc < 0 ? 0 : static_cast<int>(rc);
}

// A duration in ms from JavaScript as ns: negative or NaN means "no timeout" (-1); huge values are clamped
// (a double beyond int64 range converted to an integer is undefined behaviour).
inline int64_t ms_to_ns(double ms) {
  if (!(ms >= 0)) return -1;
  if (ms > 9.2e12) return INT64_MAX / 2;  // ~146 years
  return static_cast<int64_t>(ms * 1e6);
}

inline int64_t monotonic_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

}  // namespace libipc
