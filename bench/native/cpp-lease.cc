// The C++ side of bench/src/cpp-death.mjs, built with plain g++ against the packages' public headers:
//   cpp-lease DOMAIN NAME   register NAME with a death lease, print "registered", wait to be killed
#include <libipc/registry.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: cpp-lease DOMAIN NAME\n");
    return 2;
  }
  libipc::Registry registry(argv[1]);
  if (!registry.register_service(argv[2], "ctl", "rep")) return 1;
  std::puts("registered");
  std::fflush(stdout);
  for (;;) pause();
}
