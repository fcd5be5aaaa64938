// ChannelCore's receive path: one message per call, copied into the caller's slab, assembled from fragments,
// or (in place) a view of its slot. The protocol (fragments, own messages, catching up after a lag) is
// libipc/channel_reader.h, shared with the C++ client; this file only says where the bytes go.
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

// Where a receive step puts the bytes (see libipc/channel_reader.h, which holds the protocol itself): a one-slot
// message into the caller's slab, or out as an in-place view of its slot; a fragmented one into a new ArrayBuffer.
struct ChannelCore::StepSink {
  ChannelCore* core;
  Napi::Env env;
  Napi::Value* out;
  bool packed;

  Take whole(const uint8_t* src, uint32_t len, uint64_t r, uint64_t r0, uint64_t msg) {
    if (core->in_place_) return core->hand_out_view(env, src, len, r, r0, msg, out) ? Take::Held : Take::Failed;  // channel_view.cc
    memcpy(core->slab_, src, len);
    if (packed) core->copied_len_ = len;
    else *out = Napi::Number::New(env, len);
    return Take::Copied;
  }
  bool begin(uint32_t total) {
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, total);
    if (env.IsExceptionPending()) return false;
    core->partial_data_ = static_cast<uint8_t*>(ab.Data());
    core->partial_ = Napi::Persistent(Napi::Uint8Array::New(env, total, ab, 0).As<Napi::Object>());
    return true;
  }
  uint8_t* room() { return core->partial_data_; }
  void complete() {
    *out = core->partial_.Value();
    drop();
  }
  void drop() {
    core->partial_.Reset();
    core->partial_data_ = nullptr;
  }
};

// Reads what is published for this row; true when `out` holds a message or a lag count (-2 - missed). `packed`
// (a batch receive): a one-slot message copied to slab_ leaves `out` empty with its length in copied_len_, and
// the caller tells blocked senders once for the batch.
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
  StepSink sink{this, env, out, packed};
  uint64_t missed = 0;
  switch (read_step(ring_, row_, tag_, rs_, sink, &missed, !packed)) {
    case Step::Message:
      return true;
    case Step::Lagged:
      *out = Napi::Number::New(env, -2.0 - static_cast<double>(missed));
      return true;
    default:
      return false;
  }
}

}  // namespace chan
}  // namespace libipc
