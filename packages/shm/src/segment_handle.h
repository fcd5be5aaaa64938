// The native face of one mapped segment: its ArrayBuffer, futex wait/wake and robust mutexes in it.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "mapping.h"

namespace libipc {

class SegmentHandle : public Napi::ObjectWrap<SegmentHandle> {
 public:
  static Napi::Function Init(Napi::Env env);
  SegmentHandle(const Napi::CallbackInfo& info);

 private:
  Napi::Value Buffer(const Napi::CallbackInfo& info);
  Napi::Value Size(const Napi::CallbackInfo& info);
  Napi::Value Created(const Napi::CallbackInfo& info);
  Napi::Value Inode(const Napi::CallbackInfo& info);
  Napi::Value Dev(const Napi::CallbackInfo& info);
  Napi::Value OwnerUid(const Napi::CallbackInfo& info);
  Napi::Value Mode(const Napi::CallbackInfo& info);
  Napi::Value Publish(const Napi::CallbackInfo& info);
  Napi::Value UnlinkIfSame(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value WaitAsync(const Napi::CallbackInfo& info);
  Napi::Value WaitSync(const Napi::CallbackInfo& info);
  Napi::Value Wake(const Napi::CallbackInfo& info);
  Napi::Value MutexInit(const Napi::CallbackInfo& info);
  Napi::Value MutexTryLock(const Napi::CallbackInfo& info);
  Napi::Value MutexLockSync(const Napi::CallbackInfo& info);
  Napi::Value MutexUnlock(const Napi::CallbackInfo& info);
  Napi::Value MutexPrepareWait(const Napi::CallbackInfo& info);
  Napi::Value LeaseAcquire(const Napi::CallbackInfo& info);
  Napi::Value LeaseRelease(const Napi::CallbackInfo& info);
  Napi::Value LeaseStateOf(const Napi::CallbackInfo& info);
  Napi::Value LeasePrepareWait(const Napi::CallbackInfo& info);
  Napi::Value LeaseClear(const Napi::CallbackInfo& info);
  Napi::Value LeaseHolder(const Napi::CallbackInfo& info);

  // The address of a word at info[0], checked against the mapping; nullptr (and a JS exception) if not.
  uint8_t* word_at(const Napi::CallbackInfo& info, size_t width, size_t* offset = nullptr);
  void remember_lock(Napi::Env env, size_t offset, uint32_t acquired);
  template <typename Pred>
  void forget_locks(Napi::Env env, Pred pred);

  std::shared_ptr<Mapping> mapping_;
  Napi::Reference<Napi::ArrayBuffer> buffer_;
  std::string name_;
  bool closed_ = false;
};

}  // namespace libipc
