// The native face of one channel handle (N-API glue over ring.h): one row of the receiver table, one view of
// the ring. Its methods live in one file per part: channel_core.cc (setup, single sends, closing),
// channel_recv.cc (single receives), channel_batch.cc (batches), channel_view.cc (in-place views).
#pragma once

#include <napi.h>

#include <sys/mman.h>

#include <cstdint>
#include <memory>
#include <string>

#include "libipc/channel_layout.h"
#include "libipc/channel_reader.h"
#include "doorbell.h"
#include "libipc/ring.h"

namespace libipc {
namespace chan {

enum SendStatus { kSent = 0, kNoReceiver = 1, kBusy = 2, kFull = 3, kStream = 4 };

// A private mapping of a channel segment, unmapped when its last holder (the core or an in-place view) lets go.
struct OwnMap {
  OwnMap(uint8_t* p, size_t n) : p(p), n(n) {}
  ~OwnMap() { munmap(p, n); }
  uint8_t* p;
  size_t n;
};

class ChannelCore : public Napi::ObjectWrap<ChannelCore> {
 public:
  static Napi::Function Init(Napi::Env env);
  ChannelCore(const Napi::CallbackInfo& info);
  ~ChannelCore() override;

  // Drops our hold on the mapping; it is unmapped once no in-place view holds it either.
  void unmap() {
    own_.reset();
    map_ = nullptr;
    open_ = false;
  }

 private:
  // ---- setup, single sends, closing (channel_core.cc) ----
  static void cleanup(void* arg);
  void leave_segment();
  void release();
  bool bytes_arg(const Napi::CallbackInfo& info, const uint8_t** data, size_t* len);
  Napi::Value TrySend(const Napi::CallbackInfo& info);
  Napi::Value WriteWhole(const Napi::CallbackInfo& info);
  Napi::Value WriteSome(const Napi::CallbackInfo& info);
  Napi::Value SetRoomTarget(const Napi::CallbackInfo& info);
  Napi::Value FreeSlots(const Napi::CallbackInfo& info);
  Napi::Value Slowest(const Napi::CallbackInfo& info);
  Napi::Value Activate(const Napi::CallbackInfo& info);
  Napi::Value Deactivate(const Napi::CallbackInfo& info);
  Napi::Value IsActive(const Napi::CallbackInfo& info);
  Napi::Value Pending(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  // ---- single receives (channel_recv.cc) ----
  Napi::Value Recv(const Napi::CallbackInfo& info);
  bool step(Napi::Env env, Napi::Value* out, bool packed = false);
  struct StepSink;

  // ---- batches (channel_batch.cc) ----
  Napi::Value RecvPacked(const Napi::CallbackInfo& info);
  template <typename Add>
  void copy_plain_run(uint8_t* slab, size_t slab_size, uint32_t limit, size_t* at, uint32_t* n, Add&& add);
  Napi::Value TrySendMany(const Napi::CallbackInfo& info);
  Napi::Value TrySendPacked(const Napi::CallbackInfo& info);
  template <typename Next>
  Napi::Value send_batch(const Napi::CallbackInfo& info, uint32_t count, Next&& next);

  // ---- in-place views (channel_view.cc) ----
  Napi::Value ReleaseView(const Napi::CallbackInfo& info);
  void release_view();
  bool hand_out_view(Napi::Env env, const uint8_t* src, uint32_t len, uint64_t r, uint64_t r0, uint64_t msg, Napi::Value* out);

  // Every entry point checks that we are open (our own mapping is unmapped by close()).
  bool usable(Napi::Env env) {
    if (open_) return true;
    Napi::Error e = Napi::Error::New(env, "channel is closed");
    e.Set("errno", Napi::String::New(env, "ECLOSED"));
    e.ThrowAsJavaScriptException();
    return false;
  }

  void wake_receivers() {
    ring_.wake_receivers([this](uint32_t row, uint32_t generation) { bells_->ring(row, generation); });
  }

  // Forgets the message being assembled (and the receive state's record of it).
  void drop_partial() {
    rs_.assembling = false;
    rs_.partial_total = rs_.partial_filled = 0;
    partial_.Reset();
    partial_data_ = nullptr;
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
  // Receiver state (libipc/channel_reader.h), and the JavaScript buffer a fragmented message is assembled in.
  ReaderState rs_;
  Napi::ObjectReference partial_;
  uint8_t* partial_data_ = nullptr;
  uint8_t* slab_ = nullptr;  // where the current recv call copies a one-fragment message
  bool in_place_ = false;     // the current recv hands out a view of the slot instead of a copy
  Napi::Reference<Napi::ArrayBuffer> view_;  // the in-place view handed out last (detached at the next receive)
  uint64_t held_pos_ = 0;     // its slot position: the cursor stays there until the view is released
  uint32_t copied_len_ = 0;   // the length of the message a packed step copied
  Napi::ObjectReference stashed_msg_;  // what ended the last batch, handed over by the next receive
  double stashed_lag_ = 0;
};

}  // namespace chan
}  // namespace libipc
