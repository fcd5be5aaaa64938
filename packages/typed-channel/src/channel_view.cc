// ChannelCore's in-place reads: a receive that hands out a view of the ring slot itself instead of a copy.
#include "channel_core.h"

namespace libipc {
namespace chan {

// releaseView(): the in-place view handed out last is detached and its slot handed back to the senders.
Napi::Value ChannelCore::ReleaseView(const Napi::CallbackInfo& info) {
  if (open_) release_view();
  return info.Env().Undefined();
}

// Ends the in-place view of the last receive: later use of it throws (detached), and the cursor moves past it.
void ChannelCore::release_view() {
  if (view_.IsEmpty()) return;
  Napi::ArrayBuffer ab = view_.Value();
  if (!ab.IsDetached()) ab.Detach();
  view_.Reset();
  Receiver* me = ring_.receiver(row_);
  uint64_t cur = me->cursor.load(std::memory_order_relaxed);
  if (cur == held_pos_) {
    me->cursor.store(held_pos_ + 1, std::memory_order_release);
    ring_.notify_senders(held_pos_, held_pos_ + 1);
  }
}

// The message at slot r (one whole slot, at src) goes out as a view of the slot: see step().
bool ChannelCore::hand_out_view(Napi::Env env, const uint8_t* src, uint32_t len, uint64_t r, uint64_t r0, uint64_t msg,
                                Napi::Value* out) {
  // Read in place: a view of the slot itself, valid until the next receive. The cursor stays on this slot
  // meanwhile, so no sender ('wait' mode) can overwrite it; the view is detached when it ends.
  // The view holds the mapping: collected or not, it never outlives the memory it shows.
  auto* hold = new std::shared_ptr<OwnMap>(own_);
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
      env, const_cast<uint8_t*>(src), len, [](Napi::Env, void*, std::shared_ptr<OwnMap>* h) { delete h; }, hold);
  if (env.IsExceptionPending()) return false;
  view_ = Napi::Persistent(ab);
  held_pos_ = r;
  ring_.receiver(row_)->cursor.store(r, std::memory_order_release);
  ring_.notify_senders(r0, r);
  *out = Napi::Uint8Array::New(env, len, ab, 0);
  return true;
}

}  // namespace chan
}  // namespace libipc
