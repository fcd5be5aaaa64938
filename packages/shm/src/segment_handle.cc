#include "segment_handle.h"

#include <cmath>
#include <string>

#include "addon.h"
#include "libipc/futex.h"
#include "libipc/robust_mutex.h"

namespace libipc {

namespace {

int64_t timeout_ns_from(const Napi::Value& v) {
  double ms = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!std::isfinite(ms) || ms < 0) return -1;
  return static_cast<int64_t>(ms * 1e6);
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
                         InstanceMethod<&SegmentHandle::Close>("close"),
                         InstanceMethod<&SegmentHandle::WaitAsync>("waitAsync"),
                         InstanceMethod<&SegmentHandle::WaitSync>("waitSync"),
                         InstanceMethod<&SegmentHandle::Wake>("wake"),
                         InstanceMethod<&SegmentHandle::MutexInit>("mutexInit"),
                         InstanceMethod<&SegmentHandle::MutexTryLock>("mutexTryLock"),
                         InstanceMethod<&SegmentHandle::MutexLockSync>("mutexLockSync"),
                         InstanceMethod<&SegmentHandle::MutexUnlock>("mutexUnlock"),
                         InstanceMethod<&SegmentHandle::MutexPrepareWait>("mutexPrepareWait"),
                     });
}

// new SegmentHandle(objectName, size, create, mode). Arguments are validated by the TypeScript layer;
// here they are only checked enough never to crash.
SegmentHandle::SegmentHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SegmentHandle>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsBoolean() || !info[3].IsNumber()) {
    Napi::TypeError::New(env, "SegmentHandle(objectName, size, create, mode)").ThrowAsJavaScriptException();
    return;
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  double size = info[1].As<Napi::Number>().DoubleValue();
  bool create = info[2].As<Napi::Boolean>().Value();
  mode_t mode = static_cast<mode_t>(info[3].As<Napi::Number>().Uint32Value() & 07777);
  if (name.empty() || name[0] != '/' || (create && !(size >= 1 && size <= 9007199254740991.0))) {
    Napi::RangeError::New(env, "invalid segment name or size").ThrowAsJavaScriptException();
    return;
  }
  MappedSegment seg;
  int err = map_segment(name.c_str(), static_cast<size_t>(size),
                        create ? SegmentOpen::CreateExclusive : SegmentOpen::OpenExisting, mode, &seg);
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

Napi::Value SegmentHandle::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_ || !mapping_) return env.Undefined();
  closed_ = true;
  AddonState* state = addon_state(env);
  if (state->waits) state->waits->cancel_mapping(mapping_.get());
  if (state->uring) state->uring->cancel_mapping(mapping_.get());
  Napi::ArrayBuffer ab = buffer_.Value();
  if (!ab.IsDetached()) ab.Detach();  // later use from JS is a TypeError, never a stray access
  buffer_.Reset();
  mapping_->release_owner();
  return env.Undefined();
}

uint8_t* SegmentHandle::word_at(const Napi::CallbackInfo& info, size_t width) {
  Napi::Env env = info.Env();
  if (closed_ || !mapping_ || mapping_->owner_released()) {
    Napi::Error e = Napi::Error::New(env, "segment is closed");
    e.Set("errno", Napi::String::New(env, "ECLOSED"));
    e.ThrowAsJavaScriptException();
    return nullptr;
  }
  double off = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (!(off >= 0) || std::floor(off) != off || static_cast<size_t>(off) % width != 0 ||
      static_cast<size_t>(off) + width > mapping_->size()) {
    Napi::RangeError::New(env, "offset out of range or misaligned").ThrowAsJavaScriptException();
    return nullptr;
  }
  return mapping_->data() + static_cast<size_t>(off);
}

// waitAsync(offset, expected, timeoutMs, spinUs) -> Promise<'ok'|'not-equal'|'timed-out'|'closed'>
Napi::Value SegmentHandle::WaitAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* p = word_at(info, 4);
  if (p == nullptr) return env.Undefined();
  auto* word = reinterpret_cast<std::atomic<uint32_t>*>(p);
  uint32_t expected = info[1].As<Napi::Number>().Uint32Value();
  int64_t timeout_ns = timeout_ns_from(info[2]);
  double spin_us = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().DoubleValue() : 0;

  auto settled = [&](const char* result) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Resolve(Napi::String::New(env, result));
    return d.Promise();
  };
  if (word->load(std::memory_order_acquire) != expected) return settled("not-equal");
  const int64_t start = monotonic_ns();
  // An active peer usually answers within microseconds: a short spin saves two kernel wake-ups.
  if (spin_us > 0) {
    const int64_t spin_end = start + static_cast<int64_t>(spin_us * 1000);
    while (monotonic_ns() < spin_end) {
      if (word->load(std::memory_order_acquire) != expected) return settled("ok");
    }
  }
  if (timeout_ns == 0) return settled("timed-out");

  AddonState* state = addon_state(env);
  if (!mapping_->acquire()) return settled("closed");
  auto job = std::make_unique<WaitJob>(env);
  job->mapping = mapping_;
  job->addr = reinterpret_cast<const uint32_t*>(p);
  job->expected = expected;
  job->deadline_ns = timeout_ns < 0 ? -1 : start + timeout_ns;
  return state->uring ? state->uring->submit(std::move(job)) : state->waits->submit(std::move(job));
}

// waitSync(offset, expected, timeoutMs): blocks the calling thread; the TS layer bounds it.
Napi::Value SegmentHandle::WaitSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* p = word_at(info, 4);
  if (p == nullptr) return env.Undefined();
  uint32_t expected = info[1].As<Napi::Number>().Uint32Value();
  int64_t timeout_ns = timeout_ns_from(info[2]);
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
  double count = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : INT_MAX;
  int n = count >= INT_MAX ? INT_MAX : static_cast<int>(count);
  return Napi::Number::New(env, futex_wake(reinterpret_cast<const uint32_t*>(p), n));
}

Napi::Value SegmentHandle::MutexInit(const Napi::CallbackInfo& info) {
  uint8_t* p = word_at(info, 8);
  if (p != nullptr) RobustMutex::init(p);
  return info.Env().Undefined();
}

Napi::Value SegmentHandle::MutexTryLock(const Napi::CallbackInfo& info) {
  uint8_t* p = word_at(info, 8);
  if (p == nullptr) return info.Env().Undefined();
  return Napi::String::New(info.Env(), lock_result_name(RobustMutex(p).try_lock()));
}

Napi::Value SegmentHandle::MutexLockSync(const Napi::CallbackInfo& info) {
  uint8_t* p = word_at(info, 8);
  if (p == nullptr) return info.Env().Undefined();
  return Napi::String::New(info.Env(), lock_result_name(RobustMutex(p).lock(timeout_ns_from(info[1]))));
}

Napi::Value SegmentHandle::MutexUnlock(const Napi::CallbackInfo& info) {
  uint8_t* p = word_at(info, 8);
  if (p == nullptr) return info.Env().Undefined();
  return Napi::Boolean::New(info.Env(), RobustMutex(p).unlock());
}

// Before sleeping on a held mutex: sets the waiters bit. Returns [word to wait on, owner pid, owner start]
// or null when the mutex is free now.
Napi::Value SegmentHandle::MutexPrepareWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* p = word_at(info, 8);
  if (p == nullptr) return env.Undefined();
  RobustMutex m(p);
  uint32_t observed = m.mark_waiting();
  if (observed == 0) return env.Null();
  ProcessIdentity owner = m.owner_identity();
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::Number::New(env, observed));
  out.Set(1u, Napi::Number::New(env, owner.pid));
  out.Set(2u, Napi::BigInt::New(env, owner.start_time));
  return out;
}

}  // namespace libipc
