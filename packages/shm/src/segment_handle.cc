#include "segment_handle.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <string>

#include "addon.h"
#include "libipc/futex.h"
#include "libipc/lease.h"
#include "libipc/robust_mutex.h"

namespace libipc {

namespace {

double number_arg(const Napi::CallbackInfo& info, size_t i, double fallback) {
  return i < info.Length() && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : fallback;
}

const char* lock_result_name(LockResult r) {
  switch (r) {
    case LockResult::Acquired: return "acquired";
    case LockResult::AcquiredOwnerDied: return "owner-died";
    case LockResult::Busy: return "busy";
    default: return "timed-out";
  }
}


}  // namespace

Napi::Function SegmentHandle::Init(Napi::Env env) {
  return DefineClass(env, "SegmentHandle",
                     {
                         InstanceAccessor<&SegmentHandle::Buffer>("buffer"),
                         InstanceAccessor<&SegmentHandle::Size>("size"),
                         InstanceAccessor<&SegmentHandle::Created>("created"),
                         InstanceAccessor<&SegmentHandle::Inode>("inode"),
                         InstanceAccessor<&SegmentHandle::Dev>("dev"),
                         InstanceAccessor<&SegmentHandle::OwnerUid>("ownerUid"),
                         InstanceAccessor<&SegmentHandle::Mode>("mode"),
                         InstanceMethod<&SegmentHandle::Publish>("publish"),
                         InstanceMethod<&SegmentHandle::UnlinkIfSame>("unlinkIfSame"),
                         InstanceMethod<&SegmentHandle::Close>("close"),
                         InstanceMethod<&SegmentHandle::WaitAsync>("waitAsync"),
                         InstanceMethod<&SegmentHandle::WaitSync>("waitSync"),
                         InstanceMethod<&SegmentHandle::Wake>("wake"),
                         InstanceMethod<&SegmentHandle::MutexInit>("mutexInit"),
                         InstanceMethod<&SegmentHandle::MutexTryLock>("mutexTryLock"),
                         InstanceMethod<&SegmentHandle::MutexLockSync>("mutexLockSync"),
                         InstanceMethod<&SegmentHandle::MutexUnlock>("mutexUnlock"),
                         InstanceMethod<&SegmentHandle::MutexPrepareWait>("mutexPrepareWait"),
                         InstanceMethod<&SegmentHandle::LeaseAcquire>("leaseAcquire"),
                         InstanceMethod<&SegmentHandle::LeaseRelease>("leaseRelease"),
                         InstanceMethod<&SegmentHandle::LeaseStateOf>("leaseState"),
                         InstanceMethod<&SegmentHandle::LeasePrepareWait>("leasePrepareWait"),
                         InstanceMethod<&SegmentHandle::LeaseClear>("leaseClear"),
                         InstanceMethod<&SegmentHandle::LeaseHolder>("leaseHolder"),
                     });
}

// new SegmentHandle(objectName, size, create, mode). create: a new object, unnamed until publish(). Arguments
// are validated by the TypeScript layer; here they are only checked enough never to crash.
SegmentHandle::SegmentHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SegmentHandle>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsBoolean() || !info[3].IsNumber()) {
    Napi::TypeError::New(env, "SegmentHandle(objectName, size, create, mode)").ThrowAsJavaScriptException();
    return;
  }
  name_ = info[0].As<Napi::String>().Utf8Value();
  double size = info[1].As<Napi::Number>().DoubleValue();
  bool create = info[2].As<Napi::Boolean>().Value();
  mode_t mode = static_cast<mode_t>(info[3].As<Napi::Number>().Uint32Value() & 0777);
  if (name_.size() < 2 || name_[0] != '/' || name_.find('/', 1) != std::string::npos ||
      (create && !(size >= 1 && size <= 9007199254740991.0))) {
    Napi::RangeError::New(env, "invalid segment name or size").ThrowAsJavaScriptException();
    return;
  }
  MappedSegment seg;
  int err = create ? create_segment(static_cast<size_t>(size), mode, &seg) : open_segment(name_.c_str(), &seg);
  if (err != 0) {
    errno_error(env, create ? "create" : "open", err).ThrowAsJavaScriptException();
    return;
  }
  mapping_ = std::make_shared<Mapping>(seg);
  auto* holder = new std::shared_ptr<Mapping>(mapping_);
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
      env, mapping_->data(), mapping_->size(),
      [](Napi::Env, void*, std::shared_ptr<Mapping>* h) {
        (*h)->release_owner();  // garbage-collected without close(): unmap once waiters let go
        delete h;
      },
      holder);
  buffer_ = Napi::Persistent(ab);
}

Napi::Value SegmentHandle::Buffer(const Napi::CallbackInfo& info) {
  if (closed_) return info.Env().Undefined();
  return buffer_.Value();
}
Napi::Value SegmentHandle::Size(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), mapping_ ? static_cast<double>(mapping_->size()) : 0);
}
Napi::Value SegmentHandle::Created(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), mapping_ && mapping_->segment().created);
}
Napi::Value SegmentHandle::Inode(const Napi::CallbackInfo& info) {
  return Napi::BigInt::New(info.Env(), mapping_ ? mapping_->segment().inode : 0);
}
Napi::Value SegmentHandle::Dev(const Napi::CallbackInfo& info) {
  return Napi::BigInt::New(info.Env(), mapping_ ? mapping_->segment().dev : 0);
}
Napi::Value SegmentHandle::OwnerUid(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), mapping_ ? mapping_->segment().uid : 0);
}
Napi::Value SegmentHandle::Mode(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), mapping_ ? mapping_->segment().mode : 0);
}

// publish() -> true, or false when the name is taken (ERR_LIBIPC_EXISTS for the caller): a created segment
// becomes visible under its name, sized and initialised, in one step.
Napi::Value SegmentHandle::Publish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_ || !mapping_) return Napi::Boolean::New(env, false);
  int err = publish_segment(&mapping_->segment(), name_.c_str());
  if (err == 0) return Napi::Boolean::New(env, true);
  if (err == EEXIST) return Napi::Boolean::New(env, false);
  errno_error(env, "link", err).ThrowAsJavaScriptException();
  return env.Undefined();
}

// unlinkIfSame() -> 'removed' | 'gone' | 'replaced': removes the name only while it still refers to this
// object (compared by lstat: no fd needed, so it works at the fd limit). Other failures throw.
Napi::Value SegmentHandle::UnlinkIfSame(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!mapping_) return Napi::String::New(env, "gone");
  const MappedSegment& seg = mapping_->segment();
  int err = unlink_segment_if(name_.c_str(), seg.dev, seg.inode);
  if (err == 0) return Napi::String::New(env, "removed");
  if (err == ENOENT) return Napi::String::New(env, "gone");
  if (err == ESTALE) return Napi::String::New(env, "replaced");
  errno_error(env, "unlink", err).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value SegmentHandle::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_ || !mapping_) return env.Undefined();
  closed_ = true;
  AddonState* state = addon_state(env);
  state->waits->cancel_mapping(mapping_.get());
  if (state->uring) state->uring->cancel_mapping(mapping_.get());
  Napi::ArrayBuffer ab = buffer_.Value();
  if (!ab.IsDetached()) ab.Detach();  // later use from JS is a TypeError, never a stray access
  buffer_.Reset();
  mapping_->release_owner();
  return env.Undefined();
}

uint8_t* SegmentHandle::word_at(const Napi::CallbackInfo& info, size_t width, size_t* offset) {
  Napi::Env env = info.Env();
  if (closed_ || !mapping_ || mapping_->owner_released()) {
    Napi::Error e = Napi::Error::New(env, "segment is closed");
    e.Set("errno", Napi::String::New(env, "ECLOSED"));
    e.ThrowAsJavaScriptException();
    return nullptr;
  }
  double off = number_arg(info, 0, -1);
  // Range-checked as a double first: converting an out-of-range double to an integer is undefined behaviour.
  if (!(off >= 0) || off > static_cast<double>(mapping_->size()) || std::floor(off) != off ||
      static_cast<size_t>(off) % width != 0 || static_cast<size_t>(off) + width > mapping_->size()) {
    Napi::RangeError::New(env, "offset out of range or misaligned").ThrowAsJavaScriptException();
    return nullptr;
  }
  if (offset) *offset = static_cast<size_t>(off);
  return mapping_->data() + static_cast<size_t>(off);
}

// waitAsync(offset, expected, timeoutMs, spinUs, done, ref = true) -> 'ok'|'not-equal'|'timed-out' when settled at once,
// else 'pending' and done(outcome) is called later from the event loop ('ok'|'not-equal'|'timed-out'|'closed').
Napi::Value SegmentHandle::WaitAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* p = word_at(info, 4);
  if (p == nullptr) return env.Undefined();
  if (info.Length() < 5 || !info[4].IsFunction()) {
    Napi::TypeError::New(env, "waitAsync(offset, expected, timeoutMs, spinUs, done)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* word = reinterpret_cast<std::atomic<uint32_t>*>(p);
  uint32_t expected = info[1].As<Napi::Number>().Uint32Value();
  int64_t timeout_ns = ms_to_ns(number_arg(info, 2, -1));
  double spin_us = std::min(std::max(number_arg(info, 3, 0), 0.0), 1e6);

  if (word->load(std::memory_order_acquire) != expected) return Napi::String::New(env, "not-equal");
  const int64_t start = monotonic_ns();
  // An active peer usually answers within microseconds: a short spin saves two kernel wake-ups.
  if (spin_us > 0) {
    const int64_t spin_end = start + static_cast<int64_t>(spin_us * 1000);
    while (monotonic_ns() < spin_end) {
      if (word->load(std::memory_order_acquire) != expected) return Napi::String::New(env, "ok");
    }
  }
  if (timeout_ns == 0) return Napi::String::New(env, "timed-out");

  AddonState* state = addon_state(env);
  if (!mapping_->acquire()) return Napi::String::New(env, "closed");
  auto job = std::make_unique<WaitJob>(info[4].As<Napi::Function>());
  job->mapping = mapping_;
  job->addr = reinterpret_cast<const uint32_t*>(p);
  job->expected = expected;
  job->deadline_ns = timeout_ns < 0 ? -1 : start + timeout_ns;
  job->ref = !(info.Length() > 5 && info[5].IsBoolean() && !info[5].As<Napi::Boolean>().Value());
  // io_uring first; when its completion queue is full, this wait goes to the thread pool.
  if (state->uring && state->uring->submit(job)) return Napi::String::New(env, "pending");
  const char* err_name = "EAGAIN";
  const char* call = "wait";
  const char* refused = state->waits->submit(job, &err_name, &call);
  if (refused == nullptr) return Napi::String::New(env, "pending");
  mapping_->release();
  Napi::Error e = Napi::Error::New(env, refused);
  e.Set("errno", Napi::String::New(env, err_name));
  e.Set("syscall", Napi::String::New(env, call));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// waitSync(offset, expected, timeoutMs): blocks the calling thread; the TS layer bounds it.
Napi::Value SegmentHandle::WaitSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* p = word_at(info, 4);
  if (p == nullptr) return env.Undefined();
  uint32_t expected = info[1].As<Napi::Number>().Uint32Value();
  int64_t timeout_ns = ms_to_ns(number_arg(info, 2, -1));
  const int64_t deadline = monotonic_ns() + timeout_ns;
  for (;;) {
    int64_t left = timeout_ns < 0 ? -1 : deadline - monotonic_ns();
    if (timeout_ns >= 0 && left <= 0) return Napi::String::New(env, "timed-out");
    WaitResult r = futex_wait(reinterpret_cast<const uint32_t*>(p), expected, left);
    if (r == WaitResult::Interrupted) continue;
    return Napi::String::New(env, r == WaitResult::Woken ? "ok" : r == WaitResult::NotEqual ? "not-equal" : "timed-out");
  }
}

Napi::Value SegmentHandle::Wake(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* p = word_at(info, 4);
  if (p == nullptr) return env.Undefined();
  double count = number_arg(info, 1, INT_MAX);
  int n = !(count < INT_MAX) ? INT_MAX : count >= 0 ? static_cast<int>(count) : 0;
  return Napi::Number::New(env, futex_wake(reinterpret_cast<const uint32_t*>(p), n));
}

Napi::Value SegmentHandle::MutexInit(const Napi::CallbackInfo& info) {
  uint8_t* p = word_at(info, 8);
  if (p != nullptr) RobustMutex::init(p);
  return info.Env().Undefined();
}

void SegmentHandle::remember_lock(Napi::Env env, size_t offset, uint32_t acquired) {
  forget_locks(env, [](const HeldLock& h) {
    // Released elsewhere (another handle or thread of this process unlocked it).
    return (RobustMutex(h.mapping->data() + h.offset).load() & ~kMutexWaiters) != h.acquired;
  });
  if (mapping_->acquire()) addon_state(env)->held.push_back(HeldLock{mapping_, offset, acquired});
}

template <typename Pred>
void SegmentHandle::forget_locks(Napi::Env env, Pred pred) {
  auto& held = addon_state(env)->held;
  for (auto it = held.begin(); it != held.end();) {
    if (pred(*it)) {
      it->mapping->release();
      it = held.erase(it);
    } else {
      ++it;
    }
  }
}

Napi::Value SegmentHandle::MutexTryLock(const Napi::CallbackInfo& info) {
  size_t offset = 0;
  uint8_t* p = word_at(info, 8, &offset);
  if (p == nullptr) return info.Env().Undefined();
  uint32_t acquired = 0;
  LockResult r = RobustMutex(p).try_lock(false, &acquired);
  if (r == LockResult::Acquired || r == LockResult::AcquiredOwnerDied) remember_lock(info.Env(), offset, acquired);
  return Napi::String::New(info.Env(), lock_result_name(r));
}

Napi::Value SegmentHandle::MutexLockSync(const Napi::CallbackInfo& info) {
  size_t offset = 0;
  uint8_t* p = word_at(info, 8, &offset);
  if (p == nullptr) return info.Env().Undefined();
  uint32_t acquired = 0;
  LockResult r = RobustMutex(p).lock(ms_to_ns(number_arg(info, 1, -1)), 20000, &acquired);
  if (r == LockResult::Acquired || r == LockResult::AcquiredOwnerDied) remember_lock(info.Env(), offset, acquired);
  return Napi::String::New(info.Env(), lock_result_name(r));
}

Napi::Value SegmentHandle::MutexUnlock(const Napi::CallbackInfo& info) {
  size_t offset = 0;
  uint8_t* p = word_at(info, 8, &offset);
  if (p == nullptr) return info.Env().Undefined();
  bool ok = RobustMutex(p).unlock();
  if (ok) {
    const Mapping* m = mapping_.get();
    forget_locks(info.Env(), [&](const HeldLock& h) { return h.mapping.get() == m && h.offset == offset; });
  }
  return Napi::Boolean::New(info.Env(), ok);
}

// Before sleeping on a held mutex: sets the waiters bit. Returns [word to wait on, owner pid, owner start]
// (owner pid 0: abandoned, retry now) or null when the mutex is free now. The owner is read from the very
// word we will sleep on, never re-read: the lock may change hands in between.
Napi::Value SegmentHandle::MutexPrepareWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* p = word_at(info, 8);
  if (p == nullptr) return env.Undefined();
  RobustMutex m(p);
  uint32_t observed = m.mark_waiting();
  if (observed == 0) return env.Null();
  ProcessIdentity owner = m.owner_identity(observed);
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::Number::New(env, observed));
  out.Set(1u, Napi::Number::New(env, owner.pid));
  out.Set(2u, Napi::BigInt::New(env, owner.start_time));
  return out;
}

namespace {
const char* lease_state_name(LeaseState s) {
  switch (s) {
    case LeaseState::Held: return "held";
    case LeaseState::Released: return "released";
    case LeaseState::OwnerDied: return "owner-died";
    default: return "free";
  }
}
}  // namespace

// leaseAcquire(offset) -> true, or false when another live thread holds it. Takes it on the calling (JS) thread.
Napi::Value SegmentHandle::LeaseAcquire(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t offset = 0;
  uint8_t* p = word_at(info, 8, &offset);
  if (p == nullptr) return env.Undefined();
  if (offset + kLeaseSize > mapping_->size()) {
    Napi::RangeError::New(env, "offset out of range or misaligned").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!mapping_->acquire()) return Napi::Boolean::New(env, false);
  int err = Lease(p).acquire();
  if (err == EBUSY) {
    mapping_->release();
    return Napi::Boolean::New(env, false);
  }
  if (err != 0) {
    mapping_->release();
    errno_error(env, "pthread_mutex_lock", err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  addon_state(env)->leases.push_back(HeldLease{mapping_, offset});
  return Napi::Boolean::New(env, true);
}

// leaseRelease(offset) -> true when this thread held it (watchers see 'released'), false otherwise.
Napi::Value SegmentHandle::LeaseRelease(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t offset = 0;
  uint8_t* p = word_at(info, 8, &offset);
  if (p == nullptr) return env.Undefined();
  if (offset + kLeaseSize > mapping_->size() || Lease(p).release() != 0) return Napi::Boolean::New(env, false);
  // Unpin: the lease of this mapping at this offset, taken through any handle of this environment.
  auto& leases = addon_state(env)->leases;
  const uint8_t* at = p;
  for (auto it = leases.begin(); it != leases.end(); ++it) {
    if (it->mapping->data() + it->offset == at || (it->mapping == mapping_ && it->offset == offset)) {
      it->mapping->release();
      leases.erase(it);
      break;
    }
  }
  return Napi::Boolean::New(env, true);
}

// leaseState(offset) -> 'free' | 'held' | 'released' | 'owner-died'
Napi::Value SegmentHandle::LeaseStateOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t offset = 0;
  uint8_t* p = word_at(info, 8, &offset);
  if (p == nullptr) return env.Undefined();
  if (offset + kLeaseSize > mapping_->size()) return Napi::String::New(env, "free");
  return Napi::String::New(env, lease_state_name(Lease(p).state()));
}

// leasePrepareWait(offset) -> [byte offset of the word to sleep on, value] while held, else the state's name.
Napi::Value SegmentHandle::LeasePrepareWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t offset = 0;
  uint8_t* p = word_at(info, 8, &offset);
  if (p == nullptr) return env.Undefined();
  if (offset + kLeaseSize > mapping_->size()) return Napi::String::New(env, "free");
  Lease lease(p);
  LeaseState s = lease.state();
  if (s != LeaseState::Held) return Napi::String::New(env, lease_state_name(s));
  uint32_t v = lease.prepare_wait();
  if (v == 0) return Napi::String::New(env, lease_state_name(lease.state()));
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(offset + lease.word_offset())));
  out.Set(1u, Napi::Number::New(env, v));
  return out;
}

// leaseClear(offset): marks the place as holding no lease (a registration made for another process).
Napi::Value SegmentHandle::LeaseClear(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t offset = 0;
  uint8_t* p = word_at(info, 8, &offset);
  if (p == nullptr) return env.Undefined();
  if (offset + kLeaseSize > mapping_->size()) {
    Napi::RangeError::New(env, "offset out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (Lease(p).state() == LeaseState::Held) return Napi::Boolean::New(env, false);  // never under a live holder
  Lease::clear(p);
  return Napi::Boolean::New(env, true);
}

// leaseHolder(offset) -> [pid, tid] of the recorded holder (0, 0 when none).
Napi::Value SegmentHandle::LeaseHolder(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t offset = 0;
  uint8_t* p = word_at(info, 8, &offset);
  if (p == nullptr) return env.Undefined();
  Napi::Array out = Napi::Array::New(env, 2);
  bool ok = offset + kLeaseSize <= mapping_->size() && Lease(p).word() != nullptr;
  out.Set(0u, Napi::Number::New(env, ok ? Lease(p).holder_pid() : 0));
  out.Set(1u, Napi::Number::New(env, ok ? Lease(p).holder_tid() : 0));
  return out;
}

}  // namespace libipc
