// cpp-echo <name> <spin_us>: the C++ peer of bench/src/cpp-channel.mjs. Echoes every message received on
// channel <name>-req on <name>-rep (libipc::Channel, the same rings and doorbells as Node); "bye" ends it.
#include <libipc/channel.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
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
