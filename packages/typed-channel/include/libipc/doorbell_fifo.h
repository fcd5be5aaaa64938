// Receivers' doorbells without Node: the named FIFO /dev/shm/libipc.chanbell.<name>.<row> a sleeping receiver
// polls, and the senders' side that rings it with a one-byte write. The addon's Doorbell (src/doorbell.h) polls
// the same FIFO from the event loop; a C++ receiver (libipc/channel.h) polls it with poll(). Neither side ever
// follows a link or writes into anything but a FIFO (docs/security.md).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "libipc/channel_layout.h"

namespace libipc {
namespace chan {

// "/dev/shm/libipc.chanbell.<name>." : row i's doorbell is this prefix + i.
inline std::string bell_prefix(const std::string& channel_name) { return "/dev/shm/libipc.chanbell." + channel_name + "."; }

// Opens a FIFO at `path` without following a link and checks what was opened: -1 with errno otherwise.
inline int open_fifo(const char* path, int flags) {
  int fd = open(path, flags | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
    close(fd);
    errno = EINVAL;
    return -1;
  }
  return fd;
}

// Creates a receiver's doorbell (0600; whatever sits at the path is removed first: unlink never follows a link)
// and opens it for reading. O_RDWR keeps it from ever reporting end-of-file, and writers' opens succeed only
// while a reader holds it. Returns the fd, or -1 with errno (the path is removed again on failure).
inline int create_doorbell(const char* path) {
  if (mkfifo(path, 0600) != 0) {
    if (errno != EEXIST || unlink(path) != 0 || mkfifo(path, 0600) != 0) return -1;
  }
  // Between mkfifo and open someone could swap the path: open_fifo refuses a link or a non-FIFO.
  int fd = open_fifo(path, O_RDWR);
  if (fd < 0) {
    int err = errno;
    unlink(path);
    errno = err;
  }
  return fd;
}

// Empties a woken doorbell: rings that came in meanwhile are covered by the receiver's re-check of the ring.
inline void drain_doorbell(int fd) {
  char buf[256];
  while (read(fd, buf, sizeof buf) > 0) {
  }
}

// Open write ends of the receivers' doorbells, one per row, reopened when a row changes hands.
class BellRinger {
 public:
  explicit BellRinger(std::string prefix) : prefix_(std::move(prefix)) {}
  ~BellRinger() {
    for (auto& e : entries_) {
      if (e.fd >= 0) close(e.fd);
    }
  }
  BellRinger(const BellRinger&) = delete;
  BellRinger& operator=(const BellRinger&) = delete;

  // Writes one byte to the row's FIFO; false when nobody holds it (the receiver is gone) or what sits at its
  // path is not a FIFO (never written: it may be a planted link or file).
  bool ring(uint32_t row, uint32_t generation) {
    if (row >= kMaxHandles) return false;
    Entry& e = entries_[row];
    for (int attempt = 0; attempt < 2; attempt++) {
      if (e.fd < 0 || e.generation != generation) {
        if (e.fd >= 0) close(e.fd);
        std::string path = prefix_ + std::to_string(row);
        e.fd = open_fifo(path.c_str(), O_WRONLY);
        e.generation = generation;
        if (e.fd < 0) return false;  // ENXIO/ENOENT: the receiver is gone (the reaper cleans up); EINVAL/ELOOP: not a FIFO
      }
      const char one = 1;
      if (write(e.fd, &one, 1) == 1 || errno == EAGAIN) return true;  // EAGAIN: full of rings already
      close(e.fd);  // EPIPE: the row's receiver left and a new one replaced the FIFO: reopen once
      e.fd = -1;
    }
    return false;
  }

 private:
  struct Entry {
    int fd = -1;
    uint32_t generation = 0;
  };
  std::string prefix_;
  Entry entries_[kMaxHandles];
};

}  // namespace chan
}  // namespace libipc
