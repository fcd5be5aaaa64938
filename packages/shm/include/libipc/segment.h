// Named POSIX shared-memory segments: create (exclusive) or open, then map.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace libipc {

struct MappedSegment {
  void* addr = nullptr;
  size_t size = 0;
  bool created = false;
  uint64_t inode = 0;
};

enum class SegmentOpen { OpenExisting, CreateExclusive };

// object_name starts with '/'. For CreateExclusive the object gets exactly `mode` (umask ignored).
// Returns 0 or an errno value; on failure nothing is left behind (a half-created object is unlinked).
inline int map_segment(const char* object_name, size_t size, SegmentOpen how, mode_t mode, MappedSegment* out) {
  const bool create = how == SegmentOpen::CreateExclusive;
  int fd = shm_open(object_name, create ? (O_RDWR | O_CREAT | O_EXCL) : O_RDWR, mode);
  if (fd < 0) return errno;
  auto fail = [&](int err) {
    close(fd);
    if (create) shm_unlink(object_name);
    return err;
  };
  if (create) {
    if (fchmod(fd, mode) != 0) return fail(errno);
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) return fail(errno);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return fail(errno);
  if (!create) size = static_cast<size_t>(st.st_size);
  if (size == 0) return fail(ENODATA);  // a creator between shm_open and ftruncate: caller retries
  void* addr = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) return fail(errno);
  close(fd);
  out->addr = addr;
  out->size = size;
  out->created = create;
  out->inode = static_cast<uint64_t>(st.st_ino);
  return 0;
}

inline void unmap_segment(MappedSegment* seg) {
  if (seg->addr != nullptr) munmap(seg->addr, seg->size);
  seg->addr = nullptr;
  seg->size = 0;
}

// The inode currently behind a name, or 0 when absent: lets an opener tell a replaced object apart.
inline uint64_t segment_inode(const char* object_name) {
  int fd = shm_open(object_name, O_RDONLY, 0);
  if (fd < 0) return 0;
  struct stat st;
  uint64_t ino = fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
  close(fd);
  return ino;
}

}  // namespace libipc
