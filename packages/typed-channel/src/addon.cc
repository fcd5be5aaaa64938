// @libipc/typed-channel native addon: its registration and the functions on a whole segment (laying one out,
// checking one, reaping a row, the layout offsets). The per-handle core is ChannelCore (channel_core.h); the
// receivers' doorbells are doorbell.cc; the ring itself (no N-API) is ring.h over channel_layout.h. Only what is
// measurably faster native lives here: attaching, locking for long waits, reaping and sleeping are TypeScript
// over @libipc/shm.
#include <napi.h>

#include <cstddef>

#include "channel_core.h"
#include "libipc/channel_layout.h"
#include "doorbell.h"
#include "napi_args.h"
#include "libipc/ring.h"

namespace libipc {
namespace chan {

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
  exports.Set("bellOpen", Napi::Function::New<BellOpen>(env, "bellOpen"));
  exports.Set("bellArm", Napi::Function::New<BellArm>(env, "bellArm"));
  exports.Set("bellDisarm", Napi::Function::New<BellDisarm>(env, "bellDisarm"));
  exports.Set("bellClose", Napi::Function::New<BellClose>(env, "bellClose"));
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
