// The shared-memory layout of a channel segment (docs: packages/typed-channel/docs/channel-layout.md).
// One source of truth: the addon and the TypeScript layer (which reads the offsets from the addon's `layout`
// export) and the C++ clients (libipc/channel.h) all use this header.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "libipc/robust_mutex.h"

namespace libipc {
namespace chan {

constexpr uint32_t kLayoutVersion = 1;
constexpr size_t kSegmentHeaderSize = 128;  // @libipc/shm's SegmentHeader
constexpr size_t kHeaderStateOffset = 8;    // its state word (futex): 3 = retired
constexpr size_t kHeaderLockOffset = 64;    // its RobustMutex guarding the identity table
constexpr uint32_t kStateRetired = 3;
constexpr uint32_t kMaxHandles = 128;        // handles (senders + receivers) attached at once
constexpr size_t kSlotHeaderSize = 32;

constexpr uint32_t kTypeChannel = 1;
constexpr uint32_t kTypeRoute = 2;
constexpr uint32_t kOnFullWait = 0;
constexpr uint32_t kOnFullLag = 1;

constexpr uint32_t kFirst = 1;  // fragment starts a message
constexpr uint32_t kLast = 2;   // fragment ends a message
constexpr uint64_t kSlotWriting = ~0ull;

// At offset 128, right after the segment header. Hot words sit on cache lines of their own.
struct Control {
  // Line 0: written once at creation, then read-only.
  uint32_t type;          //   0 kTypeChannel | kTypeRoute
  uint32_t on_full;       //   4 kOnFullWait | kOnFullLag
  uint32_t capacity;      //   8 slots in the ring
  uint32_t slot_size;     //  12 bytes per slot, 32-byte slot header included
  uint32_t max_message;   //  16 largest message in bytes
  uint32_t max_handles;   //  20 rows in the identity and receiver tables
  uint32_t identities;    //  24 offset of the IdentityTable (max_handles x 16 bytes)
  uint32_t receivers;     //  28 offset of the receiver table (max_handles x 64 bytes)
  uint64_t ring;          //  32 offset of the ring (capacity x slot_size bytes)
  std::atomic<uint32_t> receiver_count;  // 40 active receivers (maintained with CAS on `active`)
  std::atomic<uint32_t> membership;      // 44 futex word: bumped on every join/leave/reap
  RobustMutexLayout send_lock;           // 48 held by a sender for a whole message
  // Line 1: the route's one sender (identity + handle tag); pid 0 = none.
  alignas(64) std::atomic<uint32_t> route_pid;  //  64
  uint32_t route_tag;                            //  68
  uint64_t route_start;                          //  72
  // Line 2: the sender side.
  alignas(64) std::atomic<uint64_t> write_cursor;  // 128 slots published; its low 32 bits are the receivers' futex word
  std::atomic<uint64_t> next_msg;                  // 136 sequence number of the next message
  // Line 3: armed doorbells (receivers asleep or about to sleep); a sender scans the rows only when > 0.
  alignas(64) std::atomic<uint32_t> recv_sleepers;  // 192 (a sender rings doorbells only when > 0)
  // Line 4: senders sleeping for room, and the word they sleep on.
  alignas(64) std::atomic<uint32_t> send_sleepers;  // 256
  std::atomic<uint32_t> read_progress;              // 260 futex word of a sender waiting for room
  std::atomic<uint64_t> room_target;                // 264 a receiver whose cursor crosses this wakes the sender
  alignas(64) uint8_t end_[1];
};

// One per handle row; only the handle that owns the row writes `cursor`.
struct alignas(64) Receiver {
  std::atomic<uint32_t> active;    // 0 = not receiving; 1 = counts for back-pressure
  std::atomic<uint32_t> sleeping;  // 2: this row's handle is counted in send_sleepers (a reaper undoes it)
  std::atomic<uint64_t> cursor;    // next slot this receiver reads
  std::atomic<uint32_t> bell;      // generation of this row's doorbell FIFO (bumped by each receiver taking the row)
  std::atomic<uint32_t> armed;     // 1: the receiver sleeps, counted in recv_sleepers; whoever swaps it to 0 uncounts it
  std::atomic<uint64_t> missed;    // messages this row's receiver missed ('lag' mode), for tools; written by the owner
  uint64_t pad[4];
};
static_assert(sizeof(Receiver) == 64, "receiver row is one cache line");

// Slot header; the payload (slot_size - 32 bytes) follows.
struct Slot {
  std::atomic<uint64_t> seq;  // position + 1 once written; kSlotWriting while being (re)written
  uint32_t len;               // payload bytes in this fragment
  uint32_t flags;             // kFirst | kLast
  uint32_t total;             // whole message length
  uint32_t sender;            // the sending handle's tag (its row + 1): a handle skips its own messages
  uint64_t msg;               // message sequence number
};
static_assert(sizeof(Slot) == kSlotHeaderSize, "slot header is 32 bytes");

constexpr size_t kControlOffset = kSegmentHeaderSize;
constexpr size_t kControlSize = 320;
static_assert(offsetof(Control, send_lock) == 48, "layout");
static_assert(offsetof(Control, route_pid) == 64, "layout");
static_assert(offsetof(Control, write_cursor) == 128, "layout");
static_assert(offsetof(Control, recv_sleepers) == 192, "layout");
static_assert(offsetof(Control, send_sleepers) == 256, "layout");
static_assert(offsetof(Control, end_) == kControlSize, "layout");

constexpr size_t kIdentitiesOffset = kControlOffset + kControlSize;            // 448
constexpr size_t kReceiversOffset = kIdentitiesOffset + kMaxHandles * 16;      // 2496
constexpr size_t kRingOffset = (kReceiversOffset + kMaxHandles * 64 + 63) & ~size_t(63);

inline size_t segment_size(uint32_t capacity, uint32_t slot_size) {
  return kRingOffset + static_cast<size_t>(capacity) * slot_size;
}

}  // namespace chan
}  // namespace libipc
