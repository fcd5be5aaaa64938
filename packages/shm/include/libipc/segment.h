// Named shared-memory segments in /dev/shm: created unnamed and given their name only once sized (and, for
// headed segments, initialised), opened without ever following a link, removed only while the name still
// refers to the object we hold.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace libipc {

constexpr const char* kShmDir = "/dev/shm";

struct MappedSegment {
  void* addr = nullptr;
  size_t size = 0;
  bool created = false;
  uint64_t dev = 0;
  uint64_t inode = 0;
  uint32_t uid = 0;   // owner of the object (fstat)
  uint32_t mode = 0;  // permission bits
  int fd = -1;        // kept only between create_segment and publish_segment
  std::string temp_path;  // the temporary name of a created object, where O_TMPFILE is unavailable
};

// /dev/shm + object_name ("/libipc.<kind>.<name>").
inline std::string shm_path(const char* object_name) { return std::string(kShmDir) + object_name; }

inline int map_fd(int fd, size_t size, MappedSegment* out) {
  void* addr = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) return errno;
  out->addr = addr;
  out->size = size;
  return 0;
}

inline void fill_identity(const struct stat& st, MappedSegment* out) {
  out->dev = static_cast<uint64_t>(st.st_dev);
  out->inode = static_cast<uint64_t>(st.st_ino);
  out->uid = static_cast<uint32_t>(st.st_uid);
  out->mode = static_cast<uint32_t>(st.st_mode & 07777);
}

// A new, still unnamed object of `size` bytes with exactly `mode`, its pages reserved now (posix_fallocate):
// a full /dev/shm is ENOSPC here, never a SIGBUS on first touch later. Mapped and zero-filled. Nobody can
// open it until publish_segment gives it its name; a creator killed before that leaves nothing behind.
inline int create_segment(size_t size, mode_t mode, MappedSegment* out) {
  int fd = open(kShmDir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    // Old kernels: a private temporary name instead (same protocol, a killed creator leaves libipc.tmp.*).
    static unsigned counter = 0;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
      char name[96];
      snprintf(name, sizeof name, "%s/libipc.tmp.%d.%u", kShmDir, static_cast<int>(getpid()), ++counter);
      fd = open(name, O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC, mode);
      if (fd >= 0) out->temp_path = name;
      else if (errno != EEXIST) break;
    }
  }
  if (fd < 0) return errno;
  auto fail = [&](int err) {
    close(fd);
    if (!out->temp_path.empty()) unlink(out->temp_path.c_str());
    out->temp_path.clear();
    return err;
  };
  if (fchmod(fd, mode) != 0) return fail(errno);
  int err = posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (err == EOPNOTSUPP || err == EINVAL) err = ftruncate(fd, static_cast<off_t>(size)) == 0 ? 0 : errno;
  if (err != 0) return fail(err);
  struct stat st;
  if (fstat(fd, &st) != 0) return fail(errno);
  if ((err = map_fd(fd, size, out)) != 0) return fail(err);
  fill_identity(st, out);
  out->created = true;
  out->fd = fd;
  return 0;
}

// Gives a created object its name, atomically and exclusively: EEXIST when the name is taken. Closes the fd.
inline int publish_segment(MappedSegment* seg, const char* object_name) {
  if (seg->fd < 0) return EBADF;
  const std::string path = shm_path(object_name);
  int rc;
  if (seg->temp_path.empty()) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", seg->fd);
    rc = linkat(AT_FDCWD, proc, AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW);
  } else {
    rc = link(seg->temp_path.c_str(), path.c_str());
  }
  int err = rc == 0 ? 0 : errno;
  if (err == 0 || err == EEXIST) {
    close(seg->fd);
    seg->fd = -1;
    if (!seg->temp_path.empty()) unlink(seg->temp_path.c_str());
    seg->temp_path.clear();
  }
  return err;
}

// Opens and maps an existing object at its full size. Never follows a symlink (ELOOP) and refuses anything
// but a regular file (EFTYPE-like: EINVAL); an empty object is ENODATA (a leftover: nothing creates one).
inline int open_segment(const char* object_name, MappedSegment* out) {
  const std::string path = shm_path(object_name);
  int fd = open(path.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st;
  int err = 0;
  if (fstat(fd, &st) != 0) err = errno;
  else if (!S_ISREG(st.st_mode)) err = EINVAL;
  else if (st.st_size == 0) err = ENODATA;
  if (err == 0) err = map_fd(fd, static_cast<size_t>(st.st_size), out);
  close(fd);
  if (err != 0) return err;
  fill_identity(st, out);
  return 0;
}

inline void unmap_segment(MappedSegment* seg) {
  if (seg->addr != nullptr) munmap(seg->addr, seg->size);
  seg->addr = nullptr;
  seg->size = 0;
  if (seg->fd >= 0) close(seg->fd);
  seg->fd = -1;
  if (!seg->temp_path.empty()) unlink(seg->temp_path.c_str());
  seg->temp_path.clear();
}

// The (dev, inode) behind a name without opening it (no fd needed: works at the fd limit, and never follows a
// link). Returns 0 and fills them, or an errno (ENOENT when absent).
inline int segment_identity(const char* object_name, uint64_t* dev, uint64_t* ino) {
  struct stat st;
  if (lstat(shm_path(object_name).c_str(), &st) != 0) return errno;
  *dev = static_cast<uint64_t>(st.st_dev);
  *ino = static_cast<uint64_t>(st.st_ino);
  return 0;
}

// Removes the name only if it still refers to (dev, ino): 0 removed, ESTALE another object has the name now,
// ENOENT already gone, another errno on failure.
inline int unlink_segment_if(const char* object_name, uint64_t dev, uint64_t ino) {
  uint64_t d = 0, i = 0;
  int err = segment_identity(object_name, &d, &i);
  if (err != 0) return err;
  if (d != dev || i != ino) return ESTALE;
  return unlink(shm_path(object_name).c_str()) == 0 ? 0 : errno;
}

}  // namespace libipc
