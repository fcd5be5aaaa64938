// ChannelCore's batches: many messages per call, sent under one lock with one wake-up, received into one slab.
#include <cmath>
#include <cstring>

#include "channel_core.h"
#include "libipc/futex.h"
#include "libipc/robust_mutex.h"
#include "napi_args.h"

namespace libipc {
namespace chan {

// The common case of a batch receive without step()'s generality: consecutive one-slot messages from other
// handles, nothing half-assembled or stashed. Copies them into the slab (add() records each) and stops at
// anything else, which step() then handles. The cursor is published every 64 messages and at the end of the
// run, not per message: a sender spinning for room reads it, and every store would pull its cache line away.
template <typename Add>
void ChannelCore::copy_plain_run(uint8_t* slab, size_t slab_size, uint32_t limit, size_t* at, uint32_t* n, Add&& add) {
  if (rs_.assembling || rs_.skipping || !stashed_msg_.IsEmpty() || stashed_lag_ != 0) return;
  Receiver* me = ring_.receiver(row_);
  const uint32_t pay = ring_.payload();
  const uint32_t max_message = ring_.max_message();
  uint64_t r = me->cursor.load(std::memory_order_relaxed);
  const uint64_t r0 = r;
  uint64_t w = rs_.seen_write;
  if (r >= w) w = rs_.seen_write = ring_.control()->write_cursor.load(std::memory_order_acquire);
  while (*n < limit && r < w && *at + pay <= slab_size) {
    Slot* s = ring_.slot(r);
    const uint64_t s1 = s->seq.load(std::memory_order_acquire);
    if (s1 != r + 1) break;
    const uint32_t len = s->len, flags = s->flags, total = s->total, sender = s->sender;
    const uint64_t msg = s->msg;
    if (flags != (kFirst | kLast) || len != total || len > pay || len > max_message || sender == tag_) break;
    memcpy(slab + *at, ring_.slot_payload(s), len);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s->seq.load(std::memory_order_relaxed) != s1) break;  // overwritten meanwhile: step() reports the lag
    rs_.expected = msg + 1;
    add(len);
    r++;
    if ((r & 63) == 0) me->cursor.store(r, std::memory_order_release);
    if (r == w) w = rs_.seen_write = ring_.control()->write_cursor.load(std::memory_order_acquire);
  }
  if (r != r0) me->cursor.store(r, std::memory_order_release);
}

// The shared loop of the batch sends. next(i, &data, &len) gives message i (false: stop before it). Arguments
// 1 and 2 of the call are selfReceives and spinUs. Messages are published as they are written (a sender killed
// mid-batch has delivered a prefix of whole messages); the fence that pairs with sleeping receivers is paid
// once per batch, and sleeping receivers are woken before waiting for room and at the end.
template <typename Next>
Napi::Value ChannelCore::send_batch(const Napi::CallbackInfo& info, uint32_t count, Next&& next) {
  Napi::Env env = info.Env();
  bool self_receives = number_arg(info, info.Length() - 2, 0) != 0;
  double spin_us = std::min(number_arg(info, info.Length() - 1, 0), 1e6);
  Control* c = ring_.control();
  if (c->receiver_count.load(std::memory_order_acquire) <= (self_receives ? 1u : 0u)) return Napi::Number::New(env, -1);
  RobustMutex lock(&c->send_lock);
  if (lock.try_lock() == LockResult::Busy) return Napi::Number::New(env, -2);
  const int64_t deadline = spin_us > 0 ? monotonic_ns() + static_cast<int64_t>(spin_us * 1000) : 0;
  uint32_t sent = 0;
  bool woken = false;
  for (; sent < count; sent++) {
    static const uint8_t empty = 0;
    const uint8_t* data = nullptr;
    size_t len = 0;
    if (!next(sent, &data, &len) || len > ring_.max_message()) break;
    if (data == nullptr) data = &empty;
    const uint64_t need = ring_.fragments(len);
    if (need > ring_.capacity()) break;
    size_t pos = 0;
    uint64_t n = ring_.write(data, len, &pos, tag_, true, &cached_min_, false);
    while (n == 0 && spin_us > 0 && monotonic_ns() < deadline) {
      if (!woken && sent > 0) {  // receivers asleep would never make the room we wait for
        std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with a receiver arming its bell
        wake_receivers();
        woken = true;
      }
      cpu_relax();
      if (ring_.free_slots(need, &cached_min_) >= need) n = ring_.write(data, len, &pos, tag_, true, &cached_min_, false);
    }
    if (n == 0) break;
  }
  lock.unlock();
  std::atomic_thread_fence(std::memory_order_seq_cst);  // the writes above used release stores
  if (sent > 0) wake_receivers();
  return Napi::Number::New(env, sent);
}

// recvPacked(max, slab, offset, starts, align, spinUs, lengths?) -> how many messages (up to `max`) were
// copied into the slab one after another from `offset`, each starting `align`-aligned (1 or 8): starts[i] is
// message i's start relative to `offset`, starts[n] the end of the last; lengths[i] (when given) its length.
// 0: nothing came within spinUs. <= -2: lagged (-2 - missed), before anything newer. A Uint8Array: one message
// assembled from fragments that did not fit the slab (a batch of one). A lag or such a message met after some
// messages ends the batch and is what the next receive returns. One native call and one check for blocked
// senders per batch; no JS value per message.
Napi::Value ChannelCore::RecvPacked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!usable(env)) return env.Undefined();
  double max = number_arg(info, 0, 0);
  double off = number_arg(info, 2, -1);
  double align = number_arg(info, 4, 1);
  double spin_us = std::min(number_arg(info, 5, 0), 1e6);
  uint8_t* slab = nullptr;
  size_t slab_size = 0;
  uint32_t* starts = u32_array_arg(info, 3, max + 1);
  uint32_t* lengths = info.Length() > 6 && !info[6].IsUndefined() ? u32_array_arg(info, 6, max) : nullptr;
  if (!(max >= 1) || max > 1e6 || !slab_arg(info, 1, &slab, &slab_size) || !(off >= 0) || std::floor(off) != off ||
      off + ring_.payload() > static_cast<double>(slab_size) || !(align == 1 || align == 8) || starts == nullptr ||
      (info.Length() > 6 && !info[6].IsUndefined() && lengths == nullptr)) {
    Napi::RangeError::New(env, "recvPacked needs max >= 1, a slab with a slot payload of room at offset, max + 1 starts and align 1 or 8")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  release_view();
  const size_t start = static_cast<size_t>(off);
  const size_t mask = static_cast<size_t>(align) - 1;
  const uint32_t limit = static_cast<uint32_t>(max);
  Receiver* me = ring_.receiver(row_);
  const uint64_t r0 = me->cursor.load(std::memory_order_relaxed);
  int64_t deadline = 0;
  size_t at = start, end = start;
  uint32_t n = 0;
  Napi::Value result = env.Undefined();
  auto add = [&](size_t len) {
    starts[n] = static_cast<uint32_t>(at - start);
    if (lengths != nullptr) lengths[n] = static_cast<uint32_t>(len);
    n++;
    end = at + len;
    at = (end + mask) & ~mask;
  };
  while (n < limit && at + ring_.payload() <= slab_size) {
    // Runs of plain messages take the fast path; step() below handles whatever else comes (or nothing).
    const uint32_t before = n;
    copy_plain_run(slab, slab_size, limit, &at, &n, add);
    if (n != before) continue;
    slab_ = slab + at;
    Napi::Value one;
    if (!step(env, &one, true)) {
      if (env.IsExceptionPending() || n > 0 || spin_us <= 0) break;
      if (deadline == 0) deadline = monotonic_ns() + static_cast<int64_t>(spin_us * 1000);
      if (monotonic_ns() >= deadline) break;
      cpu_relax();
      continue;
    }
    if (one.IsEmpty()) {  // a one-slot message, copied to slab_
      add(copied_len_);
    } else if (one.IsNumber()) {  // lagged
      if (n == 0) result = one;
      else stashed_lag_ = one.As<Napi::Number>().DoubleValue();
      break;
    } else {  // assembled from fragments: packed in when it fits, else handed over on its own
      Napi::Uint8Array msg = one.As<Napi::Uint8Array>();
      if (at + msg.ByteLength() <= slab_size) {
        if (msg.ByteLength() > 0) memcpy(slab + at, msg.Data(), msg.ByteLength());
        add(msg.ByteLength());
      } else {
        if (n == 0) result = one;
        else stashed_msg_ = Napi::Persistent(one.As<Napi::Object>());
        break;
      }
    }
  }
  ring_.notify_senders(r0, me->cursor.load(std::memory_order_relaxed));
  if (env.IsExceptionPending()) return env.Undefined();
  if (!result.IsUndefined()) return result;
  starts[n] = static_cast<uint32_t>(end - start);  // the end of the last message (unaligned)
  return Napi::Number::New(env, n);
}

// trySendMany(messages, selfReceives, spinUs) -> how many of the messages (a prefix) were sent: each one whole
// and published on its own, under one lock, with one wake-up of sleeping receivers for the batch. Stops at a
// message that needs streaming (larger than the ring) or when the ring stays full past spinUs; -1 when there
// is no receiver; -2 when another sender holds the lock.
Napi::Value ChannelCore::TrySendMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!usable(env)) return env.Undefined();
  if (info.Length() < 1 || !info[0].IsArray()) {
    Napi::TypeError::New(env, "messages must be an array of Uint8Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array list = info[0].As<Napi::Array>();
  return send_batch(info, list.Length(), [&](uint32_t i, const uint8_t** data, size_t* len) {
    napi_value item;
    napi_typedarray_type type;
    void* d = nullptr;
    // napi_get_typedarray_info refuses (napi_invalid_arg) anything that is not a typed array.
    if (napi_get_element(env, list, i, &item) != napi_ok ||
        napi_get_typedarray_info(env, item, &type, len, &d, nullptr, nullptr) != napi_ok || type != napi_uint8_array) {
      return false;  // checked by the caller; never written
    }
    *data = static_cast<const uint8_t*>(d);
    return true;
  });
}

// trySendPacked(data, offsets, selfReceives, spinUs): like trySendMany for messages packed one after another
// in one Uint8Array: message i is data[offsets[i], offsets[i + 1]). No JS value is read per message.
Napi::Value ChannelCore::TrySendPacked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!usable(env)) return env.Undefined();
  napi_typedarray_type data_type, offsets_type;
  size_t data_len = 0, offsets_len = 0;
  void* data = nullptr;
  void* offsets_data = nullptr;
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsTypedArray() ||
      napi_get_typedarray_info(env, info[0], &data_type, &data_len, &data, nullptr, nullptr) != napi_ok ||
      napi_get_typedarray_info(env, info[1], &offsets_type, &offsets_len, &offsets_data, nullptr, nullptr) != napi_ok ||
      data_type != napi_uint8_array || offsets_type != napi_uint32_array || offsets_len < 1) {
    Napi::TypeError::New(env, "trySendPacked(data: Uint8Array, offsets: Uint32Array of count + 1)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const uint8_t* bytes = static_cast<const uint8_t*>(data);
  const uint32_t* offsets = static_cast<const uint32_t*>(offsets_data);
  return send_batch(info, static_cast<uint32_t>(offsets_len - 1), [&](uint32_t i, const uint8_t** out, size_t* len) {
    uint32_t a = offsets[i], b = offsets[i + 1];
    if (b < a || b > data_len) return false;  // checked by the caller; never written
    *out = bytes + a;
    *len = b - a;
    return true;
  });
}

}  // namespace chan
}  // namespace libipc
