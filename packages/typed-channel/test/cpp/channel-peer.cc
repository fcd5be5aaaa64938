// The C++ half of the cross-language channel tests (test/cpp-interop.test.ts compiles it with plain
// g++ -std=c++17 -pthread against the public headers). Message i of length n has byte j = (i * 7 + j * 31) & 255,
// so a lost, reordered or mis-assembled fragment shows in the FNV-1a hash both sides compute.
//   channel-peer send <name> <sizes,comma,separated> [batch]   waits for a receiver, sends, prints "sent <n>"
//   channel-peer send-when-asleep <name> <size>                waits until a receiver sleeps, then sends
//   channel-peer recv <name> <count> [lag] [go]                 prints "ready", (after a "go" line on stdin,) receives:
//                                                               "msg <i> <len> <hash>" or "lagged <missed>", then "done"
//   channel-peer recv-batch <name> <count>                      the same with recv_many
//   channel-peer stall <name>                                   streams a 1 MiB message into a ring nobody reads
#include <libipc/channel.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string pattern(uint64_t i, size_t n) {
  std::string s(n, '\0');
  for (size_t j = 0; j < n; j++) s[j] = static_cast<char>((i * 7 + j * 31) & 255);
  return s;
}

uint32_t fnv1a(const uint8_t* p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t j = 0; j < n; j++) h = (h ^ p[j]) * 16777619u;
  return h;
}

std::vector<size_t> sizes_of(const std::string& list) {
  std::vector<size_t> out;
  size_t at = 0;
  while (at < list.size()) {
    size_t comma = list.find(',', at);
    if (comma == std::string::npos) comma = list.size();
    out.push_back(std::stoul(list.substr(at, comma - at)));
    at = comma + 1;
  }
  return out;
}

void print(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int run(int argc, char** argv) {
  const std::string cmd = argv[1], name = argv[2];
  if (cmd == "send" || cmd == "send-when-asleep") {
    libipc::Channel ch(name);
    if (!ch.wait_for_receivers(1, 20000)) return print("error no receiver"), 1;
    std::vector<size_t> sizes = sizes_of(argv[3]);
    if (cmd == "send-when-asleep") {
      while (ch.sleeping_receivers() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    size_t sent = 0;
    if (argc > 4 && std::string(argv[4]) == "batch") {
      std::vector<std::string> msgs;
      for (size_t i = 0; i < sizes.size(); i++) msgs.push_back(pattern(i, sizes[i]));
      std::vector<std::string_view> views(msgs.begin(), msgs.end());
      sent = ch.send_many(views, 30000);
    } else {
      for (size_t i = 0; i < sizes.size(); i++) sent += ch.send(pattern(i, sizes[i]), 30000) ? 1 : 0;
    }
    print("sent " + std::to_string(sent));
    return 0;
  }
  if (cmd == "recv" || cmd == "recv-batch") {
    libipc::ChannelOptions o;
    o.mode = libipc::Mode::Receiver;
    bool go = false;
    for (int a = 4; a < argc; a++) {
      if (std::string(argv[a]) == "lag") o.on_full = libipc::OnFull::Lag, o.capacity = 16;
      if (std::string(argv[a]) == "go") go = true;
    }
    libipc::Channel ch(name, o);
    print("ready");
    if (go) {
      std::string line;
      std::getline(std::cin, line);
    }
    const uint64_t count = std::stoull(argv[3]);
    uint64_t i = 0;
    while (i < count) {
      try {
        std::vector<libipc::Channel::Bytes> batch;
        if (cmd == "recv-batch") {
          batch = ch.recv_many(64, 30000);
        } else if (auto m = ch.recv(30000)) {
          batch.push_back(std::move(*m));
        }
        if (batch.empty()) return print("error timeout after " + std::to_string(i)), 1;
        for (auto& m : batch) print("msg " + std::to_string(i++) + " " + std::to_string(m.size()) + " " + std::to_string(fnv1a(m.data(), m.size())));
      } catch (const libipc::LaggedError& e) {
        print("lagged " + std::to_string(e.missed()));
        i += e.missed();
      }
    }
    print("done");
    return 0;
  }
  if (cmd == "stall") {
    libipc::Channel ch(name);
    if (!ch.wait_for_receivers(1, 20000)) return print("error no receiver"), 1;
    print("streaming");
    ch.send(pattern(0, 1 << 20));  // blocks holding the send lock: nobody reads
    print("sent 1");
    return 0;
  }
  return print("error unknown command " + cmd), 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return std::fprintf(stderr, "usage: channel-peer <command> <name> ...\n"), 2;
  try {
    return run(argc, argv);
  } catch (const libipc::Error& e) {
    print(std::string("error ") + e.code() + " " + e.what());
    return 1;
  }
}
