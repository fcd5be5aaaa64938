// A receiver's side of the ring without Node: reading one message per step for one row, assembling fragmented
// messages, skipping its own handle's messages, and catching up after the ring overtook it ('lag' mode). The
// protocol is docs/channel-layout.md "Receiving"; the addon's ChannelCore::step (src/channel_recv.cc) follows
// the same rules with JavaScript buffers.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

#include "libipc/ring.h"

namespace libipc {
namespace chan {

class Reader {
 public:
  enum class Step { Nothing, Message, Lagged };

  Reader(Ring* ring, uint32_t row) : ring_(ring), row_(row), tag_(row + 1) {}

  // Starts afresh at the next message published (the row has just been activated).
  void reset(uint64_t next_msg) {
    drop_partial();
    skipping_ = false;
    expected_ = next_msg;
    seen_write_ = 0;
  }

  // Reads what is published for this row. Message: *out holds it. Lagged ('lag' mode only): *missed messages
  // were overwritten before we read them; the cursor now points at the oldest whole message still held.
  Step step(std::vector<uint8_t>* out, uint64_t* missed) {
    Receiver* me = ring_->receiver(row_);
    Control* c = ring_->control();
    uint64_t r = me->cursor.load(std::memory_order_relaxed);
    // The write cursor is re-read only once we caught up with what it said last (it only grows; every slot
    // is checked by its own seq anyway), so its cache line does not bounce between CPUs for every message.
    uint64_t w = seen_write_;
    if (r >= w) w = seen_write_ = c->write_cursor.load(std::memory_order_acquire);
    if (r == w) return Step::Nothing;
    const uint64_t r0 = r;
    const uint32_t pay = ring_->payload();
    bool delivered = false;
    while (r < w && !delivered) {
      Slot* s = ring_->slot(r);
      const uint64_t s1 = s->seq.load(std::memory_order_acquire);
      if (s1 != r + 1) return lagged(r, missed);
      // Each header field is read once into a local: a check and its use cannot see two different values.
      const uint32_t len = s->len, flags = s->flags, total = s->total, sender = s->sender;
      const uint64_t msg = s->msg;
      std::atomic_thread_fence(std::memory_order_acquire);
      if (s->seq.load(std::memory_order_relaxed) != s1) return lagged(r, missed);
      const uint8_t* src = ring_->slot_payload(s);
      if (len > pay || len > total || total > ring_->max_message()) {
        drop_partial();  // never trust a corrupt slot header: skip it
      } else if (flags & kFirst) {
        drop_partial();  // a first fragment ends any run whose sender died or gave up
        skipping_ = false;
        if (sender == tag_) {  // our own message
          if (flags & kLast) {
            expected_ = msg + 1;
          } else {
            skipping_ = true;
            skip_msg_ = msg;
          }
        } else if (flags & kLast) {
          if (len == total) {  // a whole message in one slot
            out->assign(src, src + len);
            std::atomic_thread_fence(std::memory_order_acquire);
            if (s->seq.load(std::memory_order_relaxed) != s1) return lagged(r, missed);
            delivered = true;
            expected_ = msg + 1;
          }
        } else {
          partial_.resize(total);
          if (len) memcpy(partial_.data(), src, len);
          std::atomic_thread_fence(std::memory_order_acquire);
          if (s->seq.load(std::memory_order_relaxed) != s1) return lagged(r, missed);
          partial_total_ = total;
          partial_filled_ = len;
          partial_msg_ = msg;
          assembling_ = true;
        }
      } else if (skipping_ && msg == skip_msg_) {
        if (flags & kLast) {
          skipping_ = false;
          expected_ = msg + 1;
        }
      } else if (assembling_ && msg == partial_msg_ && total == partial_total_ && partial_filled_ + len <= total) {
        if (len) memcpy(partial_.data() + partial_filled_, src, len);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (s->seq.load(std::memory_order_relaxed) != s1) return lagged(r, missed);
        partial_filled_ += len;
        if (flags & kLast) {
          if (partial_filled_ == partial_total_) {
            out->swap(partial_);
            delivered = true;
            expected_ = msg + 1;
          }
          drop_partial();
        }
      }
      // Anything else is the tail of a message we joined too late for, or whose start we lost: skipped.
      r++;
      // Progress per fragment, so a sender streaming a message larger than the ring can go on.
      me->cursor.store(r, std::memory_order_release);
    }
    ring_->notify_senders(r0, r);
    return delivered ? Step::Message : Step::Nothing;
  }

 private:
  void drop_partial() {
    assembling_ = false;
    partial_.clear();
    partial_total_ = partial_filled_ = 0;
  }

  // The slot at r was overwritten: jump to the oldest first fragment still held. In 'lag' mode that is
  // reported once; in 'wait' mode it can only be a receiver not yet counted when it joined (or a corrupt
  // ring): it resynchronises silently.
  Step lagged(uint64_t r, uint64_t* missed) {
    Control* c = ring_->control();
    drop_partial();
    skipping_ = false;
    const uint64_t w = c->write_cursor.load(std::memory_order_acquire);
    const uint64_t cap = ring_->capacity();
    uint64_t q = std::max<uint64_t>(r + 1, w > cap ? w - cap : 0);
    const uint64_t end = std::min<uint64_t>(w, q + cap);  // cursors come from shared memory: bound the scan
    uint64_t found_msg = 0;
    bool found = false;
    for (; q < end; q++) {
      Slot* s = ring_->slot(q);
      const uint64_t s1 = s->seq.load(std::memory_order_acquire);
      if (s1 != q + 1) continue;
      const uint32_t flags = s->flags;
      const uint64_t msg = s->msg;
      std::atomic_thread_fence(std::memory_order_acquire);
      if (s->seq.load(std::memory_order_relaxed) != s1 || !(flags & kFirst)) continue;
      found = true;
      found_msg = msg;
      break;
    }
    if (!found) {
      q = w;
      found_msg = c->next_msg.load(std::memory_order_acquire);
    }
    const uint64_t n = found_msg > expected_ ? found_msg - expected_ : 1;
    expected_ = found_msg;
    seen_write_ = 0;
    ring_->receiver(row_)->cursor.store(q, std::memory_order_release);
    if (!ring_->lag_mode()) return Step::Nothing;
    ring_->receiver(row_)->missed.fetch_add(n, std::memory_order_relaxed);
    *missed = n;
    return Step::Lagged;
  }

  Ring* ring_;
  uint32_t row_;
  uint32_t tag_;
  uint64_t expected_ = 0;
  uint64_t seen_write_ = 0;
  bool assembling_ = false;
  std::vector<uint8_t> partial_;
  uint32_t partial_total_ = 0;
  uint32_t partial_filled_ = 0;
  uint64_t partial_msg_ = 0;
  bool skipping_ = false;
  uint64_t skip_msg_ = 0;
};

}  // namespace chan
}  // namespace libipc
