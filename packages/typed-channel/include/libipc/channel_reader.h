// A receiver's side of the ring: reading one message per step for one row, assembling fragmented messages,
// skipping its own handle's messages, and catching up after the ring overtook it ('lag' mode). The protocol is
// docs/channel-layout.md "Receiving". One implementation for both users: the C++ client (libipc::Channel, through
// chan::Reader below, into std::vector) and the Node addon (src/channel_recv.cc, into JavaScript buffers): they
// differ only in where the bytes go, which a Sink decides.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

#include "libipc/ring.h"

namespace libipc {
namespace chan {

enum class Step { Nothing, Message, Lagged };

// What a receiver remembers between steps.
struct ReaderState {
  uint64_t expected = 0;    // the message number it expects next
  uint64_t seen_write = 0;  // the write cursor as it last read it
  bool assembling = false;  // a fragmented message is being put together
  uint32_t partial_total = 0, partial_filled = 0;
  uint64_t partial_msg = 0;
  bool skipping = false;  // the fragments of its own message are being skipped
  uint64_t skip_msg = 0;
};

// A Sink receives the bytes of one step:
//   Take whole(src, len, r, r0, msg)  a one-slot message at slot r. Copied: copied out (the step then checks the
//       slot was not overwritten meanwhile). Held: handed out in place — the sink has set the cursor and told
//       the senders itself, and the step ends there. Failed: nothing delivered, the step ends.
//   bool begin(total)      makes room for a fragmented message (false: failed, the step ends)
//   uint8_t* room()        that room
//   void complete()        the message assembled in that room is the one delivered
//   void drop()            the room is given up
enum class Take { Copied, Held, Failed };

// The slot at r was overwritten: jump to the oldest first fragment still held. In 'lag' mode that is reported
// once (*missed); in 'wait' mode it can only be a receiver not yet counted when it joined (or a corrupt ring): it
// resynchronises silently.
template <class Sink>
Step catch_up(Ring& ring, uint32_t row, ReaderState& st, Sink& sink, uint64_t r, uint64_t* missed) {
  Control* c = ring.control();
  if (st.assembling) sink.drop();
  st.assembling = false;
  st.skipping = false;
  const uint64_t w = c->write_cursor.load(std::memory_order_acquire);
  const uint64_t cap = ring.capacity();
  uint64_t q = std::max<uint64_t>(r + 1, w > cap ? w - cap : 0);
  const uint64_t end = std::min<uint64_t>(w, q + cap);  // cursors come from shared memory: bound the scan
  uint64_t found_msg = 0;
  bool found = false;
  for (; q < end; q++) {
    Slot* s = ring.slot(q);
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
  const uint64_t n = found_msg > st.expected ? found_msg - st.expected : 1;
  st.expected = found_msg;
  st.seen_write = 0;
  ring.receiver(row)->cursor.store(q, std::memory_order_release);
  if (!ring.lag_mode()) return Step::Nothing;
  ring.receiver(row)->missed.fetch_add(n, std::memory_order_relaxed);
  *missed = n;
  return Step::Lagged;
}

// Reads what is published for `row` (whose own messages carry sender tag `tag`). Message: the sink holds it.
// Lagged ('lag' mode): *missed messages were overwritten unread; the cursor points at the oldest whole message
// still held. `notify`: tell blocked senders of the slots freed (a batch receive tells them once at its end).
template <class Sink>
Step read_step(Ring& ring, uint32_t row, uint32_t tag, ReaderState& st, Sink& sink, uint64_t* missed, bool notify = true) {
  Receiver* me = ring.receiver(row);
  Control* c = ring.control();
  uint64_t r = me->cursor.load(std::memory_order_relaxed);
  // The write cursor is re-read only once we caught up with what it said last: its cache line is written by the
  // sender for every message, and reading it for every message makes it bounce between CPUs. A stale value is a
  // lower bound (the cursor only grows), and every slot is checked by its own seq anyway.
  uint64_t w = st.seen_write;
  if (r >= w) w = st.seen_write = c->write_cursor.load(std::memory_order_acquire);
  if (r == w) return Step::Nothing;
  const uint64_t r0 = r;
  const uint32_t pay = ring.payload();
  bool delivered = false;
  auto drop_partial = [&] {
    if (st.assembling) sink.drop();
    st.assembling = false;
    st.partial_total = st.partial_filled = 0;
  };
  while (r < w && !delivered) {
    Slot* s = ring.slot(r);
    const uint64_t s1 = s->seq.load(std::memory_order_acquire);
    if (s1 != r + 1) return catch_up(ring, row, st, sink, r, missed);
    // Each header field is read once into a local: a check and its use cannot see two different values.
    const uint32_t len = s->len, flags = s->flags, total = s->total, sender = s->sender;
    const uint64_t msg = s->msg;
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s->seq.load(std::memory_order_relaxed) != s1) return catch_up(ring, row, st, sink, r, missed);
    const uint8_t* src = ring.slot_payload(s);
    if (len > pay || len > total || total > ring.max_message()) {
      drop_partial();  // never trust a corrupt slot header: skip it
    } else if (flags & kFirst) {
      drop_partial();  // a first fragment ends any run whose sender died or gave up
      st.skipping = false;
      if (sender == tag) {  // our own message
        if (flags & kLast) {
          st.expected = msg + 1;
        } else {
          st.skipping = true;
          st.skip_msg = msg;
        }
      } else if (flags & kLast) {
        if (len == total) {  // the common case: a whole message in one slot
          const Take t = sink.whole(src, len, r, r0, msg);
          if (t == Take::Held) {
            st.expected = msg + 1;
            return Step::Message;
          }
          if (t == Take::Failed) return Step::Nothing;
          std::atomic_thread_fence(std::memory_order_acquire);
          if (s->seq.load(std::memory_order_relaxed) != s1) return catch_up(ring, row, st, sink, r, missed);
          delivered = true;
          st.expected = msg + 1;
        }
      } else {
        if (!sink.begin(total)) return Step::Nothing;
        if (len) memcpy(sink.room(), src, len);
        st.assembling = true;  // before the check: a lag drops the room begun
        std::atomic_thread_fence(std::memory_order_acquire);
        if (s->seq.load(std::memory_order_relaxed) != s1) return catch_up(ring, row, st, sink, r, missed);
        st.partial_total = total;
        st.partial_filled = len;
        st.partial_msg = msg;
      }
    } else if (st.skipping && msg == st.skip_msg) {
      if (flags & kLast) {
        st.skipping = false;
        st.expected = msg + 1;
      }
    } else if (st.assembling && msg == st.partial_msg && total == st.partial_total && st.partial_filled + len <= total) {
      if (len) memcpy(sink.room() + st.partial_filled, src, len);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (s->seq.load(std::memory_order_relaxed) != s1) return catch_up(ring, row, st, sink, r, missed);
      st.partial_filled += len;
      if (flags & kLast) {
        if (st.partial_filled == st.partial_total) {
          sink.complete();
          st.assembling = false;  // completed, not dropped
          delivered = true;
          st.expected = msg + 1;
        }
        drop_partial();
      }
    }
    // Anything else is the tail of a message we joined too late for, or whose start we lost: skipped.
    r++;
    // Progress per fragment, so a sender streaming a message larger than the ring can go on.
    me->cursor.store(r, std::memory_order_release);
  }
  if (notify) ring.notify_senders(r0, r);
  return delivered ? Step::Message : Step::Nothing;
}

// The C++ client's receiver: messages into a std::vector.
class Reader {
 public:
  using Step = chan::Step;

  Reader(Ring* ring, uint32_t row) : ring_(ring), row_(row), tag_(row + 1) {}

  // Starts afresh at the next message published (the row has just been activated).
  void reset(uint64_t next_msg) {
    st_ = ReaderState{};
    st_.expected = next_msg;
    partial_.clear();
  }

  // Reads what is published for this row. Message: *out holds it. Lagged ('lag' mode only): *missed messages
  // were overwritten before we read them; the cursor now points at the oldest whole message still held.
  Step step(std::vector<uint8_t>* out, uint64_t* missed) {
    VectorSink sink{out, &partial_};
    return read_step(*ring_, row_, tag_, st_, sink, missed);
  }

 private:
  struct VectorSink {
    std::vector<uint8_t>* out;
    std::vector<uint8_t>* partial;
    Take whole(const uint8_t* src, uint32_t len, uint64_t, uint64_t, uint64_t) {
      out->assign(src, src + len);
      return Take::Copied;
    }
    bool begin(uint32_t total) {
      partial->resize(total);
      return true;
    }
    uint8_t* room() { return partial->data(); }
    void complete() {
      out->swap(*partial);
      partial->clear();
    }
    void drop() { partial->clear(); }
  };

  Ring* ring_;
  uint32_t row_;
  uint32_t tag_;
  ReaderState st_;
  std::vector<uint8_t> partial_;
};

}  // namespace chan
}  // namespace libipc
