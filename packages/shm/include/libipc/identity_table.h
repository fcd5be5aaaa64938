// A fixed table of process identities in shared memory: who is attached to a segment (docs/layout.md "Identity
// table"; the TypeScript side is packages/shm/src/identity-table.ts). Rows of 16 bytes: u32 pid (0 = free),
// u32 tag (the owner's use), u64 start time. Not synchronised: use it while holding the segment's lock.
#pragma once

#include <cstdint>
#include <vector>

#include "libipc/process_identity.h"
#include "libipc/robust_mutex.h"

namespace libipc {

constexpr size_t kIdentityRowSize = 16;

class IdentityTable {
 public:
  IdentityTable(uint8_t* at, uint32_t capacity) : at_(at), capacity_(capacity) {}

  uint32_t capacity() const { return capacity_; }
  uint32_t pid(uint32_t row) const { return row < capacity_ ? __atomic_load_n(word(row, 0), __ATOMIC_ACQUIRE) : 0; }
  uint32_t tag(uint32_t row) const { return row < capacity_ ? __atomic_load_n(word(row, 1), __ATOMIC_RELAXED) : 0; }
  uint64_t start_time(uint32_t row) const {
    return row < capacity_ ? __atomic_load_n(reinterpret_cast<uint64_t*>(at_ + row * kIdentityRowSize + 8), __ATOMIC_RELAXED) : 0;
  }

  // Records a process (this one by default) in a free row; returns the row, or -1 when full.
  int add(uint32_t tag, const ProcessIdentity& who = self_identity()) {
    for (uint32_t row = 0; row < capacity_; row++) {
      if (pid(row) != 0) continue;
      __atomic_store_n(reinterpret_cast<uint64_t*>(at_ + row * kIdentityRowSize + 8), who.start_time, __ATOMIC_RELAXED);
      __atomic_store_n(word(row, 1), tag, __ATOMIC_RELAXED);
      __atomic_store_n(word(row, 0), static_cast<uint32_t>(who.pid), __ATOMIC_RELEASE);  // pid last
      return static_cast<int>(row);
    }
    return -1;
  }

  void remove(uint32_t row) {
    if (row < capacity_) __atomic_store_n(word(row, 0), 0u, __ATOMIC_RELEASE);
  }

  // By identity (pid + start time); a pid that cannot be a pid (a corrupt segment) is dead, never an error.
  bool is_live(uint32_t row) const {
    const uint32_t p = pid(row);
    return p != 0 && p <= kMutexPidMask && is_alive(static_cast<int>(p), start_time(row));
  }

  // Occupied rows (live or not yet reaped).
  std::vector<uint32_t> used() const {
    std::vector<uint32_t> rows;
    for (uint32_t row = 0; row < capacity_; row++) {
      if (pid(row) != 0) rows.push_back(row);
    }
    return rows;
  }

 private:
  uint32_t* word(uint32_t row, uint32_t i) const { return reinterpret_cast<uint32_t*>(at_ + row * kIdentityRowSize) + i; }
  uint8_t* at_;
  uint32_t capacity_;
};

}  // namespace libipc
