// The channel's ring: copying fragments in and out with seqlock-published slots, cursor math, and the
// "wake only when someone sleeps" handshakes. No N-API here: the addon (src/) and the C++ client
// (libipc/channel.h) both drive it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "libipc/channel_layout.h"
#include "libipc/futex.h"

namespace libipc {
namespace chan {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// A channel's geometry, validated once and then read only from private memory: another process can rewrite
// the shared control block at any time, and a capacity or slot size re-read from it could divide by zero or
// index past the mapping.
struct Geometry {
  uint32_t type = 0;
  uint32_t on_full = 0;
  uint32_t capacity = 0;
  uint32_t slot_size = 0;
  uint32_t max_message = 0;
};

class Ring {
 public:
  Ring(uint8_t* base, size_t size, const Geometry& g)
      : base_(base),
        size_(size),
        c_(reinterpret_cast<Control*>(base + kControlOffset)),
        g_(g),
        pow2_(g.capacity != 0 && (g.capacity & (g.capacity - 1)) == 0) {}

  // Copies a segment's control block out of shared memory and checks it against the segment's size before
  // anything trusts its numbers; false when it does not add up.
  static bool read_geometry(const uint8_t* base, size_t size, Geometry* out) {
    if (base == nullptr || size < kRingOffset) return false;
    const Control* c = reinterpret_cast<const Control*>(base + kControlOffset);
    Geometry g;
    g.type = __atomic_load_n(&c->type, __ATOMIC_RELAXED);
    g.on_full = __atomic_load_n(&c->on_full, __ATOMIC_RELAXED);
    g.capacity = __atomic_load_n(&c->capacity, __ATOMIC_RELAXED);
    g.slot_size = __atomic_load_n(&c->slot_size, __ATOMIC_RELAXED);
    g.max_message = __atomic_load_n(&c->max_message, __ATOMIC_RELAXED);
    if (g.type != kTypeChannel && g.type != kTypeRoute) return false;
    if (g.on_full > kOnFullLag || g.capacity == 0 || g.slot_size < 64 || g.slot_size % 64 != 0) return false;
    if (c->max_handles != kMaxHandles || c->identities != kIdentitiesOffset || c->receivers != kReceiversOffset) return false;
    if (c->ring != kRingOffset || segment_size(g.capacity, g.slot_size) != size) return false;
    *out = g;
    return true;
  }
  static bool valid(const uint8_t* base, size_t size) {
    Geometry g;
    return read_geometry(base, size, &g);
  }

  static void init(uint8_t* base, uint32_t type, uint32_t on_full, uint32_t capacity, uint32_t slot_size, uint32_t max_message) {
    Control* c = reinterpret_cast<Control*>(base + kControlOffset);
    c->type = type;
    c->on_full = on_full;
    c->capacity = capacity;
    c->slot_size = slot_size;
    c->max_message = max_message;
    c->max_handles = kMaxHandles;
    c->identities = kIdentitiesOffset;
    c->receivers = kReceiversOffset;
    c->ring = kRingOffset;
    RobustMutex::init(&c->send_lock);
  }

  Control* control() const { return c_; }
  const Geometry& geometry() const { return g_; }
  uint32_t payload() const { return g_.slot_size - kSlotHeaderSize; }
  uint32_t capacity() const { return g_.capacity; }
  uint32_t max_message() const { return g_.max_message; }
  bool lag_mode() const { return g_.on_full == kOnFullLag; }
  bool is_route() const { return g_.type == kTypeRoute; }
  Receiver* receiver(uint32_t row) const { return reinterpret_cast<Receiver*>(base_ + kReceiversOffset) + row; }
  Slot* slot(uint64_t pos) const {
    // A 64-bit division costs more than the rest of a small message's copy: a power-of-two ring masks instead.
    const uint64_t index = pow2_ ? (pos & (g_.capacity - 1)) : (pos % g_.capacity);
    return reinterpret_cast<Slot*>(base_ + kRingOffset + static_cast<size_t>(index) * g_.slot_size);
  }
  uint8_t* slot_payload(Slot* s) const { return reinterpret_cast<uint8_t*>(s) + kSlotHeaderSize; }
  // Most messages fit one slot: that case skips a division.
  uint64_t fragments(size_t len) const { return len <= payload() ? 1 : (len + payload() - 1) / payload(); }

  // ---- receivers joining and leaving (the TS layer holds the segment lock for the identity table) ----

  void activate(uint32_t row) {
    Receiver* r = receiver(row);
    r->bell.fetch_add(1);  // the caller has just (re)created the row's doorbell
    r->cursor.store(c_->write_cursor.load(std::memory_order_acquire), std::memory_order_relaxed);
    r->missed.store(0, std::memory_order_relaxed);
    if (r->active.exchange(1, std::memory_order_acq_rel) == 0) c_->receiver_count.fetch_add(1);
  }

  // Exactly once per activation, whoever gets there first (the owner closing or a reaper).
  bool deactivate(uint32_t row) {
    uint32_t one = 1;
    if (!receiver(row)->active.compare_exchange_strong(one, 0)) return false;
    c_->receiver_count.fetch_sub(1);
    wake_senders();
    return true;
  }

  // ---- sender side (the caller holds send_lock) ----

  // The slowest active receiver's cursor (or the write cursor when none), and its row (-1 when none).
  uint64_t min_cursor(int* row_out = nullptr) const {
    uint64_t w = c_->write_cursor.load(std::memory_order_acquire);
    uint64_t m = w;
    int row = -1;
    Receiver* rows = receiver(0);
    for (uint32_t i = 0; i < kMaxHandles; i++) {
      if (rows[i].active.load(std::memory_order_acquire) == 0) continue;
      uint64_t cur = rows[i].cursor.load(std::memory_order_acquire);
      if (cur <= m) {
        m = cur;
        row = static_cast<int>(i);
      }
    }
    if (row_out) *row_out = row;
    return m;
  }

  // Free slots for the writer (re-reading the receivers' cursors only when the cached minimum says fewer than
  // `need`); in lag mode everything is always writable. A cached minimum is a safe lower bound: a receiver that
  // joins later starts at the write cursor, which is never below it.
  uint64_t free_slots(uint64_t need, uint64_t* cached_min) const {
    if (lag_mode()) return g_.capacity;
    uint64_t w = c_->write_cursor.load(std::memory_order_relaxed);
    uint64_t used = w - *cached_min;
    if (used + need > g_.capacity) {
      *cached_min = min_cursor();
      used = w - *cached_min;
    }
    return used >= g_.capacity ? 0 : g_.capacity - used;
  }

  // Writes fragments of data[*pos..] into free slots and publishes them; returns how many were written. With
  // `whole`, writes nothing unless every remaining fragment fits, so the message is published all at once: a
  // sender killed while copying publishes nothing. Without it (messages larger than the ring), fragments go out
  // as room appears and a receiver only hands over a message once its last fragment has arrived.
  // `sync` publishes with a full fence (pairs with sleeping receivers at once); a batch passes false and fences
  // once at its end.
  uint64_t write(const uint8_t* data, size_t len, size_t* pos, uint32_t tag, bool whole, uint64_t* cached_min, bool sync = true) {
    const uint32_t pay = payload();
    uint64_t need = *pos == 0 ? fragments(len) : fragments(len) - *pos / pay;
    uint64_t room = free_slots(whole ? need : 1, cached_min);
    if (room == 0 || (whole && room < need)) return 0;
    uint64_t w = c_->write_cursor.load(std::memory_order_relaxed);
    uint64_t msg = c_->next_msg.load(std::memory_order_relaxed);
    uint64_t n = std::min(room, need);
    size_t p = *pos;
    for (uint64_t i = 0; i < n; i++) {
      Slot* s = slot(w + i);
      size_t chunk = std::min<size_t>(pay, len - p);
      uint32_t flags = (p == 0 ? kFirst : 0) | (p + chunk == len ? kLast : 0);
      // Seqlock: mark the slot as being written before touching its bytes (a lagging reader may be copying it).
      s->seq.store(kSlotWriting, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_release);
      s->len = static_cast<uint32_t>(chunk);
      s->flags = flags;
      s->total = static_cast<uint32_t>(len);
      s->sender = tag;
      s->msg = msg;
      if (chunk) memcpy(slot_payload(s), data + p, chunk);
      s->seq.store(w + i + 1, std::memory_order_release);
      p += chunk;
    }
    if (p == len) c_->next_msg.store(msg + 1, std::memory_order_relaxed);
    *pos = p;
    // Two stores, not one with a computed order: compilers treat an order unknown at compile time as seq_cst.
    if (sync) {
      c_->write_cursor.store(w + n, std::memory_order_seq_cst);
    } else {
      c_->write_cursor.store(w + n, std::memory_order_release);
    }
    return n;
  }

  // After publishing: disarms the armed doorbells (the caller rings them), so a sleeping receiver is rung once
  // per sleep however many messages follow. The seq_cst load pairs with a receiver's seq_cst arming and
  // increment of recv_sleepers before it re-checks the cursor and sleeps.
  template <typename Ring>
  void wake_receivers(Ring&& ring_bell) const {
    if (c_->recv_sleepers.load(std::memory_order_seq_cst) == 0) return;
    Receiver* rows = receiver(0);
    for (uint32_t i = 0; i < kMaxHandles; i++) {
      if (rows[i].armed.load(std::memory_order_seq_cst) == 0 || rows[i].armed.exchange(0) != 1) continue;
      c_->recv_sleepers.fetch_sub(1);
      ring_bell(i, rows[i].bell.load(std::memory_order_acquire));
    }
  }

  // ---- receiver side (the caller owns `row`) ----

  bool pending(uint32_t row) const {
    return receiver(row)->cursor.load(std::memory_order_relaxed) != c_->write_cursor.load(std::memory_order_acquire);
  }

  // A sender about to wait for room: a receiver moving its cursor across the target wakes it (so a sender
  // waits for a batch of room, not one wake-up per freed slot).
  void set_room_target(uint64_t want) {
    uint64_t w = c_->write_cursor.load(std::memory_order_relaxed);
    uint64_t cap = g_.capacity;
    c_->room_target.store(w + std::min(want, cap) > cap ? w + std::min(want, cap) - cap : 0, std::memory_order_seq_cst);
  }

  // After a receiver moved its cursor from `from` to `to`: wakes a sleeping sender if it crossed the target.
  void notify_senders(uint64_t from, uint64_t to) {
    if (lag_mode()) return;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (c_->send_sleepers.load(std::memory_order_relaxed) == 0) return;
    uint64_t target = c_->room_target.load(std::memory_order_relaxed);
    if (from < target && to >= target) wake_senders();
  }

  void wake_senders() {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (c_->send_sleepers.load(std::memory_order_relaxed) == 0) return;
    c_->read_progress.fetch_add(1);
    futex_wake(reinterpret_cast<const uint32_t*>(&c_->read_progress));
  }

 private:
  uint8_t* base_;
  size_t size_;
  Control* c_;
  Geometry g_;
  bool pow2_;
};

}  // namespace chan
}  // namespace libipc
