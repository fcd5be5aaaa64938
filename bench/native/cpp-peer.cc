// The C++ side of bench/src/cpp.mjs, built with plain g++ against the packages' public headers:
//   cpp-peer echo IN OUT     receive on IN, send each message back on OUT (until a 0-byte message)
//   cpp-peer sink IN COUNT   receive COUNT messages in batches, then print "done"
//   cpp-peer lease DOMAIN N  register N with a death lease, print "registered", wait to be killed
#include <libipc/channel.h>
#include <libipc/registry.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "echo" && argc == 4) {
    libipc::ChannelOptions receiver;
    receiver.mode = libipc::Mode::Receiver;
    libipc::Channel in(argv[2], receiver);
    libipc::Channel out(argv[3]);
    std::puts("ready");
    std::fflush(stdout);
    while (auto msg = in.recv()) {
      if (msg->empty()) break;
      out.send(msg->data(), msg->size());
    }
    return 0;
  }
  if (mode == "sink" && argc == 4) {
    libipc::ChannelOptions receiver;
    receiver.mode = libipc::Mode::Receiver;
    libipc::Channel in(argv[2], receiver);
    const long want = std::atol(argv[3]);
    std::puts("ready");
    std::fflush(stdout);
    for (long got = 0; got < want;) got += static_cast<long>(in.recv_many(256).size());
    std::puts("done");
    std::fflush(stdout);
    return 0;
  }
  if (mode == "lease" && argc == 4) {
    libipc::Registry registry(argv[2]);
    if (!registry.register_service(argv[3], "ctl", "rep")) return 1;
    std::puts("registered");
    std::fflush(stdout);
    for (;;) pause();
  }
  std::fprintf(stderr, "usage: cpp-peer echo IN OUT | sink IN COUNT | lease DOMAIN NAME\n");
  return 2;
}
