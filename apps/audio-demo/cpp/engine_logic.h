// The C++ audio engine's logic, apart from its threads and channels: names, the control state machine (the same
// rules as src/service-handler.ts), reply encoding and the gain/pan processing (the same float32 math as
// src/dsp.ts, so the host's sample-by-sample check holds for either engine).
#pragma once

#include <libipc/channel.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "generated/audio_protocol_generated.h"

constexpr const char* kDefaultDomain = "audio";
constexpr const char* kServiceName = "audio_compute";
constexpr size_t kHeaderBytes = sizeof(audio::AudioBufferHeader);  // 24
static_assert(kHeaderBytes == 24, "AudioBufferHeader is 24 bytes on the wire");

struct Names {
  std::string control, reply, data_in, data_out;
};

// src/names.ts channelNames().
inline Names channel_names(const std::string& domain, int id) {
  const std::string n = std::to_string(id);
  return {domain + "_ctrl_" + n, domain + "_reply_" + n, domain + "_data_in_" + n, domain + "_data_out_" + n};
}

// src/names.ts DATA_CHANNEL: one 8 KiB slot holds a buffer of 512 stereo frames.
inline libipc::ChannelOptions data_channel_options() {
  libipc::ChannelOptions o;
  o.capacity = 64;
  o.slot_size = 8192;
  o.max_message = 1024 * 1024;
  return o;
}

// src/names.ts encodeMeta(): the data channels travel in the registry entry's meta.
inline std::string encode_meta(const Names& n) { return "{\"dataIn\":\"" + n.data_in + "\",\"dataOut\":\"" + n.data_out + "\"}"; }

struct State {
  bool streaming = false;
  uint32_t sample_rate = 48000, buffer_frames = 512;
  uint16_t channels = 2;
  // Gain, Pan, FilterCutoff, FilterResonance (the last two are kept and reported, not applied).
  std::array<float, 4> params{1.0f, 0.0f, 20000.0f, 0.707f};
};

struct Reply {
  bool is_param = false;
  uint64_t ref_seq = 0;
  audio::Status status = audio::Status_Ok;
  uint32_t param = 0;
  float value = 0;
};

struct Outcome {
  State state;
  std::optional<Reply> reply;
  std::string log;
};

inline std::string describe(const State& s) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "gain %g, pan %g, %s", s.params[0], s.params[1], s.streaming ? "streaming" : "idle");
  return buf;
}

// src/service-handler.ts PARAM_RANGES and LIMITS.
constexpr double kParamMin[4] = {0, -1, 20, 0.1};
constexpr double kParamMax[4] = {16, 1, 20000, 10};

inline Reply ack(uint64_t seq, audio::Status status) { return Reply{false, seq, status, 0, 0}; }

// Applies one control message; never throws for any bytes. A message that verifies as a ControlMsg but carries
// an unknown payload is answered with Error; one that does not verify is ignored with a log line.
inline Outcome handle_control(const uint8_t* data, size_t len, const State& state) {
  Outcome out{state, std::nullopt, ""};
  flatbuffers::Verifier verifier(data, len);
  if (len < 12 || !audio::ControlMsgBufferHasIdentifier(data) || !audio::VerifyControlMsgBuffer(verifier)) {
    out.log = "ignored: a control message of " + std::to_string(len) + " bytes that is not a valid 'AUDP' ControlMsg";
    return out;
  }
  const audio::ControlMsg* msg = audio::GetControlMsg(data);
  const uint64_t seq = msg->seq();
  switch (msg->payload_type()) {
    case audio::ControlPayload_StartStream: {
      const auto* p = msg->payload_as_StartStream();
      const bool ok = p->sample_rate() >= 8000 && p->sample_rate() <= 192000 && p->channels() >= 1 && p->channels() <= 8 &&
                      p->buffer_frames() >= 16 && p->buffer_frames() <= 4096;
      if (!ok) {
        out.reply = ack(seq, audio::Status_Error);
        out.log = "StartStream seq=" + std::to_string(seq) + " refused: a format value is out of range";
        return out;
      }
      out.state.streaming = true;
      out.state.sample_rate = p->sample_rate();
      out.state.channels = p->channels();
      out.state.buffer_frames = p->buffer_frames();
      out.reply = ack(seq, audio::Status_Ok);
      return out;
    }
    case audio::ControlPayload_StopStream:
      out.reply = ack(seq, state.streaming ? audio::Status_Ok : audio::Status_NotRunning);
      out.state.streaming = false;
      return out;
    case audio::ControlPayload_SetParam: {
      const auto* p = msg->payload_as_SetParam();
      const uint32_t param = p->param_id();
      if (param > 3) {
        out.reply = ack(seq, audio::Status_InvalidParam);
        out.log = "SetParam seq=" + std::to_string(seq) + ": unknown ParamType(" + std::to_string(param) + ")";
        return out;
      }
      const double v = p->value();
      if (!(v >= kParamMin[param] && v <= kParamMax[param])) {
        out.reply = ack(seq, audio::Status_Error);
        out.log = "SetParam seq=" + std::to_string(seq) + ": value out of range";
        return out;
      }
      out.state.params[param] = p->value();
      out.reply = ack(seq, audio::Status_Ok);
      return out;
    }
    case audio::ControlPayload_GetParam: {
      const uint32_t param = msg->payload_as_GetParam()->param_id();
      if (param > 3) {
        out.reply = ack(seq, audio::Status_InvalidParam);
        return out;
      }
      out.reply = Reply{true, seq, audio::Status_Ok, param, state.params[param]};
      return out;
    }
    default:
      out.reply = ack(seq, audio::Status_Error);
      out.log = "answered Error: unknown payload type " + std::to_string(msg->payload_type());
      return out;
  }
}

// A finished ReplyMsg with the schema's identifier (TypedChannel on the host checks it).
inline std::vector<uint8_t> encode_reply(const Reply& r, uint64_t seq) {
  flatbuffers::FlatBufferBuilder b(64);
  flatbuffers::Offset<audio::ReplyMsg> msg;
  if (r.is_param) {
    auto p = audio::CreateParamValue(b, r.ref_seq, static_cast<audio::ParamType>(r.param), r.value);
    msg = audio::CreateReplyMsg(b, seq, audio::ReplyPayload_ParamValue, p.Union());
  } else {
    auto a = audio::CreateAck(b, r.ref_seq, r.status);
    msg = audio::CreateReplyMsg(b, seq, audio::ReplyPayload_Ack, a.Union());
  }
  b.Finish(msg, audio::ControlMsgIdentifier());
  return std::vector<uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
}

// src/dsp.ts channelGains(): gain × the pan law on channels 0 and 1, rounded to float32 like a Float32Array.
inline std::vector<float> channel_gains(float gain, float pan, uint16_t channels) {
  std::vector<float> g(channels, gain);
  if (channels >= 2) {
    g[0] = static_cast<float>(static_cast<double>(gain) * std::min(1.0, 1.0 - pan));
    g[1] = static_cast<float>(static_cast<double>(gain) * std::min(1.0, 1.0 + pan));
  }
  return g;
}

// Header + samples × their channel's factor into `out`; false (and why) for a buffer whose size is not its header's.
inline bool process_audio(const uint8_t* data, size_t len, const State& s, std::vector<uint8_t>* out, std::string* why) {
  if (len < kHeaderBytes) {
    *why = std::to_string(len) + " bytes is shorter than the 24-byte header";
    return false;
  }
  audio::AudioBufferHeader h;
  std::memcpy(&h, data, kHeaderBytes);
  if (h.channels() < 1 || h.channels() > 64) {
    *why = "buffer " + std::to_string(h.sequence()) + " claims " + std::to_string(h.channels()) + " channels";
    return false;
  }
  const size_t samples = size_t(h.frames()) * h.channels();
  if (len != kHeaderBytes + samples * 4) {
    *why = "buffer " + std::to_string(h.sequence()) + " is " + std::to_string(len) + " bytes, not header + frames × channels × 4";
    return false;
  }
  const std::vector<float> g = channel_gains(s.params[0], s.params[1], h.channels());
  out->resize(len);
  std::memcpy(out->data(), data, kHeaderBytes);
  for (size_t i = 0; i < samples; i++) {
    float x;
    std::memcpy(&x, data + kHeaderBytes + 4 * i, 4);
    const float y = x * g[i % h.channels()];
    std::memcpy(out->data() + kHeaderBytes + 4 * i, &y, 4);
  }
  return true;
}
