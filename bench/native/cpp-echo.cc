// The C++ peer of bench/src/cpp-channel.mjs (libipc::Channel: the same rings and doorbells as Node).
//   cpp-echo <name> <spin_us>          echoes every message received on <name>-req on <name>-rep; "bye" ends it
//   cpp-echo source <name> <count>     sends <count> messages of 64 B on <name>, 256 per send_many
#include <libipc/channel.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

static int source(const std::string& name, size_t count) {
  libipc::Channel ch(name);
  ch.wait_for_receivers(1);
  const std::string msg(64, '\x02');
  const std::vector<std::string_view> batch(256, msg);
  for (size_t sent = 0; sent < count;) {
    const size_t n = std::min<size_t>(batch.size(), count - sent);
    sent += ch.send_many(std::vector<std::string_view>(batch.begin(), batch.begin() + n));
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "source") return source(argv[2], std::stoul(argv[3]));
  if (argc != 3) return 2;
  const std::string name = argv[1];
  libipc::ChannelOptions receiver;
  receiver.mode = libipc::Mode::Receiver;
  receiver.spin_us = static_cast<uint32_t>(atoi(argv[2]));
  libipc::Channel req(name + "-req", receiver);
  libipc::ChannelOptions sender;
  sender.spin_us = receiver.spin_us;
  libipc::Channel rep(name + "-rep", sender);
  std::puts("ready");
  std::fflush(stdout);
  while (auto m = req.recv()) {
    if (m->size() == 3 && std::string(m->begin(), m->end()) == "bye") break;
    rep.send(*m);
  }
}
