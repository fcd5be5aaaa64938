// @libipc/typed-channel native core: only what is measurably faster native — copying fragments into and out of
// the ring with the right fences, seqlock slot checks and cursor math. Attaching, locking for long waits,
// reaping and sleeping are TypeScript over @libipc/shm.
#include <napi.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include <sys/mman.h>

#include <memory>

#include "channel_layout.h"
#include "doorbell.h"
#include "libipc/futex.h"
#include "libipc/process_identity.h"
#include "libipc/robust_mutex.h"
#include "libipc/segment.h"
#include "ring.h"

namespace libipc {
namespace chan {

namespace {

enum SendStatus { kSent = 0, kNoReceiver = 1, kBusy = 2, kFull = 3, kStream = 4 };

bool array_buffer_arg(const Napi::Value& v, uint8_t** data, size_t* size) {
  if (!v.IsArrayBuffer()) return false;
  Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
  if (ab.IsDetached()) return false;
  *data = static_cast<uint8_t*>(ab.Data());
  *size = ab.ByteLength();
  return true;
}

// Hot-path argument readers: one raw N-API call each (node-addon-api's checked accessors make several).
double number_arg(const Napi::CallbackInfo& info, size_t i, double fallback) {
  double v;
  if (i >= info.Length() || napi_get_value_double(info.Env(), info[i], &v) != napi_ok) return fallback;
  return v;
}

// A detached or foreign value reads as no buffer (data null, size 0).
bool slab_arg(const Napi::CallbackInfo& info, size_t i, uint8_t** data, size_t* size) {
  void* d = nullptr;
  if (i >= info.Length() || napi_get_arraybuffer_info(info.Env(), info[i], &d, size) != napi_ok || d == nullptr) return false;
  *data = static_cast<uint8_t*>(d);
  return true;
}

// A Uint32Array argument with at least `need` elements, or null.
uint32_t* u32_array_arg(const Napi::CallbackInfo& info, size_t i, double need) {
  napi_typedarray_type type;
  size_t len = 0;
  void* data = nullptr;
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      napi_get_typedarray_info(info.Env(), info[i], &type, &len, &data, nullptr, nullptr) != napi_ok ||
      type != napi_uint32_array || static_cast<double>(len) < need || data == nullptr) {
    return nullptr;
  }
  return static_cast<uint32_t*>(data);
}

uint32_t u32_arg(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() && info[i].IsNumber() ? info[i].As<Napi::Number>().Uint32Value() : 0;
}

}  // namespace

// A private mapping of a channel segment, unmapped when its last holder (the core or an in-place view) lets go.
struct OwnMap {
  OwnMap(uint8_t* p, size_t n) : p(p), n(n) {}
  ~OwnMap() { munmap(p, n); }
  uint8_t* p;
  size_t n;
};

// The native face of one channel handle: one row of the receiver table, one view of the ring.
class ChannelCore : public Napi::ObjectWrap<ChannelCore> {
 public:
  static Napi::Function Init(Napi::Env env) {
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
  ChannelCore(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ChannelCore>(info) {
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

  ~ChannelCore() override {
    release();
    unmap();
  }

  // Drops our hold on the mapping; it is unmapped once no in-place view holds it either.
  void unmap() {
    own_.reset();
    map_ = nullptr;
    open_ = false;
  }

 private:
  // The environment (a worker thread) goes away with this handle still open: stop our row counting, free its
  // route seat and its identity row (only this handle writes them), so a terminated worker's receiver never
  // holds senders back and the last remaining handle still removes the segment.
  static void cleanup(void* arg) {
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
  void leave_segment() {
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

  void release() {
    if (hooked_) {
      napi_remove_env_cleanup_hook(Env(), &ChannelCore::cleanup, this);
      hooked_ = false;
    }
  }

  // Every entry point checks that we are open (our own mapping is unmapped by close()).
  bool usable(Napi::Env env) {
    if (open_) return true;
    Napi::Error e = Napi::Error::New(env, "channel is closed");
    e.Set("errno", Napi::String::New(env, "ECLOSED"));
    e.ThrowAsJavaScriptException();
    return false;
  }

  bool bytes_arg(const Napi::CallbackInfo& info, const uint8_t** data, size_t* len) {
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
  Napi::Value TrySend(const Napi::CallbackInfo& info) {
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
  Napi::Value WriteWhole(const Napi::CallbackInfo& info) {
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
  Napi::Value WriteSome(const Napi::CallbackInfo& info) {
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
  Napi::Value SetRoomTarget(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!usable(env)) return env.Undefined();
    ring_.set_room_target(std::max<uint32_t>(1, u32_arg(info, 0)));
    return env.Undefined();
  }

  Napi::Value FreeSlots(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!usable(env)) return env.Undefined();
    return Napi::Number::New(env, static_cast<double>(ring_.free_slots(std::max<uint32_t>(1, u32_arg(info, 0)), &cached_min_)));
  }

  // slowest() -> row of the active receiver furthest behind, or -1.
  Napi::Value Slowest(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!usable(env)) return env.Undefined();
    int row = -1;
    ring_.min_cursor(&row);
    return Napi::Number::New(env, row);
  }

  // activate(): this handle's row starts receiving from the next message published.
  Napi::Value Activate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!usable(env)) return env.Undefined();
    drop_partial();
    stashed_msg_.Reset();
    stashed_lag_ = 0;
    skipping_ = false;
    expected_ = ring_.control()->next_msg.load(std::memory_order_acquire);
    ring_.activate(row_);
    receiving_ = true;
    return env.Undefined();
  }

  // deactivate(row = own) -> bool: stops a row counting (closing, or reaping a dead process's row).
  Napi::Value Deactivate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!usable(env)) return env.Undefined();
    uint32_t row = info.Length() > 0 && info[0].IsNumber() ? u32_arg(info, 0) : row_;
    if (row >= kMaxHandles) return Napi::Boolean::New(env, false);
    return Napi::Boolean::New(env, ring_.deactivate(row));
  }

  Napi::Value IsActive(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!usable(env)) return env.Undefined();
    uint32_t row = info.Length() > 0 && info[0].IsNumber() ? u32_arg(info, 0) : row_;
    return Napi::Boolean::New(env, row < kMaxHandles && ring_.receiver(row)->active.load() != 0);
  }

  Napi::Value Pending(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!usable(env)) return env.Undefined();
    return Napi::Boolean::New(env, !stashed_msg_.IsEmpty() || stashed_lag_ != 0 || ring_.pending(row_));
  }

  // recv(spinUs, slab, offset) -> number >= 0: a one-fragment message of that many bytes, copied into the slab
  // (an ArrayBuffer the caller carves views from, like Buffer's pool) at offset; -1: nothing yet; <= -2: lagged,
  // -2 - missed; or a Uint8Array: a message assembled from fragments. The slab must have a slot payload of room
  // at offset. Spins up to spinUs for an active sender; the caller then sleeps on the write cursor.
  Napi::Value Recv(const Napi::CallbackInfo& info) {
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

  // recvPacked(max, slab, offset, starts, align, spinUs, lengths?) -> how many messages (up to `max`) were
  // copied into the slab one after another from `offset`, each starting `align`-aligned (1 or 8): starts[i] is
  // message i's start relative to `offset`, starts[n] the end of the last; lengths[i] (when given) its length.
  // 0: nothing came within spinUs. <= -2: lagged (-2 - missed), before anything newer. A Uint8Array: one message
  // assembled from fragments that did not fit the slab (a batch of one). A lag or such a message met after some
  // messages ends the batch and is what the next receive returns. One native call and one check for blocked
  // senders per batch; no JS value per message.
  Napi::Value RecvPacked(const Napi::CallbackInfo& info) {
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

  // The common case of a batch receive without step()'s generality: consecutive one-slot messages from other
  // handles, nothing half-assembled or stashed. Copies them into the slab (add() records each) and stops at
  // anything else, which step() then handles. The cursor is published every 64 messages and at the end of the
  // run, not per message: a sender spinning for room reads it, and every store would pull its cache line away.
  template <typename Add>
  void copy_plain_run(uint8_t* slab, size_t slab_size, uint32_t limit, size_t* at, uint32_t* n, Add&& add) {
    if (assembling_ || skipping_ || !stashed_msg_.IsEmpty() || stashed_lag_ != 0) return;
    Receiver* me = ring_.receiver(row_);
    const uint32_t pay = ring_.payload();
    const uint32_t max_message = ring_.max_message();
    uint64_t r = me->cursor.load(std::memory_order_relaxed);
    const uint64_t r0 = r;
    uint64_t w = seen_write_;
    if (r >= w) w = seen_write_ = ring_.control()->write_cursor.load(std::memory_order_acquire);
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
      expected_ = msg + 1;
      add(len);
      r++;
      if ((r & 63) == 0) me->cursor.store(r, std::memory_order_release);
      if (r == w) w = seen_write_ = ring_.control()->write_cursor.load(std::memory_order_acquire);
    }
    if (r != r0) me->cursor.store(r, std::memory_order_release);
  }

  // trySendMany(messages, selfReceives, spinUs) -> how many of the messages (a prefix) were sent: each one whole
  // and published on its own, under one lock, with one wake-up of sleeping receivers for the batch. Stops at a
  // message that needs streaming (larger than the ring) or when the ring stays full past spinUs; -1 when there
  // is no receiver; -2 when another sender holds the lock.
  Napi::Value TrySendMany(const Napi::CallbackInfo& info) {
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
  Napi::Value TrySendPacked(const Napi::CallbackInfo& info) {
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

  // The shared loop of the batch sends. next(i, &data, &len) gives message i (false: stop before it). Arguments
  // 1 and 2 of the call are selfReceives and spinUs. Messages are published as they are written (a sender killed
  // mid-batch has delivered a prefix of whole messages); the fence that pairs with sleeping receivers is paid
  // once per batch, and sleeping receivers are woken before waiting for room and at the end.
  template <typename Next>
  Napi::Value send_batch(const Napi::CallbackInfo& info, uint32_t count, Next&& next) {
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

  // releaseView(): the in-place view handed out last is detached and its slot handed back to the senders.
  Napi::Value ReleaseView(const Napi::CallbackInfo& info) {
    if (open_) release_view();
    return info.Env().Undefined();
  }

  // Ends the in-place view of the last receive: later use of it throws (detached), and the cursor moves past it.
  void release_view() {
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

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (open_) release_view();  // before the mapping goes: a view must never outlive it
    open_ = false;
    release();
    bells_.reset();
    drop_partial();
    stashed_msg_.Reset();
    unmap();
    return info.Env().Undefined();
  }

  void wake_receivers() {
    ring_.wake_receivers([this](uint32_t row, uint32_t generation) { bells_->ring(row, generation); });
  }

  void drop_partial() {
    assembling_ = false;
    partial_.Reset();
    partial_data_ = nullptr;
  }

  // Reads what is published for this row; true when `out` holds a message or a lag count. `packed` (a batch
  // receive): a one-slot message copied to slab_ leaves `out` empty with its length in copied_len_, and the
  // caller tells blocked senders once for the batch.
  bool step(Napi::Env env, Napi::Value* out, bool packed = false) {
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
          if (len == total && in_place_) {
            // Read in place: a view of the slot itself, valid until the next receive. The cursor stays on this
            // slot meanwhile, so no sender ('wait' mode) can overwrite it; the view is detached when it ends.
            // The view holds the mapping: collected or not, it never outlives the memory it shows.
            auto* hold = new std::shared_ptr<OwnMap>(own_);
            Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
                env, const_cast<uint8_t*>(src), len, [](Napi::Env, void*, std::shared_ptr<OwnMap>* h) { delete h; }, hold);
            if (env.IsExceptionPending()) return false;
            view_ = Napi::Persistent(ab);
            held_pos_ = r;
            expected_ = msg + 1;
            me->cursor.store(r, std::memory_order_release);
            ring_.notify_senders(r0, r);
            *out = Napi::Uint8Array::New(env, len, ab, 0);
            return true;
          }
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
  bool lagged(Napi::Env env, uint64_t r, Napi::Value* out) {
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

  uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
  std::shared_ptr<OwnMap> own_;  // our mapping of the segment, shared with in-place views
  std::string object_name_;
  uint64_t dev_ = 0;
  uint64_t inode_ = 0;
  std::unique_ptr<BellRinger> bells_;
  Ring ring_{nullptr, 0, Geometry{}};
  bool open_ = false;
  bool hooked_ = false;
  bool receiving_ = false;
  uint32_t row_ = 0;
  uint32_t tag_ = 0;
  uint64_t cached_min_ = 0;
  // Receiver state: the message being assembled from fragments, and what comes next.
  uint64_t expected_ = 0;
  bool assembling_ = false;
  Napi::ObjectReference partial_;
  uint8_t* partial_data_ = nullptr;
  uint32_t partial_total_ = 0;
  uint32_t partial_filled_ = 0;
  uint64_t partial_msg_ = 0;
  bool skipping_ = false;
  uint64_t skip_msg_ = 0;
  uint8_t* slab_ = nullptr;  // where the current recv call copies a one-fragment message
  bool in_place_ = false;     // the current recv hands out a view of the slot instead of a copy
  Napi::Reference<Napi::ArrayBuffer> view_;  // the in-place view handed out last (detached at the next receive)
  uint64_t held_pos_ = 0;     // its slot position: the cursor stays there until the view is released
  uint32_t copied_len_ = 0;   // the length of the message a packed step copied
  uint64_t seen_write_ = 0;   // the write cursor as this receiver last read it
  Napi::ObjectReference stashed_msg_;  // what ended the last batch, handed over by the next receive
  double stashed_lag_ = 0;
};

// init(arrayBuffer, type, onFull, capacity, slotSize, maxMessage): lays out a new segment (creator only).
Napi::Value InitSegment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data;
  size_t size;
  if (info.Length() < 6 || !array_buffer_arg(info[0], &data, &size)) {
    Napi::TypeError::New(env, "init(arrayBuffer, type, onFull, capacity, slotSize, maxMessage)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t type = u32_arg(info, 1), on_full = u32_arg(info, 2), capacity = u32_arg(info, 3), slot_size = u32_arg(info, 4);
  if (capacity == 0 || slot_size < 64 || slot_size % 64 != 0 || segment_size(capacity, slot_size) != size) {
    Napi::RangeError::New(env, "segment size does not match capacity x slotSize").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Ring::init(data, type, on_full, capacity, slot_size, u32_arg(info, 5));
  return env.Undefined();
}

Napi::Value Valid(const Napi::CallbackInfo& info) {
  uint8_t* data;
  size_t size;
  return Napi::Boolean::New(info.Env(), info.Length() > 0 && array_buffer_arg(info[0], &data, &size) && Ring::valid(data, size));
}

// deactivateRow(arrayBuffer, row) -> bool: stops a dead process's row counting (the reaper holds the segment lock).
Napi::Value DeactivateRow(const Napi::CallbackInfo& info) {
  uint8_t* data;
  size_t size;
  uint32_t row = u32_arg(info, 1);
  Geometry g;
  if (info.Length() < 2 || !array_buffer_arg(info[0], &data, &size) || !Ring::read_geometry(data, size, &g) || row >= kMaxHandles) {
    return Napi::Boolean::New(info.Env(), false);
  }
  return Napi::Boolean::New(info.Env(), Ring(data, size, g).deactivate(row));
}

Napi::Value SegmentSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(segment_size(u32_arg(info, 0), u32_arg(info, 1))));
}

Napi::Object Layout(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  auto set = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
  set("version", kLayoutVersion);
  set("maxHandles", kMaxHandles);
  set("slotHeader", kSlotHeaderSize);
  set("control", kControlOffset);
  set("identities", kIdentitiesOffset);
  set("receivers", kReceiversOffset);
  set("ring", kRingOffset);
  set("type", kControlOffset + offsetof(Control, type));
  set("onFull", kControlOffset + offsetof(Control, on_full));
  set("capacity", kControlOffset + offsetof(Control, capacity));
  set("slotSize", kControlOffset + offsetof(Control, slot_size));
  set("maxMessage", kControlOffset + offsetof(Control, max_message));
  set("receiverFlags", offsetof(Receiver, sleeping));
  set("receiverArmed", offsetof(Receiver, armed));
  set("receiverRow", sizeof(Receiver));
  set("receiverBell", offsetof(Receiver, bell));
  set("receiverCursor", offsetof(Receiver, cursor));
  set("receiverMissed", offsetof(Receiver, missed));
  set("receiverCount", kControlOffset + offsetof(Control, receiver_count));
  set("membership", kControlOffset + offsetof(Control, membership));
  set("sendLock", kControlOffset + offsetof(Control, send_lock));
  set("routePid", kControlOffset + offsetof(Control, route_pid));
  set("routeTag", kControlOffset + offsetof(Control, route_tag));
  set("routeStart", kControlOffset + offsetof(Control, route_start));
  set("writeCursor", kControlOffset + offsetof(Control, write_cursor));
  set("nextMsg", kControlOffset + offsetof(Control, next_msg));
  set("recvSleepers", kControlOffset + offsetof(Control, recv_sleepers));
  set("sendSleepers", kControlOffset + offsetof(Control, send_sleepers));
  set("readProgress", kControlOffset + offsetof(Control, read_progress));
  set("roomTarget", kControlOffset + offsetof(Control, room_target));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<ChannelAddon>(new ChannelAddon(env));
  exports.Set("ChannelCore", ChannelCore::Init(env));
  exports.Set("Doorbell", Doorbell::Init(env));
  exports.Set("init", Napi::Function::New<InitSegment>(env, "init"));
  exports.Set("valid", Napi::Function::New<Valid>(env, "valid"));
  exports.Set("deactivateRow", Napi::Function::New<DeactivateRow>(env, "deactivateRow"));
  exports.Set("segmentSize", Napi::Function::New<SegmentSize>(env, "segmentSize"));
  exports.Set("layout", Layout(env));
  return exports;
}

}  // namespace chan
}  // namespace libipc

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return libipc::chan::Init(env, exports); }
NODE_API_MODULE(channel_native, InitAddon)
