// ChannelCore's receive path: one message per call, copied into the caller's slab, assembled from fragments,
// or (in place) a view of its slot; and catching up after the ring overtook this receiver.
#include <cmath>
#include <cstring>

#include "channel_core.h"
#include "libipc/futex.h"
#include "napi_args.h"

namespace libipc {
namespace chan {

// recv(spinUs, slab, offset) -> number >= 0: a one-fragment message of that many bytes, copied into the slab
// (an ArrayBuffer the caller carves views from, like Buffer's pool) at offset; -1: nothing yet; <= -2: lagged,
// -2 - missed; or a Uint8Array: a message assembled from fragments. The slab must have a slot payload of room
// at offset. Spins up to spinUs for an active sender; the caller then sleeps on the write cursor.
Napi::Value ChannelCore::Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!usable(env)) return env.Undefined();
  double spin_us = std::min(number_arg(info, 0, 0), 1e6);
  uint8_t* slab = nullptr;
  size_t slab_size = 0;
  double off = number_arg(info, 2, -1);
  // Checked as doubles first: an out-of-range double converted to an integer is undefined behaviour.
  if (!slab_arg(info, 1, &slab, &slab_size) || !(off >= 0) || std::floor(off) != off ||
      off + ring_.payload() > static_cast<double>(slab_size)) {
    Napi::RangeError::New(env, "recv needs a slab with a slot payload of room at offset").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  slab_ = slab + static_cast<size_t>(off);
  release_view();
  in_place_ = info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  const int64_t deadline = spin_us > 0 ? monotonic_ns() + static_cast<int64_t>(spin_us * 1000) : 0;
  for (;;) {
    Napi::Value out = env.Undefined();
    bool got = step(env, &out);
    in_place_ = false;
    if (got) return out;
    if (env.IsExceptionPending()) return env.Undefined();
    if (spin_us <= 0 || monotonic_ns() >= deadline) return Napi::Number::New(env, -1);
    cpu_relax();
  }
}

// Reads what is published for this row; true when `out` holds a message or a lag count. `packed` (a batch
// receive): a one-slot message copied to slab_ leaves `out` empty with its length in copied_len_, and the
// caller tells blocked senders once for the batch.
bool ChannelCore::step(Napi::Env env, Napi::Value* out, bool packed) {
  if (!stashed_msg_.IsEmpty()) {  // what ended the last batch comes first
    *out = stashed_msg_.Value();
    stashed_msg_.Reset();
    return true;
  }
  if (stashed_lag_ != 0) {
    *out = Napi::Number::New(env, stashed_lag_);
    stashed_lag_ = 0;
    return true;
  }
  Receiver* me = ring_.receiver(row_);
  Control* c = ring_.control();
  uint64_t r = me->cursor.load(std::memory_order_relaxed);
  // The write cursor is re-read only once we have caught up with what it said last: its cache line is
  // written by the sender for every message, and reading it for every message makes it bounce between CPUs.
  // A stale value is a lower bound (the cursor only grows), and every slot is checked by its own seq anyway.
  uint64_t w = seen_write_;
  if (r >= w) w = seen_write_ = c->write_cursor.load(std::memory_order_acquire);
  if (r == w) return false;
  const uint64_t r0 = r;
  const uint32_t pay = ring_.payload();
  bool delivered = false;
  while (r < w && !delivered) {
    Slot* s = ring_.slot(r);
    uint64_t s1 = s->seq.load(std::memory_order_acquire);
    if (s1 != r + 1) return lagged(env, r, out);
    uint32_t len = s->len, flags = s->flags, total = s->total, sender = s->sender;
    uint64_t msg = s->msg;
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s->seq.load(std::memory_order_relaxed) != s1) return lagged(env, r, out);
    const uint8_t* src = ring_.slot_payload(s);
    if (len > pay || len > total || total > ring_.max_message()) {
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
        if (len == total && in_place_) return hand_out_view(env, src, len, r, r0, msg, out);  // channel_view.cc
        if (len == total) {  // the common case: a whole message in one slot, copied into the caller's slab
          memcpy(slab_, src, len);
          std::atomic_thread_fence(std::memory_order_acquire);
          if (s->seq.load(std::memory_order_relaxed) != s1) return lagged(env, r, out);
          if (packed) copied_len_ = len;
          else *out = Napi::Number::New(env, len);
          delivered = true;
          expected_ = msg + 1;
        }
      } else {
        Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, total);
        if (env.IsExceptionPending()) return false;
        uint8_t* dst = static_cast<uint8_t*>(ab.Data());
        memcpy(dst, src, len);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (s->seq.load(std::memory_order_relaxed) != s1) return lagged(env, r, out);
        partial_ = Napi::Persistent(Napi::Uint8Array::New(env, total, ab, 0).As<Napi::Object>());
        partial_data_ = dst;
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
      memcpy(partial_data_ + partial_filled_, src, len);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (s->seq.load(std::memory_order_relaxed) != s1) return lagged(env, r, out);
      partial_filled_ += len;
      if (flags & kLast) {
        if (partial_filled_ == partial_total_) {
          *out = partial_.Value();
          delivered = true;
          expected_ = msg + 1;
        }
        drop_partial();
      }
    }
    // Anything else is the tail of a message we joined too late for, or whose start we lost: skipped.
    r++;
    // Publish progress per fragment so a sender streaming a message larger than the ring can go on.
    me->cursor.store(r, std::memory_order_release);
  }
  if (!packed) ring_.notify_senders(r0, r);
  return delivered;
}

// The slot at r was overwritten: jump to the oldest first fragment still held. In 'lag' mode that is lagging,
// reported once with the number of messages missed. In 'wait' mode senders never overwrite what a counted
// receiver has not read, so it can only be a receiver that was not counted yet when it joined (it read the
// write cursor, then senders went on before its row became active) or a corrupt ring: those messages were
// sent before it joined, so it resynchronises silently (returns false: nothing delivered).
bool ChannelCore::lagged(Napi::Env env, uint64_t r, Napi::Value* out) {
  Control* c = ring_.control();
  drop_partial();
  skipping_ = false;
  uint64_t w = c->write_cursor.load(std::memory_order_acquire);
  uint64_t cap = ring_.capacity();
  uint64_t q = std::max<uint64_t>(r + 1, w > cap ? w - cap : 0);
  const uint64_t end = std::min<uint64_t>(w, q + cap);  // cursors come from shared memory: bound the scan
  uint64_t found_msg = 0;
  bool found = false;
  for (; q < end; q++) {
    Slot* s = ring_.slot(q);
    uint64_t s1 = s->seq.load(std::memory_order_acquire);
    if (s1 != q + 1) continue;
    uint32_t flags = s->flags;
    uint64_t msg = s->msg;
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
  uint64_t missed = found_msg > expected_ ? found_msg - expected_ : 1;
  expected_ = found_msg;
  ring_.receiver(row_)->cursor.store(q, std::memory_order_release);
  if (!ring_.lag_mode()) return false;
  ring_.receiver(row_)->missed.fetch_add(missed, std::memory_order_relaxed);
  *out = Napi::Number::New(env, -2.0 - static_cast<double>(missed));
  return true;
}

}  // namespace chan
}  // namespace libipc
