// The C++ half of the cross-language registry tests (test/cpp-interop.test.ts compiles it with plain
// g++ -std=c++17 -pthread against the public headers).
//   registry-peer register <domain> <name> [meta|-] [ballast MiB]   registers (with that much memory touched, so
//                                                   that its teardown after a SIGKILL takes a while), prints "registered", then follows stdin lines:
//                                                   "heartbeat" -> "beat", "unregister" -> "unregistered"; exits at EOF
//   registry-peer find <domain> <name>              prints "found <pid> <control> <reply> <leased> <meta>" or "missing"
//   registry-peer list <domain>                     prints "entry <name> <pid>" per live entry, then "end"
//   registry-peer claim <domain> <group> <instance> <expected epoch>   prints "claimed <epoch>" or "lost <epoch>"
#include <libipc/registry.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace {

void print(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int run(int argc, char** argv) {
  const std::string cmd = argv[1];
  libipc::Registry reg(argv[2]);
  if (cmd == "register" && argc > 3) {
    std::optional<std::string> meta;
    if (argc > 4 && std::string(argv[4]) != "-") meta = argv[4];
    std::vector<char> ballast(argc > 5 ? std::stoul(argv[5]) << 20 : 0, 1);
    if (!reg.register_service(argv[3], std::string(argv[3]) + ".ctl", std::string(argv[3]) + ".reply", meta)) return print("taken"), 1;
    print("registered");
    for (std::string line; std::getline(std::cin, line);) {
      if (line == "heartbeat") reg.heartbeat(argv[3]), print("beat");
      if (line == "unregister") print(reg.unregister(argv[3]) ? "unregistered" : "not-found");
    }
    return 0;
  }
  if (cmd == "find" && argc > 3) {
    auto e = reg.find(argv[3]);
    if (!e) return print("missing"), 0;
    print("found " + std::to_string(e->pid) + " " + e->control_channel + " " + e->reply_channel + " " + (e->leased ? "leased" : "unleased") + " " +
          e->meta.value_or("-"));
    return 0;
  }
  if (cmd == "list") {
    for (const auto& e : reg.list()) print("entry " + e.name + " " + std::to_string(e.pid));
    print("end");
    return 0;
  }
  if (cmd == "claim" && argc > 5) {
    auto epoch = reg.claim_primary(argv[3], argv[4], static_cast<uint32_t>(std::stoul(argv[5])));
    print(epoch ? "claimed " + std::to_string(*epoch) : "lost " + std::to_string(reg.group_state(argv[3]).epoch));
    return 0;
  }
  return print("error usage"), 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return std::fprintf(stderr, "usage: registry-peer <command> <domain> ...\n"), 2;
  try {
    return run(argc, argv);
  } catch (const libipc::Error& e) {
    print(std::string("error ") + e.code() + " " + e.what());
    return 1;
  }
}
