// A mapped segment shared by its ArrayBuffer and by pending native waits; unmapped when the last lets go.
#pragma once

#include <atomic>
#include <memory>

#include "libipc/segment.h"

namespace libipc {

class Mapping {
 public:
  explicit Mapping(const MappedSegment& seg) : seg_(seg) {}
  ~Mapping() { unmap_segment(&seg_); }

  uint8_t* data() const { return static_cast<uint8_t*>(seg_.addr); }
  size_t size() const { return seg_.size; }
  const MappedSegment& segment() const { return seg_; }
  MappedSegment& segment() { return seg_; }

  // A user keeps the memory mapped; false once the owner released it and no waiter holds it.
  bool acquire() {
    int u = users_.load();
    while (u > 0) {
      if (users_.compare_exchange_weak(u, u + 1)) return true;
    }
    return false;
  }
  void release() {
    if (users_.fetch_sub(1) == 1) unmap_segment(&seg_);
  }
  // The JS owner lets go exactly once (close() or the ArrayBuffer's finalizer, whichever is first).
  void release_owner() {
    if (!owner_released_.exchange(true)) release();
  }
  bool owner_released() const { return owner_released_.load(); }

 private:
  MappedSegment seg_;
  std::atomic<int> users_{1};
  std::atomic<bool> owner_released_{false};
};

}  // namespace libipc
