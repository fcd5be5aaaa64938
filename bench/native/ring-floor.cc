// What the hardware allows a ring of 64 B messages between two CPUs, with no N-API, no JS, no checks: one thread
// writes records (a length and 64 bytes) into a ring of `slot`-byte records, another copies them out. The
// channel's packed batches are measured against this floor in bench/README.md (Typed channel).
//   g++ -O2 -o /tmp/ring-floor bench/native/ring-floor.cc -lpthread && /tmp/ring-floor [slot 128] [capacity 4096] [publish every 256]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>
#include <cstdint>
#include <cstdlib>
struct alignas(64) Cursor { std::atomic<uint64_t> v{0}; };
int main(int argc, char** argv) {
  const uint64_t N = 50'000'000;
  const size_t slot = argc > 1 ? atoi(argv[1]) : 128;   // bytes per record (slot ring) 
  const size_t cap = argc > 2 ? atoi(argv[2]) : 4096;
  const int batch = argc > 3 ? atoi(argv[3]) : 256;     // publish every `batch` records
  std::vector<uint8_t> ring(slot * cap + 64);
  uint8_t* base = ring.data();
  Cursor w, r;
  uint8_t msg[64]; memset(msg, 2, 64);
  auto t0 = std::chrono::steady_clock::now();
  std::thread cons([&] {
    uint8_t out[256 * 1024];
    uint64_t pos = 0, sum = 0; size_t at = 0;
    while (pos < N) {
      uint64_t ww = w.v.load(std::memory_order_acquire);
      while (pos < ww) {
        uint8_t* s = base + (pos % cap) * slot;
        uint32_t len; memcpy(&len, s, 4);
        if (at + 64 > sizeof out) at = 0;
        memcpy(out + at, s + 32 - (slot < 128 ? 24 : 0), len); at += len; sum += len;
        pos++;
        if ((pos & 63) == 0) r.v.store(pos, std::memory_order_release);
      }
      r.v.store(pos, std::memory_order_release);
    }
    printf("sum %llu\n", (unsigned long long)sum);
  });
  uint64_t pos = 0, rmin = 0;
  while (pos < N) {
    for (int k = 0; k < batch && pos < N; k++) {
      while (pos - rmin >= cap) rmin = r.v.load(std::memory_order_acquire);
      uint8_t* s = base + (pos % cap) * slot;
      uint32_t len = 64; memcpy(s, &len, 4);
      memcpy(s + 32 - (slot < 128 ? 24 : 0), msg, 64);
      pos++;
    }
    w.v.store(pos, std::memory_order_release);
  }
  cons.join();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf("record %zu B, cap %zu, publish every %d: %.1f M msg/s\n", slot, cap, batch, N / s / 1e6);
}
