// audio_engine [id]: the demo's audio service in C++ — the same protocol, channels, registry entry and group
// membership as audio-service.js, so a Node host cannot tell them apart and a group may mix them. Started by a
// ServiceGroup it joins the group from the environment contract; run by hand it is instance <id> (default 0) of
// domain 'audio' and answers every command itself. SIGTERM/SIGINT (or the host's death): leave, exit 0.
//
// Threads: the control loop (control → reply channel) and the audio loop (data in → data out) each own their
// channels (a libipc::Channel is used by one thread at a time); the main thread waits for a signal.
#include <libipc/channel.h>
#include <libipc/group_member.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine_logic.h"

namespace {

constexpr int64_t kSendTimeoutMs = 2000;
constexpr int64_t kPollMs = 100;  // how often a loop looks at the stop flag while idle

std::atomic<bool> stopping{false};

struct Engine {
  std::string tag;
  Names names;
  bool standalone;
  libipc::GroupMember* member = nullptr;
  std::mutex state_mutex;  // the control loop writes the state, the audio loop reads it
  State state;

  void log(const std::string& line) const { std::fprintf(stderr, "  %s %s\n", tag.c_str(), line.c_str()); }
  bool primary() const { return standalone || member->is_primary(); }

  void control_loop(libipc::Channel& control, libipc::Channel& reply) {
    uint64_t reply_seq = 0;
    while (!stopping) {
      auto bytes = control.recv(kPollMs);
      if (!bytes) continue;
      Outcome out;
      {
        std::lock_guard<std::mutex> lock(state_mutex);
        out = handle_control(bytes->data(), bytes->size(), state);
        state = out.state;
      }
      if (!out.log.empty()) log(out.log);
      if (!out.reply) continue;
      if (!primary()) {
        log("standby: applied seq=" + std::to_string(out.reply->ref_seq) + " (" + describe(out.state) + "), no reply");
        continue;
      }
      const auto msg = encode_reply(*out.reply, ++reply_seq);
      if (!reply.send(msg.data(), msg.size(), kSendTimeoutMs)) log("no host is listening on " + names.reply + "; reply dropped");
    }
  }

  void audio_loop(libipc::Channel& in, libipc::Channel& out) {
    uint64_t idle_drops = 0;
    std::vector<uint8_t> processed;
    while (!stopping) {
      auto bytes = in.recv(kPollMs);
      if (!bytes) continue;
      State now;
      {
        std::lock_guard<std::mutex> lock(state_mutex);
        now = state;
      }
      if (!now.streaming || !primary()) {
        if (idle_drops++ == 0) log(std::string("dropping audio: ") + (now.streaming ? "not the primary" : "not streaming (send StartStream)"));
        continue;
      }
      idle_drops = 0;
      std::string why;
      if (!process_audio(bytes->data(), bytes->size(), now, &processed, &why)) {
        log("audio buffer dropped: " + why);
        continue;
      }
      if (!out.send(processed.data(), processed.size(), kSendTimeoutMs)) log("no host is listening on " + names.data_out + "; buffer dropped");
    }
  }
};

int parse_id(int argc, char** argv) {
  const char* env = std::getenv("LIBIPC_INSTANCE_ID");
  const char* raw = env != nullptr ? env : argc > 1 ? argv[argc - 1] : "0";
  char* end = nullptr;
  const long id = std::strtol(raw, &end, 10);
  if (*raw == '\0' || *end != '\0' || id < 0 || id > 1000000) {
    std::fprintf(stderr, "usage: audio_engine [id]  (id: a whole number >= 0, got \"%s\")\n", raw);
    std::exit(2);
  }
  return static_cast<int>(id);
}

}  // namespace

int main(int argc, char** argv) {
  // Blocked before any thread starts, so that only sigwait below takes them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const int id = parse_id(argc, argv);
  const char* domain_env = std::getenv("LIBIPC_DOMAIN");
  const std::string domain = domain_env != nullptr ? domain_env : kDefaultDomain;
  Engine engine;
  engine.standalone = std::getenv("LIBIPC_SERVICE") == nullptr;
  engine.names = channel_names(domain, id);
  engine.tag = "[" + std::string(kServiceName) + "." + std::to_string(id) + " c++]";

  try {
    libipc::ChannelOptions receiver;
    receiver.mode = libipc::Mode::Receiver;
    libipc::ChannelOptions data = data_channel_options();
    libipc::ChannelOptions data_receiver = data;
    data_receiver.mode = libipc::Mode::Receiver;
    libipc::Channel control(engine.names.control, receiver);
    libipc::Channel reply(engine.names.reply);
    libipc::Channel data_in(engine.names.data_in, data_receiver);
    libipc::Channel data_out(engine.names.data_out, data);

    libipc::GroupMemberOptions join;
    join.control_channel = engine.names.control;
    join.reply_channel = engine.names.reply;
    join.heartbeat_ms = 50;
    join.exit_with_host = false;  // we close our channels first (below)
    join.domain = domain;
    join.service = kServiceName;
    join.id = static_cast<uint32_t>(id);
    join.meta = encode_meta(engine.names);
    join.on_role = [&engine](libipc::MemberRole role, uint32_t epoch) {
      if (!engine.standalone) engine.log(std::string("role ") + (role == libipc::MemberRole::Primary ? "primary" : "standby") + " (epoch " + std::to_string(epoch) + ")");
    };
    join.on_host_exit = [] { kill(getpid(), SIGTERM); };  // the main thread's sigwait takes it: a clean stop
    // Joined from the main thread: the registry entry's death lease is held by the thread that registers.
    const std::unique_ptr<libipc::GroupMember> member = libipc::GroupMember::join(join);
    engine.member = member.get();

    std::thread control_thread([&] { engine.control_loop(control, reply); });
    std::thread audio_thread([&] { engine.audio_loop(data_in, data_out); });
    member->ready();
    engine.log("ready: pid " + std::to_string(getpid()) + ", domain " + domain + ", " + engine.names.control + " / " + engine.names.reply +
               (engine.standalone ? " (run by hand: answers every command)" : ""));

    int sig = 0;
    sigwait(&signals, &sig);
    stopping = true;
    control_thread.join();
    audio_thread.join();
    member->leave();
    engine.log(std::string(sig == SIGINT ? "SIGINT" : "SIGTERM") + ": unregistered, channels closed, exiting");
  } catch (const libipc::Error& err) {
    std::fprintf(stderr, "%s cannot start: %s (%s)\n", engine.tag.c_str(), err.what(), err.code());
    return 1;
  }
  return 0;
}
