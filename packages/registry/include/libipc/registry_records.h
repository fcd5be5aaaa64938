// The registry segment's records for C++: the offsets and sizes of layout version 2 (packages/registry/README.md
// "Segment layout"; Node's src/layout.ts holds the same numbers) and the codecs of its entry and group records,
// checked as they are read (a corrupt record is ERR_LIBIPC_INCOMPATIBLE). libipc::Registry (registry.h) does the
// mapping, locking and lifecycle around them.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "libipc/error.h"
#include "libipc/identity_table.h"
#include "libipc/lease.h"
#include "libipc/robust_mutex.h"
#include "libipc/segment_header.h"

namespace libipc {

// One registered service, as find/list return it: a copy, never a view of shared memory.
struct ServiceEntry {
  std::string name, control_channel, reply_channel;
  uint32_t pid = 0;
  uint64_t start_time = 0;      // liveness is (pid, start_time)
  double registered_at_ms = 0;  // ms since the epoch
  uint64_t heartbeat_ms = 0;    // the last heartbeat (ms since the epoch), 0 = never
  bool leased = false;          // its registering thread holds a death lease
  std::optional<std::string> meta;
};

struct GroupState {
  uint32_t epoch = 0;  // 0 before the first claim
  std::optional<std::string> primary;
};

namespace reg {
constexpr uint32_t kLayoutVersion = 2;
constexpr uint32_t kMaxCapacity = 8192, kUserCapacity = 256, kMetaMax = 256;
constexpr size_t kNameField = 64, kRegistryHeader = 64;
// Registry header words (after the segment header).
constexpr size_t kRhCapacity = 0, kRhSeq = 4, kRhWaiters = 8, kRhGroupCapacity = 12, kRhRingCapacity = 16, kRhUserCapacity = 20,
                 kRhEntrySize = 24, kRhMetaMax = 28, kRhEventSize = 32, kRhGroupSize = 36;
// Entry slot: state FREE/WRITING/LIVE, identity, times, names, meta, then the death lease.
constexpr size_t kEntrySize = 512 + kLeaseSize;
constexpr size_t kEState = 0, kEPid = 4, kEStart = 8, kERegisteredAt = 16, kEHeartbeat = 24, kEMetaLength = 32, kEName = 40,
                 kEControl = kEName + kNameField, kEReply = kEControl + kNameField, kEMeta = kEReply + kNameField, kELease = 512;
constexpr uint32_t kFree = 0, kWriting = 1, kLive = 2;
// Group record: two copies of (epoch, primary) and the index of the current one, then the host's lease.
constexpr size_t kGroupSize = 216 + kLeaseSize;
constexpr size_t kGState = 0, kGCurrent = 4, kGName = 8, kGCopy = 72, kGCopySize = 8 + kNameField, kGHostLease = 216;
// Change event: u32 seq, u32 type, a copy of the entry slot.
constexpr size_t kEventSize = 8 + kEntrySize;
enum EventType : uint32_t { kRegistered = 1, kUnregistered = 2, kRemovedDead = 3 };
constexpr uint64_t kHeartbeatMsMask = (uint64_t(1) << 48) - 1;

struct Geometry {
  uint32_t capacity = 0, group_capacity = 0, ring_capacity = 0;
  size_t users = 0, entries = 0, groups = 0, ring = 0, size = 0;
};

inline Geometry geometry(uint32_t capacity) {
  Geometry g;
  g.capacity = capacity;
  g.group_capacity = std::max<uint32_t>(16, capacity);
  g.ring_capacity = 1;
  while (g.ring_capacity < std::max<uint32_t>(256, capacity)) g.ring_capacity <<= 1;
  g.users = kHeaderSize + kRegistryHeader;
  g.entries = g.users + kUserCapacity * kIdentityRowSize;
  g.groups = g.entries + size_t(capacity) * kEntrySize;
  g.ring = g.groups + size_t(g.group_capacity) * kGroupSize;
  g.size = g.ring + size_t(g.ring_capacity) * kEventSize;
  return g;
}

template <typename T>
T get(const uint8_t* p) {
  T v;
  memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
void put(uint8_t* p, T v) {
  memcpy(p, &v, sizeof v);
}

inline void write_name(uint8_t* field, const std::string& name) {
  memset(field, 0, kNameField);
  memcpy(field, name.data(), std::min(name.size(), kNameField - 1));
}
inline std::string read_name(const uint8_t* field) {
  size_t n = 0;
  while (n < kNameField - 1 && field[n] != 0) n++;
  return std::string(reinterpret_cast<const char*>(field), n);
}

// An entry slot, every field checked: a name outside the rule, a meta length past its field or a non-pid is corrupt.
inline ServiceEntry decode_entry(const uint8_t* e, bool leased) {
  ServiceEntry out;
  out.name = read_name(e + kEName);
  out.control_channel = read_name(e + kEControl);
  out.reply_channel = read_name(e + kEReply);
  out.pid = get<uint32_t>(e + kEPid);
  const uint32_t meta_length = get<uint32_t>(e + kEMetaLength);
  auto valid = [](const std::string& s) {
    try {
      validate_name(s);
      return true;
    } catch (const Error&) {
      return false;
    }
  };
  if (!valid(out.name) || !valid(out.control_channel) || !valid(out.reply_channel) || meta_length > kMetaMax + 1 || out.pid == 0 ||
      out.pid > kMutexPidMask) {
    throw Error("ERR_LIBIPC_INCOMPATIBLE", "registry entry '" + out.name + "' is corrupt (a process wrote invalid data into the registry segment)");
  }
  out.start_time = get<uint64_t>(e + kEStart);
  out.registered_at_ms = get<double>(e + kERegisteredAt);
  out.heartbeat_ms = __atomic_load_n(reinterpret_cast<const uint64_t*>(e + kEHeartbeat), __ATOMIC_ACQUIRE) & kHeartbeatMsMask;
  out.leased = leased;
  if (meta_length != 0) out.meta = std::string(reinterpret_cast<const char*>(e + kEMeta), meta_length - 1);
  return out;
}

inline std::atomic<uint32_t>* word32(uint8_t* p) { return reinterpret_cast<std::atomic<uint32_t>*>(p); }

// Which of a group record's two copies is current (anything but 0 or 1 is corrupt).
inline uint32_t group_current_copy(const uint8_t* at) {
  const uint32_t current = word32(const_cast<uint8_t*>(at) + kGCurrent)->load();
  if (current > 1) throw Error("ERR_LIBIPC_INCOMPATIBLE", "group record '" + read_name(at + kGName) + "' is corrupt");
  return current;
}

inline GroupState read_group(const uint8_t* at) {
  const uint8_t* copy = at + kGCopy + group_current_copy(at) * kGCopySize;
  GroupState s;
  s.epoch = get<uint32_t>(copy);
  const std::string primary = read_name(copy + 8);
  if (!primary.empty()) {
    validate_name(primary, "group primary");  // corrupt: ERR_LIBIPC_INVALID_NAME
    s.primary = primary;
  }
  return s;
}

// A fresh group record named `group` (epoch 0, no primary), under the registry lock.
inline void init_group(uint8_t* at, const std::string& group) {
  word32(at + kGState)->store(kWriting);
  memset(at + kGCurrent, 0, kGroupSize - kGCurrent);
  write_name(at + kGName, group);
  word32(at + kGState)->store(kLive);
}

// Writes the spare copy, then makes it current with one store: a writer killed midway leaves the old one.
inline void write_group(uint8_t* at, uint32_t epoch, const std::string& primary) {
  const uint32_t spare = 1 - group_current_copy(at);
  uint8_t* copy = at + kGCopy + spare * kGCopySize;
  put<uint32_t>(copy, epoch);
  write_name(copy + 8, primary);
  word32(at + kGCurrent)->store(spare);
}
}  // namespace reg

}  // namespace libipc
