// The 128-byte header every libipc segment starts with, and the protocol to create, join and retire a headed
// segment (docs/layout.md "Segment header"), for C++ clients that share segments with Node processes. The
// TypeScript side is packages/shm/src/segment-header.ts; both follow docs/layout.md, which is the contract.
#pragma once

#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "libipc/error.h"
#include "libipc/futex.h"
#include "libipc/process_identity.h"
#include "libipc/robust_mutex.h"
#include "libipc/segment.h"

namespace libipc {

constexpr uint32_t kSegmentMagic = 0x4350494cu;  // 'LIPC' little-endian
constexpr uint32_t kHeaderFormat = 2;            // robust mutex words carry a generation and an ABANDONED bit
constexpr size_t kHeaderSize = 128;
constexpr size_t kHeaderLockOffset = 64;
enum SegmentState : uint32_t { kStateEmpty = 0, kStateInitialising = 1, kStateReady = 2, kStateRetired = 3 };

struct SegmentHeaderLayout {
  std::atomic<uint32_t> magic;  //  0
  uint32_t layout_version;      //  4 of the body, per kind
  std::atomic<uint32_t> state;  //  8 futex word: SegmentState
  uint32_t header_size;         // 12
  uint64_t size;                // 16 the object's total size
  std::atomic<uint32_t> creator_pid;  // 24 written after creator_start
  uint32_t creator_uid;               // 28
  uint64_t creator_start;             // 32
  char kind[16];                      // 40 ASCII, zero-padded
  uint32_t format;                    // 56 kHeaderFormat
  uint32_t reserved0;                 // 60
  RobustMutexLayout lock;             // 64 guards the segment's structure
  uint8_t reserved[48];               // 80
};
static_assert(sizeof(SegmentHeaderLayout) == kHeaderSize, "segment header is 128 bytes");
static_assert(offsetof(SegmentHeaderLayout, lock) == kHeaderLockOffset, "header lock at 64");

// "/libipc.<kind>.<name>" (the name is checked: 1-63 of [A-Za-z0-9._-]).
inline std::string object_name(const std::string& kind, const std::string& name) {
  validate_name(name);
  return "/libipc." + kind + "." + name;
}

// What to attach: the body's kind, version and size, and how a creator lays out a new body.
struct SegmentSpec {
  std::string kind;
  std::string name;
  uint32_t layout_version = 0;
  size_t size = 0;                                 // total bytes, header included (used only when creating)
  std::function<void(uint8_t* base)> init;         // lays out a new body before anyone can see it
  bool open_only = false;                          // ERR_LIBIPC_NOT_FOUND instead of creating
  std::vector<uint32_t> allow_users;               // other uids whose segments may be joined
  int64_t open_timeout_ms = 2000;
};

// A mapped, headed segment. Movable, not copyable; unmaps on destruction (the name stays: see retire()).
class Segment {
 public:
  Segment() = default;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  Segment(Segment&& o) noexcept : m_(o.m_), object_(std::move(o.object_)), created_(o.created_) { o.m_ = MappedSegment{}; }
  Segment& operator=(Segment&& o) noexcept {
    if (this != &o) {
      unmap_segment(&m_);
      m_ = o.m_;
      object_ = std::move(o.object_);
      created_ = o.created_;
      o.m_ = MappedSegment{};
    }
    return *this;
  }
  ~Segment() { unmap_segment(&m_); }

  uint8_t* base() const { return static_cast<uint8_t*>(m_.addr); }
  size_t size() const { return m_.size; }
  bool created() const { return created_; }
  const std::string& object() const { return object_; }
  SegmentHeaderLayout* header() const { return reinterpret_cast<SegmentHeaderLayout*>(m_.addr); }
  RobustMutex lock() const { return RobustMutex(base() + kHeaderLockOffset); }

  // Marks it retired and removes its name (only while the name still refers to our object). Call as its last
  // user, holding lock(): openers that find it retired create a fresh one instead of joining.
  void retire() {
    header()->state.store(kStateRetired);
    futex_wake(reinterpret_cast<const uint32_t*>(&header()->state));
    unlink_segment_if(object_.c_str(), m_.dev, m_.inode);
  }

  // Forgets the mapping without unmapping it (for the process's life): memory on a thread's robust list (a held
  // lease) must stay mapped, or the C library would follow a dangling pointer.
  void keep_mapped() {
    if (m_.fd >= 0) close(m_.fd);
    m_ = MappedSegment{};
  }

  // Creates or joins `spec.name` (docs/layout.md "Segment header"). Throws libipc::Error.
  static Segment attach(const SegmentSpec& spec);

 private:
  MappedSegment m_;
  std::string object_;
  bool created_ = false;
};

namespace detail {

inline void pause_ms(int ms) {
  struct timespec ts{0, ms * 1000000L};
  nanosleep(&ts, nullptr);
}

inline std::string header_kind(const SegmentHeaderLayout* h) {
  char k[17];
  memcpy(k, h->kind, 16);
  k[16] = '\0';
  return std::string(k);
}

// A joined header's magic, format, kind, version, size and creator uid must all match what we read.
inline void check_compatible(const SegmentHeaderLayout* h, size_t size, const SegmentSpec& spec, const std::string& what) {
  auto incompatible = [&](const std::string& why) { throw Error("ERR_LIBIPC_INCOMPATIBLE", what + " " + why); };
  if (h->magic.load() != kSegmentMagic) incompatible("is not a libipc segment (bad magic); remove it if it is a leftover");
  if (h->format != kHeaderFormat) {
    incompatible("was made by another libipc version (header format " + std::to_string(h->format) +
                 "); stop the processes of the other version (or clear its storage) and retry");
  }
  if (header_kind(h) != spec.kind) incompatible("holds a '" + header_kind(h) + "' segment, not '" + spec.kind + "'");
  if (h->layout_version != spec.layout_version) {
    incompatible("has layout version " + std::to_string(h->layout_version) + ", this code reads version " +
                 std::to_string(spec.layout_version) + "; stop the processes of the other version (or clear its storage) and retry");
  }
  if (h->size != size) incompatible("is corrupt: its header says " + std::to_string(h->size) + " bytes, it has " + std::to_string(size));
  const uint32_t uid = h->creator_uid;
  bool allowed = uid == static_cast<uint32_t>(geteuid());
  for (uint32_t u : spec.allow_users) allowed = allowed || u == uid;
  if (!allowed) {
    throw Error("ERR_LIBIPC_PERMISSION", what + " was created by uid " + std::to_string(uid) +
                                             ", not this process's uid; list that uid in allow_users to join it");
  }
}

inline bool creator_alive(const SegmentHeaderLayout* h) {
  const uint32_t pid = h->creator_pid.load();
  return pid != 0 && pid <= kMutexPidMask && is_alive(static_cast<int>(pid), h->creator_start);
}

}  // namespace detail

inline Segment Segment::attach(const SegmentSpec& spec) {
  const std::string obj = object_name(spec.kind, spec.name);
  const std::string what = "segment " + obj.substr(1);
  if (spec.size < kHeaderSize) throw Error("ERR_LIBIPC_INVALID_ARGUMENT", what + ": size must be at least 128 bytes");
  const int64_t deadline = monotonic_ns() + spec.open_timeout_ms * 1000000LL;
  for (int attempt = 0;; attempt++) {
    if (attempt > 0 && monotonic_ns() > deadline + 1000000000LL) {
      throw Error("ERR_LIBIPC_TIMEOUT", what + " could not be attached: it was removed and re-created again and again; retry later");
    }
    Segment seg;
    seg.object_ = obj;
    int err = open_segment(obj.c_str(), &seg.m_);
    if (err == ENOENT) {
      if (spec.open_only) throw Error("ERR_LIBIPC_NOT_FOUND", what + " does not exist");
      // Create it unnamed, lay it out, then give it its name in one step: nobody ever sees it half-made.
      if ((err = create_segment(spec.size, 0600, &seg.m_)) != 0) throw system_error("creating " + what, err);
      SegmentHeaderLayout* h = seg.header();
      const ProcessIdentity& self = self_identity();
      h->layout_version = spec.layout_version;
      h->header_size = kHeaderSize;
      h->size = spec.size;
      h->creator_start = self.start_time;  // before the pid: a reader that sees the pid sees its start time
      h->creator_uid = static_cast<uint32_t>(geteuid());
      h->creator_pid.store(static_cast<uint32_t>(self.pid));
      // Zero-padded, not necessarily NUL-terminated (what strncpy did, without -Wstringop-truncation in users' builds).
      memset(h->kind, 0, sizeof h->kind);
      memcpy(h->kind, spec.kind.data(), std::min(spec.kind.size(), sizeof h->kind));
      h->format = kHeaderFormat;
      RobustMutex::init(&h->lock);
      h->magic.store(kSegmentMagic);
      h->state.store(kStateInitialising);
      if (spec.init) spec.init(seg.base());
      h->state.store(kStateReady);
      err = publish_segment(&seg.m_, obj.c_str());
      if (err == 0) {
        seg.created_ = true;
        return seg;
      }
      if (err != EEXIST) throw system_error("naming " + what, err);
      continue;  // someone else created it first: join theirs
    }
    if (err == ENODATA) {  // an empty leftover: nothing libipc publishes looks like that
      uint64_t dev = 0, ino = 0;
      if (segment_identity(obj.c_str(), &dev, &ino) == 0) unlink_segment_if(obj.c_str(), dev, ino);
      continue;
    }
    if (err != 0) throw system_error("opening " + what, err);
    bool allowed = seg.m_.uid == static_cast<uint32_t>(geteuid());
    for (uint32_t u : spec.allow_users) allowed = allowed || u == seg.m_.uid;
    if (!allowed) throw Error("ERR_LIBIPC_PERMISSION", what + " belongs to uid " + std::to_string(seg.m_.uid) + "; refusing to join another user's segment");
    if (seg.m_.size < kHeaderSize) throw Error("ERR_LIBIPC_INCOMPATIBLE", what + " is not a libipc segment (too small); remove it if it is a leftover");
    SegmentHeaderLayout* h = seg.header();
    const uint32_t magic = h->magic.load();
    if (magic != 0 && magic != kSegmentMagic) detail::check_compatible(h, seg.m_.size, spec, what);
    // Wait (bounded) while a live creator is still initialising.
    uint32_t state = h->state.load();
    while ((state == kStateEmpty || state == kStateInitialising) && detail::creator_alive(h) && monotonic_ns() < deadline) {
      futex_wait(reinterpret_cast<const uint32_t*>(&h->state), state, 10 * 1000000LL);
      state = h->state.load();
    }
    if (state == kStateReady) {
      detail::check_compatible(h, seg.m_.size, spec, what);
      return seg;
    }
    if (state == kStateRetired) {
      // The retiring process removes the name right after marking it; if it died in between, we do it.
      if (attempt > 20) unlink_segment_if(obj.c_str(), seg.m_.dev, seg.m_.inode);
      else detail::pause_ms(1);
      continue;
    }
    if (detail::creator_alive(h)) throw Error("ERR_LIBIPC_TIMEOUT", what + " is still being initialised by another process; retry later");
    unlink_segment_if(obj.c_str(), seg.m_.dev, seg.m_.inode);  // its creator died while initialising
  }
}

}  // namespace libipc
