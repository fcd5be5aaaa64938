// ChannelCore: setting up a handle's native core, sending one message, the row's state, and closing.
#include <cerrno>
#include <cmath>
#include <cstring>

#include <sys/mman.h>

#include "channel_core.h"
#include "libipc/futex.h"
#include "libipc/process_identity.h"
#include "libipc/robust_mutex.h"
#include "libipc/segment.h"
#include "napi_args.h"

namespace libipc {
namespace chan {

Napi::Function ChannelCore::Init(Napi::Env env) {
  return DefineClass(env, "ChannelCore",
                     {
                         InstanceMethod<&ChannelCore::TrySend>("trySend"),
                         InstanceMethod<&ChannelCore::WriteWhole>("writeWhole"),
                         InstanceMethod<&ChannelCore::WriteSome>("writeSome"),
                         InstanceMethod<&ChannelCore::FreeSlots>("freeSlots"),
                         InstanceMethod<&ChannelCore::SetRoomTarget>("setRoomTarget"),
                         InstanceMethod<&ChannelCore::Slowest>("slowest"),
                         InstanceMethod<&ChannelCore::Activate>("activate"),
                         InstanceMethod<&ChannelCore::Deactivate>("deactivate"),
                         InstanceMethod<&ChannelCore::IsActive>("isActive"),
                         InstanceMethod<&ChannelCore::Recv>("recv"),
                         InstanceMethod<&ChannelCore::RecvPacked>("recvPacked"),
                         InstanceMethod<&ChannelCore::TrySendMany>("trySendMany"),
                         InstanceMethod<&ChannelCore::TrySendPacked>("trySendPacked"),
                         InstanceMethod<&ChannelCore::ReleaseView>("releaseView"),
                         InstanceMethod<&ChannelCore::Pending>("pending"),
                         InstanceMethod<&ChannelCore::Close>("close"),
                     });
}

// new ChannelCore(arrayBuffer, row, bellPrefix, objectName, dev, inode): the segment must already be laid out;
// its geometry is copied out once here and never re-read. A receiver in row i has its doorbell FIFO at
// bellPrefix + i. objectName, dev and inode let a core whose environment ends remove the segment if it was
// the last user (only while the name still refers to this object).
ChannelCore::ChannelCore(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ChannelCore>(info) {
  Napi::Env env = info.Env();
  uint8_t* data;
  size_t size;
  Geometry geometry;
  if (info.Length() < 6 || !array_buffer_arg(info[0], &data, &size) || !info[1].IsNumber() || !info[2].IsString() ||
      !info[3].IsString() || !info[4].IsBigInt() || !info[5].IsBigInt() || !Ring::read_geometry(data, size, &geometry)) {
    Napi::TypeError::New(env, "ChannelCore(arrayBuffer of a channel segment, row, bellPrefix, objectName, dev, inode)")
        .ThrowAsJavaScriptException();
    return;
  }
  bool lossless = true;
  object_name_ = info[3].As<Napi::String>().Utf8Value();
  dev_ = info[4].As<Napi::BigInt>().Uint64Value(&lossless);
  inode_ = info[5].As<Napi::BigInt>().Uint64Value(&lossless);
  bells_ = std::make_unique<BellRinger>(info[2].As<Napi::String>().Utf8Value());
  row_ = u32_arg(info, 1);
  if (row_ >= kMaxHandles) {
    Napi::RangeError::New(env, "row out of range").ThrowAsJavaScriptException();
    return;
  }
  // Our own mapping of the same shared pages: the core's memory lives exactly as long as the core, whatever
  // happens to the JS SharedMemory (closed, collected, or torn down with a worker before our cleanup hook).
  void* mine = mremap(data, 0, size, MREMAP_MAYMOVE);
  if (mine == MAP_FAILED) {
    Napi::Error::New(env, std::string("mremap: ") + strerror(errno)).ThrowAsJavaScriptException();
    return;
  }
  map_ = static_cast<uint8_t*>(mine);
  map_size_ = size;
  own_ = std::make_shared<OwnMap>(map_, size);
  ring_ = Ring(map_, size, geometry);
  open_ = true;
  tag_ = row_ + 1;
  napi_add_env_cleanup_hook(env, &ChannelCore::cleanup, this);
  hooked_ = true;
}

ChannelCore::~ChannelCore() {
  release();
  unmap();
}

// The environment (a worker thread) goes away with this handle still open: stop our row counting, free its
// route seat and its identity row (only this handle writes them), so a terminated worker's receiver never
// holds senders back and the last remaining handle still removes the segment.
void ChannelCore::cleanup(void* arg) {
  auto* self = static_cast<ChannelCore*>(arg);
  self->hooked_ = false;
  if (!self->open_) return;
  self->open_ = false;
  Control* c = self->ring_.control();
  if (self->receiving_) self->ring_.deactivate(self->row_);
  if (self->ring_.is_route() && c->route_tag == self->tag_) c->route_pid.store(0);
  self->leave_segment();
  c->membership.fetch_add(1);
  futex_wake(reinterpret_cast<const uint32_t*>(&c->membership));
}

// Frees this handle's identity row under the segment lock and, when no live handle is left, retires the
// segment and removes its name, as close() does in TypeScript (a terminated worker cannot run that).
void ChannelCore::leave_segment() {
  uint8_t* base = map_;
  auto* ids = reinterpret_cast<std::atomic<uint32_t>*>(base + kIdentitiesOffset);
  RobustMutex lock(base + kHeaderLockOffset);
  LockResult r = lock.lock(100 * 1000000LL);  // bounded: a stopped lock holder must not freeze teardown
  ids[row_ * 4].store(0);                      // IdentityTable pid (16-byte rows: pid, tag, start time)
  if (r == LockResult::TimedOut) return;       // the next user reaps the rest
  bool anyone = false;
  for (uint32_t i = 0; i < kMaxHandles && !anyone; i++) {
    uint32_t pid = ids[i * 4].load();
    uint64_t start = *reinterpret_cast<const uint64_t*>(base + kIdentitiesOffset + i * 16 + 8);
    anyone = pid != 0 && is_alive(static_cast<int>(pid), start);
  }
  if (!anyone) {
    auto* state = reinterpret_cast<std::atomic<uint32_t>*>(base + kHeaderStateOffset);
    state->store(kStateRetired);
    futex_wake(reinterpret_cast<const uint32_t*>(state));
    unlink_segment_if(object_name_.c_str(), dev_, inode_);
  }
  lock.unlock();
}

void ChannelCore::release() {
  if (hooked_) {
    napi_remove_env_cleanup_hook(Env(), &ChannelCore::cleanup, this);
    hooked_ = false;
  }
}

bool ChannelCore::bytes_arg(const Napi::CallbackInfo& info, const uint8_t** data, size_t* len) {
  napi_typedarray_type type;
  void* d = nullptr;
  bool is_typed = false;
  if (info.Length() < 1 || napi_is_typedarray(info.Env(), info[0], &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(info.Env(), info[0], &type, len, &d, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    Napi::TypeError::New(info.Env(), "data must be a Uint8Array").ThrowAsJavaScriptException();
    return false;
  }
  static uint8_t empty = 0;
  *data = d != nullptr ? static_cast<const uint8_t*>(d) : &empty;
  if (*len > ring_.max_message()) {
    Napi::RangeError::New(info.Env(), "message larger than maxMessageSize").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

// trySend(data, selfReceives, spinUs) -> SendStatus. The whole fast path in one call: lock, copy, publish,
// unlock; when the ring is full it spins up to spinUs for an active receiver to make room.
Napi::Value ChannelCore::TrySend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!usable(env)) return env.Undefined();
  const uint8_t* data;
  size_t len;
  if (!bytes_arg(info, &data, &len)) return env.Undefined();
  bool self_receives = number_arg(info, 1, 0) != 0;
  Control* c = ring_.control();
  if (c->receiver_count.load(std::memory_order_acquire) <= (self_receives ? 1u : 0u)) return Napi::Number::New(env, kNoReceiver);
  if (ring_.fragments(len) > ring_.capacity()) return Napi::Number::New(env, kStream);
  RobustMutex lock(&c->send_lock);
  // An owner that died mid-message left at most unpublished slots or a message without its last fragment;
  // receivers drop such a fragment run when the next first fragment arrives, so there is nothing to repair.
  if (lock.try_lock() == LockResult::Busy) return Napi::Number::New(env, kBusy);
  size_t pos = 0;
  uint64_t n = ring_.write(data, len, &pos, tag_, true, &cached_min_);
  if (n == 0) {
    double spin_us = std::min(number_arg(info, 2, 0), 1e6);
    if (spin_us > 0) {
      const int64_t deadline = monotonic_ns() + static_cast<int64_t>(spin_us * 1000);
      const uint64_t need = ring_.fragments(len);
      while (n == 0 && monotonic_ns() < deadline) {
        cpu_relax();
        if (ring_.free_slots(need, &cached_min_) >= need) n = ring_.write(data, len, &pos, tag_, true, &cached_min_);
      }
    }
  }
  lock.unlock();
  if (n > 0) wake_receivers();
  return Napi::Number::New(env, n > 0 ? kSent : kFull);
}

// writeWhole(data) -> bool: the caller holds the send lock.
Napi::Value ChannelCore::WriteWhole(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!usable(env)) return env.Undefined();
  const uint8_t* data;
  size_t len;
  if (!bytes_arg(info, &data, &len)) return env.Undefined();
  size_t pos = 0;
  bool written = ring_.write(data, len, &pos, tag_, true, &cached_min_) > 0;
  if (written) wake_receivers();
  return Napi::Boolean::New(env, written);
}

// writeSome(data, pos) -> new pos: streams a message larger than the ring; the caller holds the send lock.
Napi::Value ChannelCore::WriteSome(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!usable(env)) return env.Undefined();
  const uint8_t* data;
  size_t len;
  if (!bytes_arg(info, &data, &len)) return env.Undefined();
  double p = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : -1;
  const uint32_t pay = ring_.payload();
  if (!(p >= 0) || p > static_cast<double>(len) || std::floor(p) != p || (static_cast<size_t>(p) % pay != 0 && p != len)) {
    Napi::RangeError::New(env, "pos out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t pos = static_cast<size_t>(p);
  if ((pos < len || (len == 0 && pos == 0)) && ring_.write(data, len, &pos, tag_, false, &cached_min_) > 0) wake_receivers();
  return Napi::Number::New(env, static_cast<double>(pos));
}

// setRoomTarget(want): the caller (holding the send lock) is about to sleep until `want` slots are free.
Napi::Value ChannelCore::SetRoomTarget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!usable(env)) return env.Undefined();
  ring_.set_room_target(std::max<uint32_t>(1, u32_arg(info, 0)));
  return env.Undefined();
}

Napi::Value ChannelCore::FreeSlots(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!usable(env)) return env.Undefined();
  return Napi::Number::New(env, static_cast<double>(ring_.free_slots(std::max<uint32_t>(1, u32_arg(info, 0)), &cached_min_)));
}

// slowest() -> row of the active receiver furthest behind, or -1.
Napi::Value ChannelCore::Slowest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!usable(env)) return env.Undefined();
  int row = -1;
  ring_.min_cursor(&row);
  return Napi::Number::New(env, row);
}

// activate(): this handle's row starts receiving from the next message published.
Napi::Value ChannelCore::Activate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!usable(env)) return env.Undefined();
  drop_partial();
  stashed_msg_.Reset();
  stashed_lag_ = 0;
  rs_.skipping = false;
  rs_.expected = ring_.control()->next_msg.load(std::memory_order_acquire);
  ring_.activate(row_);
  receiving_ = true;
  return env.Undefined();
}

// deactivate(row = own) -> bool: stops a row counting (closing, or reaping a dead process's row).
Napi::Value ChannelCore::Deactivate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!usable(env)) return env.Undefined();
  uint32_t row = info.Length() > 0 && info[0].IsNumber() ? u32_arg(info, 0) : row_;
  if (row >= kMaxHandles) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(env, ring_.deactivate(row));
}

Napi::Value ChannelCore::IsActive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!usable(env)) return env.Undefined();
  uint32_t row = info.Length() > 0 && info[0].IsNumber() ? u32_arg(info, 0) : row_;
  return Napi::Boolean::New(env, row < kMaxHandles && ring_.receiver(row)->active.load() != 0);
}

Napi::Value ChannelCore::Pending(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!usable(env)) return env.Undefined();
  return Napi::Boolean::New(env, !stashed_msg_.IsEmpty() || stashed_lag_ != 0 || ring_.pending(row_));
}

Napi::Value ChannelCore::Close(const Napi::CallbackInfo& info) {
  if (open_) release_view();  // before the mapping goes: a view must never outlive it
  open_ = false;
  release();
  bells_.reset();
  drop_partial();
  stashed_msg_.Reset();
  unmap();
  return info.Env().Undefined();
}

}  // namespace chan
}  // namespace libipc
