// libipc::Registry for C++: the same per-domain service registry a Node `ServiceRegistry` opens
// (`libipc.registry.<domain>`, layout version 2: packages/registry/README.md "Segment layout"), header-only, with
// plain `g++ -std=c++17 -pthread` and the include dirs of @libipc/shm and @libipc/registry. A C++ registration
// carries a death lease held by the registering thread, so Node watchers learn of its death from the kernel at
// once; every call checks what it reads from shared memory (a corrupt entry is ERR_LIBIPC_INCOMPATIBLE, never a
// crash). A handle is used by one thread at a time; the thread that registers holds the lease.
#pragma once

#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "libipc/error.h"
#include "libipc/futex.h"
#include "libipc/identity_table.h"
#include "libipc/lease.h"
#include "libipc/process_identity.h"
#include "libipc/robust_mutex.h"
#include "libipc/registry_records.h"
#include "libipc/segment_header.h"

namespace libipc {

struct RegistryOptions {
  uint32_t capacity = 32;             // entries, when this call creates the domain
  int64_t lock_timeout_ms = 1000;     // a stopped lock holder never freezes a call for longer
  std::vector<uint32_t> allow_users;  // other uids whose domain may be joined
};

class Registry {
 public:
  explicit Registry(const std::string& domain = "default", const RegistryOptions& opts = {}) : domain_(domain), opts_(opts) { attach(); }
  ~Registry() { close(); }
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  const std::string& domain() const { return domain_; }
  uint32_t capacity() const { return g_.capacity; }

  // Registers `name` for this process with a death lease held by the calling thread. false when a live process
  // already holds the name (an entry of a dead one is replaced); ERR_LIBIPC_REGISTRY_FULL when no slot is free.
  bool register_service(const std::string& name, const std::string& control_channel, const std::string& reply_channel,
                        const std::optional<std::string>& meta = std::nullopt) {
    validate_name(name, "service name");
    validate_name(control_channel, "control_channel");
    validate_name(reply_channel, "reply_channel");
    if (meta && meta->size() > reg::kMetaMax) {
      throw Error("ERR_LIBIPC_INVALID_ARGUMENT", "meta is " + std::to_string(meta->size()) + " bytes, the most an entry holds is 256");
    }
    return locked([&] {
      int free = -1;
      const int slot = find_slot(name, &free);
      if (slot >= 0) {
        if (liveness(slot) != Dead) return false;
        remove(slot, reg::kRemovedDead);
        free = slot;
      }
      if (free < 0) free = collect_dead();
      if (free < 0) {
        throw Error("ERR_LIBIPC_REGISTRY_FULL", "registry '" + domain_ + "' is full: all " + std::to_string(g_.capacity) +
                                                    " entries belong to live processes; unregister services or recreate the domain with a larger capacity");
      }
      uint8_t* e = entry(free);
      reg::word32(e + reg::kEState)->store(reg::kWriting);
      if (Lease(e + reg::kELease).acquire() != 0) {
        reg::word32(e + reg::kEState)->store(reg::kFree);
        throw Error("ERR_LIBIPC_INCOMPATIBLE", "registry slot " + std::to_string(free) + " has a lease held by a live thread; the registry is corrupt");
      }
      const ProcessIdentity& self = self_identity();
      reg::put<uint32_t>(e + reg::kEPid, static_cast<uint32_t>(self.pid));
      reg::put<uint64_t>(e + reg::kEStart, self.start_time);
      reg::put<double>(e + reg::kERegisteredAt, now_ms());
      // A new generation: a heartbeat aimed at this slot's previous entry fails its compare-and-swap.
      const uint64_t generation = ((u64(e + reg::kEHeartbeat)->load() >> 48) + 1) & 0xffff;
      u64(e + reg::kEHeartbeat)->store(generation << 48);
      reg::put<uint32_t>(e + reg::kEMetaLength, meta ? static_cast<uint32_t>(meta->size() + 1) : 0);
      if (meta) memcpy(e + reg::kEMeta, meta->data(), meta->size());
      reg::write_name(e + reg::kEName, name);
      reg::write_name(e + reg::kEControl, control_channel);
      reg::write_name(e + reg::kEReply, reply_channel);
      reg::word32(e + reg::kEState)->store(reg::kLive);
      emit(reg::kRegistered, free);
      own_[name] = Own{static_cast<uint32_t>(free), generation};
      return true;
    });
  }

  // Removes `name` (only if held by `pid`, when not 0). false when there was no such entry.
  bool unregister(const std::string& name, uint32_t pid = 0) {
    validate_name(name, "service name");
    return locked([&] {
      const int slot = find_slot(name);
      if (slot < 0 || (pid != 0 && reg::get<uint32_t>(entry(slot) + reg::kEPid) != pid)) return false;
      remove(slot, reg::kUnregistered);
      own_.erase(name);
      return true;
    });
  }

  // The live entry `name`; an entry of a dead process is removed on the way.
  std::optional<ServiceEntry> find(const std::string& name) {
    validate_name(name, "service name");
    return locked([&]() -> std::optional<ServiceEntry> {
      const int slot = find_slot(name);
      if (slot < 0) return std::nullopt;
      const Liveness l = liveness(slot);
      if (l != Dead) return reg::decode_entry(entry(slot), l == Leased);
      remove(slot, reg::kRemovedDead);
      return std::nullopt;
    });
  }

  // Live entries whose name starts with `prefix` (all when empty), sorted by name; corrupt ones are left out.
  std::vector<ServiceEntry> list(const std::string& prefix = "") {
    return locked([&] {
      std::map<std::string, ServiceEntry> sorted;
      for (uint32_t slot = 0; slot < g_.capacity; slot++) {
        if (reg::word32(entry(slot) + reg::kEState)->load() != reg::kLive) continue;
        if (!prefix.empty() && memcmp(entry(slot) + reg::kEName, prefix.data(), std::min(prefix.size(), reg::kNameField)) != 0) continue;
        const Liveness l = liveness(slot);
        if (l == Dead) {
          remove(slot, reg::kRemovedDead);
          continue;
        }
        try {
          ServiceEntry e = reg::decode_entry(entry(slot), l == Leased);
          sorted.emplace(e.name, std::move(e));
        } catch (const Error&) {
        }
      }
      std::vector<ServiceEntry> out;
      for (auto& kv : sorted) out.push_back(std::move(kv.second));
      return out;
    });
  }

  // Removes the entries of dead processes; returns how many.
  size_t gc() {
    return locked([&] {
      size_t n = 0;
      while (collect_dead() >= 0) n++;
      return n;
    });
  }

  // Stamps this process's entry `name` with the current time, lock-free. ERR_LIBIPC_NOT_FOUND when it holds none.
  void heartbeat(const std::string& name) {
    check_open();
    auto it = own_.find(name);
    if (it != own_.end() && stamp(it->second.slot, it->second.generation)) return;
    own_.erase(name);
    throw Error("ERR_LIBIPC_NOT_FOUND", "process " + std::to_string(getpid()) + " holds no entry '" + name + "' in registry '" + domain_ +
                                            "' (never registered here, unregistered or cleared); register it first");
  }

  // The group's record: its epoch (0 before the first claim) and primary instance.
  GroupState group_state(const std::string& group) {
    validate_name(group, "group");
    return locked([&] {
      int free = -1;
      const int index = find_group(group, &free);
      return index < 0 ? GroupState{} : reg::read_group(group_at(index));
    });
  }

  // The host lease of `group`'s record (a ServiceGroup's host holds it while it runs, so that its members learn of
  // its death from the kernel): a view into this handle's mapping, valid until close(); std::nullopt when the group
  // has no record yet. Watch it with Lease::prepare_wait() and futex_wait(), from any thread.
  std::optional<Lease> group_lease(const std::string& group) {
    validate_name(group, "group");
    return locked([&]() -> std::optional<Lease> {
      int free = -1;
      const int index = find_group(group, &free);
      if (index < 0) return std::nullopt;
      return Lease(group_at(index) + reg::kGHostLease);
    });
  }

  // Compare-and-swap: if the group's epoch is still `expected_epoch`, makes `instance` its primary and returns the
  // new epoch (expected_epoch + 1); otherwise std::nullopt (another claim won).
  std::optional<uint32_t> claim_primary(const std::string& group, const std::string& instance, uint32_t expected_epoch) {
    validate_name(group, "group");
    validate_name(instance, "instance");
    if (expected_epoch == UINT32_MAX) throw Error("ERR_LIBIPC_INVALID_ARGUMENT", "expected_epoch is out of range");
    return locked([&]() -> std::optional<uint32_t> {
      int free = -1;
      int index = find_group(group, &free);
      if ((index < 0 ? 0 : reg::read_group(group_at(index)).epoch) != expected_epoch) return std::nullopt;
      if (index < 0) {
        if (free < 0) throw Error("ERR_LIBIPC_REGISTRY_FULL", "registry '" + domain_ + "' holds no free group record; use fewer groups");
        index = free;
        reg::init_group(group_at(index), group);
      }
      reg::write_group(group_at(index), expected_epoch + 1, instance);
      return expected_epoch + 1;
    });
  }

  // Detaches; the last process to leave a domain with no live entries removes it. Entries registered here stay
  // (until unregister() or this process's death): the mapping is kept while this thread holds their leases.
  void close() {
    if (!open_) return;
    RobustMutex lock = seg_.lock();
    const LockResult r = lock.lock(opts_.lock_timeout_ms * 1000000LL);
    IdentityTable users(seg_.base() + g_.users, reg::kUserCapacity);
    users.remove(user_row_);
    if (r != LockResult::TimedOut) {
      if (r == LockResult::AcquiredOwnerDied) repair();
      reap_users();
      bool live_entry = false;
      for (uint32_t slot = 0; slot < g_.capacity && !live_entry; slot++) {
        live_entry = reg::word32(entry(slot) + reg::kEState)->load() == reg::kLive && liveness(slot) != Dead;
      }
      if (users.used().empty() && !live_entry) seg_.retire();
      lock.unlock();
    }
    open_ = false;
    // A lease this thread holds is on its robust list, which the C library walks: its memory must stay mapped.
    bool holding = false;
    for (auto& kv : own_) holding = holding || Lease(entry(kv.second.slot) + reg::kELease).holder_tid() == uint32_t(current_tid());
    if (holding) seg_.keep_mapped();
    own_.clear();
    seg_ = Segment();
  }

 private:
  enum Liveness { Dead, Alive, Leased };
  struct Own {
    uint32_t slot;
    uint64_t generation;
  };

  static std::atomic<uint64_t>* u64(uint8_t* p) { return reinterpret_cast<std::atomic<uint64_t>*>(p); }
  static double now_ms() {
    struct timeval tv;
    gettimeofday(&tv, nullptr);
    return double(tv.tv_sec) * 1000 + double(tv.tv_usec / 1000);
  }

  uint8_t* entry(uint32_t slot) const { return seg_.base() + g_.entries + size_t(slot) * reg::kEntrySize; }
  uint8_t* group_at(uint32_t index) const { return seg_.base() + g_.groups + size_t(index) * reg::kGroupSize; }
  std::atomic<uint32_t>* seq_word() const { return reg::word32(seg_.base() + kHeaderSize + reg::kRhSeq); }

  void check_open() const {
    if (!open_) throw Error("ERR_LIBIPC_CLOSED", "registry '" + domain_ + "' is closed; open a new Registry to use it");
  }

  void attach() {
    validate_name(domain_, "domain");
    if (opts_.capacity < 1 || opts_.capacity > reg::kMaxCapacity) throw Error("ERR_LIBIPC_INVALID_ARGUMENT", "capacity must be from 1 to 8192");
    const reg::Geometry created = reg::geometry(opts_.capacity);
    SegmentSpec spec;
    spec.kind = "registry";
    spec.name = domain_;
    spec.layout_version = reg::kLayoutVersion;
    spec.size = created.size;
    spec.allow_users = opts_.allow_users;
    spec.init = [&](uint8_t* base) {
      uint8_t* h = base + kHeaderSize;
      reg::put<uint32_t>(h + reg::kRhCapacity, created.capacity);
      reg::put<uint32_t>(h + reg::kRhGroupCapacity, created.group_capacity);
      reg::put<uint32_t>(h + reg::kRhRingCapacity, created.ring_capacity);
      reg::put<uint32_t>(h + reg::kRhUserCapacity, reg::kUserCapacity);
      reg::put<uint32_t>(h + reg::kRhEntrySize, reg::kEntrySize);
      reg::put<uint32_t>(h + reg::kRhMetaMax, reg::kMetaMax);
      reg::put<uint32_t>(h + reg::kRhEventSize, reg::kEventSize);
      reg::put<uint32_t>(h + reg::kRhGroupSize, reg::kGroupSize);
    };
    for (int attempt = 0; attempt < 100; attempt++) {
      seg_ = Segment::attach(spec);
      read_geometry();
      RobustMutex lock = seg_.lock();
      const LockResult r = lock.lock(opts_.lock_timeout_ms * 1000000LL);
      if (r == LockResult::TimedOut) throw Error("ERR_LIBIPC_TIMEOUT", "registry '" + domain_ + "': its lock is held by a stopped process; retry later");
      if (r == LockResult::AcquiredOwnerDied) repair();
      if (seg_.header()->state.load() == kStateRetired) {  // the last user retired it meanwhile: attach to a new one
        lock.unlock();
        continue;
      }
      reap_users();
      const int row = IdentityTable(seg_.base() + g_.users, reg::kUserCapacity).add(0);
      lock.unlock();
      if (row < 0) throw Error("ERR_LIBIPC_REGISTRY_FULL", "registry '" + domain_ + "' already has 256 processes attached; close some");
      user_row_ = static_cast<uint32_t>(row);
      open_ = true;
      return;
    }
    throw Error("ERR_LIBIPC_TIMEOUT", "registry '" + domain_ + "' keeps being removed while opening it; retry later");
  }

  // The geometry, checked against the segment's size once and kept privately: never re-read.
  void read_geometry() {
    const uint8_t* h = seg_.base() + kHeaderSize;
    const uint32_t capacity = seg_.size() >= kHeaderSize + reg::kRegistryHeader ? reg::get<uint32_t>(h + reg::kRhCapacity) : 0;
    const reg::Geometry g = reg::geometry(capacity >= 1 && capacity <= reg::kMaxCapacity ? capacity : 1);
    const bool fits = capacity >= 1 && capacity <= reg::kMaxCapacity && reg::get<uint32_t>(h + reg::kRhGroupCapacity) == g.group_capacity &&
                      reg::get<uint32_t>(h + reg::kRhRingCapacity) == g.ring_capacity && reg::get<uint32_t>(h + reg::kRhUserCapacity) == reg::kUserCapacity &&
                      reg::get<uint32_t>(h + reg::kRhEntrySize) == reg::kEntrySize && reg::get<uint32_t>(h + reg::kRhMetaMax) == reg::kMetaMax &&
                      reg::get<uint32_t>(h + reg::kRhEventSize) == reg::kEventSize && reg::get<uint32_t>(h + reg::kRhGroupSize) == reg::kGroupSize &&
                      g.size == seg_.size();
    if (!fits) {
      throw Error("ERR_LIBIPC_INCOMPATIBLE", "segment libipc.registry." + domain_ + " is corrupt: its registry header does not match layout version 2; " +
                                                 "stop the processes using it, remove it from /dev/shm and retry");
    }
    g_ = g;
  }

  // A short critical section under the segment lock (bounded); watchers are woken after changes.
  template <typename Fn>
  auto locked(Fn&& fn) -> decltype(fn()) {
    check_open();
    RobustMutex lock = seg_.lock();
    const LockResult r = lock.lock(opts_.lock_timeout_ms * 1000000LL);
    if (r == LockResult::TimedOut) {
      throw Error("ERR_LIBIPC_TIMEOUT", "registry '" + domain_ + "': its lock was held for over " + std::to_string(opts_.lock_timeout_ms) +
                                            " ms (pid " + std::to_string(lock.owner()) + ", stopped?); retry later");
    }
    if (r == LockResult::AcquiredOwnerDied) repair();
    struct Unlock {
      RobustMutex& l;
      Registry* self;
      ~Unlock() {
        self->publish(false);
        l.unlock();
      }
    } unlock{lock, this};
    return fn();
  }

  // The previous lock holder died holding it: drop what it left half-written, wake watchers it may not have.
  void repair() {
    for (uint32_t slot = 0; slot < g_.capacity; slot++) {
      if (reg::word32(entry(slot) + reg::kEState)->load() == reg::kWriting) reg::word32(entry(slot) + reg::kEState)->store(reg::kFree);
    }
    for (uint32_t i = 0; i < g_.group_capacity; i++) {
      if (reg::word32(group_at(i) + reg::kGState)->load() == reg::kWriting) reg::word32(group_at(i) + reg::kGState)->store(reg::kFree);
    }
    reap_users();
    publish(true);
  }

  void reap_users() {
    IdentityTable users(seg_.base() + g_.users, reg::kUserCapacity);
    for (uint32_t row : users.used()) {
      if (!users.is_live(row)) users.remove(row);
    }
  }

  bool name_is(const uint8_t* field, const std::string& name) const {
    return name.size() < reg::kNameField && memcmp(field, name.data(), name.size()) == 0 && field[name.size()] == 0;
  }

  // The live slot of `name`, or -1; *free gets a reusable slot (none whose lease a live thread holds).
  int find_slot(const std::string& name, int* free = nullptr) const {
    for (uint32_t slot = 0; slot < g_.capacity; slot++) {
      if (reg::word32(entry(slot) + reg::kEState)->load() == reg::kLive) {
        if (name_is(entry(slot) + reg::kEName, name)) return static_cast<int>(slot);
      } else if (free && *free < 0 && Lease(entry(slot) + reg::kELease).state() != LeaseState::Held) {
        *free = static_cast<int>(slot);
      }
    }
    return -1;
  }

  // The lease first (the kernel breaks it as its thread starts to die), then the process identity.
  Liveness liveness(uint32_t slot) const {
    const uint8_t* e = entry(slot);
    const uint32_t pid = reg::get<uint32_t>(e + reg::kEPid);
    if (pid == 0 || pid > kMutexPidMask) return Dead;  // not a pid: a corrupt entry is a dead one
    const LeaseState lease = Lease(const_cast<uint8_t*>(e) + reg::kELease).state();
    if (lease == LeaseState::OwnerDied) return Dead;
    if (lease == LeaseState::Held) return Leased;
    return is_alive(static_cast<int>(pid), reg::get<uint64_t>(e + reg::kEStart)) ? Alive : Dead;
  }

  // Frees the first live entry of a dead process; returns its slot, or -1.
  int collect_dead() {
    for (uint32_t slot = 0; slot < g_.capacity; slot++) {
      if (reg::word32(entry(slot) + reg::kEState)->load() != reg::kLive || liveness(slot) != Dead) continue;
      remove(slot, reg::kRemovedDead);
      return static_cast<int>(slot);
    }
    return -1;
  }

  // Frees a slot and records why; a lease this thread holds is released.
  void remove(uint32_t slot, reg::EventType type) {
    emit(type, slot);
    reg::word32(entry(slot) + reg::kEState)->store(reg::kFree);
    Lease(entry(slot) + reg::kELease).release();
  }

  void emit(reg::EventType type, uint32_t slot) {
    const uint32_t seq = seq_word()->load();
    uint8_t* at = seg_.base() + g_.ring + size_t(seq % g_.ring_capacity) * reg::kEventSize;
    memcpy(at + 8, entry(slot), reg::kEntrySize);
    reg::put<uint32_t>(at, seq);
    reg::put<uint32_t>(at + 4, type);
    seq_word()->store(seq + 1);  // the event exists once the sequence word says so
    changed_ = true;
  }

  // Wakes watchers after changes (only when some sleep, unless forced after a repair).
  void publish(bool force) {
    if (!changed_ && !force) return;
    changed_ = false;
    if (force || reg::word32(seg_.base() + kHeaderSize + reg::kRhWaiters)->load() != 0) futex_wake(reinterpret_cast<const uint32_t*>(seq_word()));
  }

  bool stamp(uint32_t slot, uint64_t generation) {
    if (slot >= g_.capacity) return false;
    auto* word = u64(entry(slot) + reg::kEHeartbeat);
    const uint64_t next = (generation << 48) | (static_cast<uint64_t>(now_ms()) & reg::kHeartbeatMsMask);
    for (;;) {
      uint64_t old = word->load();
      if ((old >> 48) != generation || reg::word32(entry(slot) + reg::kEState)->load() != reg::kLive) return false;
      if (word->compare_exchange_strong(old, next)) return true;
    }
  }

  int find_group(const std::string& group, int* free) const {
    for (uint32_t i = 0; i < g_.group_capacity; i++) {
      if (reg::word32(group_at(i) + reg::kGState)->load() == reg::kLive) {
        if (name_is(group_at(i) + reg::kGName, group)) return static_cast<int>(i);
      } else if (*free < 0) {
        *free = static_cast<int>(i);
      }
    }
    return -1;
  }

  std::string domain_;
  RegistryOptions opts_;
  Segment seg_;
  reg::Geometry g_;
  bool open_ = false;
  bool changed_ = false;
  uint32_t user_row_ = 0;
  std::map<std::string, Own> own_;
};

}  // namespace libipc
