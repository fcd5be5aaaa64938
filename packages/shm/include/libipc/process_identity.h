// Process identity = (pid, start time). A zombie is dead; a reused pid is a different process.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace libipc {

struct ProcessIdentity {
  int pid;
  uint64_t start_time;  // clock ticks since boot, field 22 of /proc/<pid>/stat
};

// Returns false when there is no such process or it is a zombie (or already being reaped).
inline bool read_process_identity(int pid, ProcessIdentity* out) {
  if (pid <= 0) return false;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // The command name (field 2) may contain spaces and ')': fields resume after the last ')'.
  char* p = strrchr(buf, ')');
  if (p == nullptr || p[1] == '\0') return false;
  p += 2;
  char state = *p;
  if (state == 'Z' || state == 'X' || state == 'x') return false;
  // p points at field 3; advance to field 22.
  for (int field = 3; field < 22; ++field) {
    p = strchr(p, ' ');
    if (p == nullptr) return false;
    ++p;
  }
  out->pid = pid;
  out->start_time = strtoull(p, nullptr, 10);
  return true;
}

inline bool is_alive(int pid, uint64_t start_time /* 0: any */) {
  ProcessIdentity id;
  if (!read_process_identity(pid, &id)) return false;
  return start_time == 0 || id.start_time == start_time;
}

inline const ProcessIdentity& self_identity() {
  static ProcessIdentity self = [] {
    ProcessIdentity id{static_cast<int>(getpid()), 0};
    read_process_identity(id.pid, &id);
    return id;
  }();
  return self;
}

}  // namespace libipc
