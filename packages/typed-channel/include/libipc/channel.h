// libipc::Channel for C++: a handle on the same shared-memory channel a Node `Channel` opens (same name, same
// segment, same doorbells), header-only, needing only `g++ -std=c++17 -pthread` and the include dirs of
// @libipc/shm and @libipc/typed-channel. A C++ sender wakes a sleeping Node receiver and the reverse; a C++
// process killed at any instant never wedges a Node peer (its send lock is taken over by identity, its row is
// reaped, a half-sent message is dropped by receivers). The layout and protocol are docs/channel-layout.md.
//
// A handle is used by one thread at a time. Errors are libipc::Error with the codes of the TypeScript API.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libipc/channel_layout.h"
#include "libipc/channel_reader.h"
#include "libipc/doorbell_fifo.h"
#include "libipc/error.h"
#include "libipc/futex.h"
#include "libipc/identity_table.h"
#include "libipc/ring.h"
#include "libipc/robust_mutex.h"
#include "libipc/segment_header.h"

namespace libipc {

enum class Mode { Sender, Receiver };
enum class OnFull { Wait, Lag };

// A channel's options, as in TypeScript. Geometry is fixed by whoever creates the channel: a handle that joins
// takes it as it is, and any geometry option given explicitly here must match it (else ERR_LIBIPC_INCOMPATIBLE).
struct ChannelOptions {
  Mode mode = Mode::Sender;               // Receiver: receives every message sent after it connected (and may send)
  std::optional<uint32_t> capacity;       // slots in the ring (default 512)
  std::optional<uint32_t> slot_size;      // bytes per slot incl. its 32-byte header, a multiple of 64 (default 4160)
  std::optional<uint32_t> max_message;    // largest message in bytes (default 16 MiB; in 'lag' mode what the ring holds)
  std::optional<OnFull> on_full;          // Wait (default): senders wait for room; Lag: overwrite the oldest
  uint32_t spin_us = 50;                  // how long recv spins for an active sender before it sleeps
  std::vector<uint32_t> allow_users;      // other uids whose channel segment may be joined
};

class Channel {
 public:
  using Bytes = std::vector<uint8_t>;

  // Opens (creating when absent) the channel `name`, like `new Channel(name, opts)` in TypeScript.
  explicit Channel(const std::string& name, const ChannelOptions& opts = {}) : name_(name), opts_(opts) { open(); }
  ~Channel() { close(); }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  const std::string& name() const { return name_; }
  uint32_t capacity() const { return g_.capacity; }
  uint32_t slot_size() const { return g_.slot_size; }
  uint32_t max_message() const { return g_.max_message; }
  OnFull on_full() const { return g_.on_full == chan::kOnFullLag ? OnFull::Lag : OnFull::Wait; }
  bool is_open() const { return open_; }
  // Receivers asleep on their doorbell now (for tools and tests: a sender rings them on its next message).
  uint32_t sleeping_receivers() const { return open_ ? ring_.control()->recv_sleepers.load() : 0; }

  // Sends one message to every receiver connected now. false: nobody is receiving (nothing was sent). Waits
  // for room while the slowest receiver is behind ('wait' mode) up to timeout_ms (< 0: as long as it takes),
  // then ERR_LIBIPC_TIMEOUT. A message larger than the ring is streamed in fragments.
  bool send(const void* data, size_t len, int64_t timeout_ms = -1) {
    check_sender();
    check_size(len);
    maybe_reap();
    if (!has_receiver()) return false;
    SendLock lock(this, deadline_of(timeout_ms), timeout_ms);
    const bool sent = send_locked(bytes_of(data), len, lock.deadline, timeout_ms, true);
    return sent;
  }
  bool send(std::string_view s, int64_t timeout_ms = -1) { return send(s.data(), s.size(), timeout_ms); }
  bool send(const Bytes& b, int64_t timeout_ms = -1) { return send(b.data(), b.size(), timeout_ms); }

  // Sends only if it can go out at once (room, no other sender mid-message).
  bool try_send(const void* data, size_t len) {
    check_sender();
    check_size(len);
    maybe_reap();
    if (!has_receiver() || ring_.fragments(len) > g_.capacity) return false;
    RobustMutex lock(&ring_.control()->send_lock);
    if (lock.try_lock() == LockResult::Busy) return false;
    size_t pos = 0;
    const bool sent = ring_.write(bytes_of(data), len, &pos, tag_, true, &cached_min_) > 0;
    lock.unlock();
    if (sent) wake_receivers();
    return sent;
  }

  // Sends many messages under one hold of the send lock, with one wake-up of sleeping receivers for the batch.
  // Returns how many were sent (a prefix; 0 when nobody is receiving). Each is published whole on its own.
  size_t send_many(const std::vector<std::string_view>& messages, int64_t timeout_ms = -1) {
    check_sender();
    for (const auto& m : messages) check_size(m.size());
    maybe_reap();
    if (messages.empty() || !has_receiver()) return 0;
    SendLock lock(this, deadline_of(timeout_ms), timeout_ms);
    size_t sent = 0;
    for (const auto& m : messages) {
      if (!send_locked(bytes_of(m.data()), m.size(), lock.deadline, timeout_ms, false)) break;
      sent++;
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);  // the batch published with release stores
    wake_receivers();
    return sent;
  }

  // The next message; std::nullopt when none came within timeout_ms (< 0: wait as long as it takes). Throws
  // LaggedError once after this receiver fell behind in 'lag' mode (the next recv goes on with the oldest held).
  std::optional<Bytes> recv(int64_t timeout_ms = -1) {
    check_receiver();
    const int64_t deadline = deadline_of(timeout_ms);
    Bytes out;
    if (take(&out, opts_.spin_us)) return out;
    for (;;) {
      const int64_t left = deadline < 0 ? 1000 : (deadline - monotonic_ns()) / 1000000;
      if (deadline >= 0 && left <= 0) return std::nullopt;
      // Announce the sleep before the last look, so a sender either sees us armed or we see its message.
      arm_bell();
      if (!ring_.pending(row_)) {
        struct pollfd p{bell_fd_, POLLIN, 0};
        // The slice bounds a lost ring (a sender that could not open our FIFO): we look again at least every second.
        if (poll(&p, 1, static_cast<int>(std::min<int64_t>(std::max<int64_t>(left, 1), 1000))) > 0) chan::drain_doorbell(bell_fd_);
      }
      disarm_bell();
      if (take(&out, 0)) return out;
    }
  }
  // The next message if one is here now.
  std::optional<Bytes> try_recv() {
    check_receiver();
    Bytes out;
    if (take(&out, 0)) return out;
    return std::nullopt;
  }

  // Up to `max` messages: waits like recv for the first, then takes what else is here without waiting. A lag
  // ends the batch; the next call throws it.
  std::vector<Bytes> recv_many(size_t max, int64_t timeout_ms = -1) {
    std::vector<Bytes> batch;
    if (max == 0) return batch;
    std::optional<Bytes> first = recv(timeout_ms);
    if (!first) return batch;
    batch.push_back(std::move(*first));
    Bytes out;
    while (batch.size() < max) {
      uint64_t missed = 0;
      chan::Reader::Step st = reader_.step(&out, &missed);
      if (st == chan::Reader::Step::Nothing) break;
      if (st == chan::Reader::Step::Lagged) {
        pending_lag_ = missed;
        break;
      }
      batch.push_back(std::move(out));
      out = Bytes();
    }
    return batch;
  }

  // Live receivers connected now (this handle included when it is one).
  uint32_t receivers() const {
    if (!open_) return 0;
    uint32_t n = 0;
    for (uint32_t row : table().used()) n += ring_.receiver(row)->active.load() != 0 && table().is_live(row);
    return n;
  }

  // Waits until at least `count` receivers are connected; false on timeout.
  bool wait_for_receivers(uint32_t count, int64_t timeout_ms = -1) {
    check_open();
    const int64_t deadline = deadline_of(timeout_ms);
    auto* word = &ring_.control()->membership;
    for (;;) {
      const uint32_t observed = word->load();
      if (receivers() >= count) return true;
      const int64_t left = deadline < 0 ? INT64_MAX : deadline - monotonic_ns();
      if (left <= 0) return false;
      futex_wait(reinterpret_cast<const uint32_t*>(word), observed, std::min<int64_t>(left, 1000 * 1000000LL));
    }
  }

  // Leaves the channel: a receiver stops counting at once; the last handle removes the segment. Idempotent.
  void close() {
    if (!open_) return;
    open_ = false;
    if (receives_) {
      ring_.deactivate(row_);
      disarm_bell();
      ::close(bell_fd_);
      bell_fd_ = -1;
      unlink((chan::bell_prefix(name_) + std::to_string(row_)).c_str());
    }
    RobustMutex lock = seg_.lock();
    // Bounded: a stopped lock holder must not freeze us (our row is then reaped by the next user).
    if (lock.lock(kLockMs * 1000000LL) != LockResult::TimedOut) {
      table().remove(row_);
      reap_locked();
      bump_membership();
      if (table().used().empty()) seg_.retire();
      lock.unlock();
    }
    bells_.reset();
    seg_ = Segment();
  }

 private:
  static constexpr int64_t kLockMs = 2000;           // structure changes hold the segment lock for microseconds
  static constexpr int64_t kFirstWaitMs = 20;         // a sender waiting for room re-checks this often
  static constexpr uint32_t kRoleSender = 1, kRoleReceiver = 2, kSleepSend = 2;

  // The send lock for one send or batch, released on every way out.
  struct SendLock {
    SendLock(Channel* ch, int64_t deadline_ns, int64_t timeout_ms) : lock(&ch->ring_.control()->send_lock), deadline(deadline_ns) {
      if (lock.try_lock() != LockResult::Busy) return;
      const int64_t left = deadline_ns < 0 ? -1 : std::max<int64_t>(0, deadline_ns - monotonic_ns());
      if (lock.lock(left) == LockResult::TimedOut) {
        throw Error("ERR_LIBIPC_TIMEOUT", "channel " + ch->name_ + ": could not send within " + std::to_string(timeout_ms) +
                                              " ms: another sender (pid " + std::to_string(lock.owner()) +
                                              ") is mid-message on a full ring; retry later or raise the timeout");
      }
    }
    ~SendLock() { lock.unlock(); }
    RobustMutex lock;
    int64_t deadline;
  };

  static int64_t deadline_of(int64_t timeout_ms) { return timeout_ms < 0 ? -1 : monotonic_ns() + timeout_ms * 1000000LL; }
  static const uint8_t* bytes_of(const void* p) {
    static const uint8_t empty = 0;
    return p != nullptr ? static_cast<const uint8_t*>(p) : &empty;
  }

  void open() {
    validate_name(name_, "channel name");
    receives_ = opts_.mode == Mode::Receiver;
    const OnFull on_full = opts_.on_full.value_or(OnFull::Wait);
    const uint32_t capacity = opts_.capacity.value_or(512), slot_size = opts_.slot_size.value_or(4160);
    if (capacity < 1 || capacity > (1u << 20)) invalid("capacity must be from 1 to 1048576");
    if (slot_size < 64 || slot_size > (1u << 30) || slot_size % 64 != 0) invalid("slot_size must be a multiple of 64 from 64 to 2^30");
    const uint64_t ring_payload = uint64_t(capacity) * (slot_size - chan::kSlotHeaderSize);
    const uint64_t default_max = on_full == OnFull::Lag ? std::min<uint64_t>(16u << 20, ring_payload) : (16u << 20);
    const uint64_t max_message = opts_.max_message ? *opts_.max_message : default_max;
    if (max_message > 0x7fffffffu) invalid("max_message must be below 2^31");
    if (on_full == OnFull::Lag && max_message > ring_payload) invalid("in 'lag' mode a message must fit in the ring; raise capacity or slot_size, or lower max_message");
    SegmentSpec spec;
    spec.kind = "chan";
    spec.name = name_;
    spec.layout_version = chan::kLayoutVersion;
    spec.size = chan::segment_size(capacity, slot_size);
    spec.allow_users = opts_.allow_users;
    spec.init = [&](uint8_t* base) {
      chan::Ring::init(base, chan::kTypeChannel, on_full == OnFull::Lag ? chan::kOnFullLag : chan::kOnFullWait, capacity, slot_size,
                       static_cast<uint32_t>(max_message));
    };
    for (int attempt = 0;; attempt++) {
      seg_ = Segment::attach(spec);
      check_geometry();
      RobustMutex lock = seg_.lock();
      if (lock.lock(kLockMs * 1000000LL) == LockResult::TimedOut) {
        throw Error("ERR_LIBIPC_TIMEOUT", "channel " + name_ + ": its segment lock is held by a stopped process; retry later");
      }
      if (seg_.header()->state.load() == kStateRetired) {  // its last user is removing it: join the one that replaces it
        lock.unlock();
        if (attempt > 50) throw Error("ERR_LIBIPC_TIMEOUT", "channel " + name_ + " keeps being removed while we attach; retry later");
        continue;
      }
      try {
        join_locked();
      } catch (...) {
        if (table().used().empty()) seg_.retire();
        lock.unlock();
        throw;
      }
      lock.unlock();
      return;
    }
  }

  // The segment's geometry, validated once against its size and copied out: never re-read from shared memory.
  void check_geometry() {
    if (!chan::Ring::read_geometry(seg_.base(), seg_.size(), &g_)) {
      throw Error("ERR_LIBIPC_INCOMPATIBLE", "segment libipc.chan." + name_ + " is not a valid channel (corrupt control block); remove it");
    }
    if (g_.type != chan::kTypeChannel) throw Error("ERR_LIBIPC_INCOMPATIBLE", "libipc.chan." + name_ + " is a Route, not a Channel");
    auto differs = [&](const char* key, const auto& given, uint64_t have) {
      if (given && static_cast<uint64_t>(*given) != have) {
        throw Error("ERR_LIBIPC_INCOMPATIBLE", "Channel " + name_ + " exists with " + key + " " + std::to_string(have) + ", not " +
                                                   std::to_string(static_cast<uint64_t>(*given)) + "; omit " + key + " to join it as it is");
      }
    };
    differs("capacity", opts_.capacity, g_.capacity);
    differs("slot_size", opts_.slot_size, g_.slot_size);
    differs("max_message", opts_.max_message, g_.max_message);
    if (opts_.on_full && (*opts_.on_full == OnFull::Lag) != (g_.on_full == chan::kOnFullLag)) {
      throw Error("ERR_LIBIPC_INCOMPATIBLE", "Channel " + name_ + " exists with another on_full mode; omit on_full to join it as it is");
    }
    ring_ = chan::Ring(seg_.base(), seg_.size(), g_);
  }

  // Takes a row (reaping the dead first) and, as a receiver, its doorbell; the caller holds the segment lock.
  void join_locked() {
    reap_locked();
    const int row = table().add(receives_ ? kRoleReceiver : kRoleSender);
    if (row < 0) throw Error("ERR_LIBIPC_REGISTRY_FULL", "channel " + name_ + " already has 128 handles attached; close some first");
    row_ = static_cast<uint32_t>(row);
    tag_ = row_ + 1;
    if (receives_) {
      bell_fd_ = chan::create_doorbell((chan::bell_prefix(name_) + std::to_string(row_)).c_str());
      if (bell_fd_ < 0) {
        const int err = errno;
        table().remove(row_);
        throw system_error("doorbell of channel " + name_, err);
      }
      reader_ = chan::Reader(&ring_, row_);
      reader_.reset(ring_.control()->next_msg.load(std::memory_order_acquire));
      ring_.activate(row_);
    }
    bells_ = std::make_unique<chan::BellRinger>(chan::bell_prefix(name_));
    open_ = true;
    bump_membership();
  }

  IdentityTable table() const { return IdentityTable(seg_.base() + chan::kIdentitiesOffset, chan::kMaxHandles); }

  void bump_membership() {
    auto* word = &ring_.control()->membership;
    word->fetch_add(1);
    futex_wake(reinterpret_cast<const uint32_t*>(word));
  }

  // Frees the rows of processes that died without closing (by identity); the caller holds the segment lock.
  void reap_locked() {
    chan::Control* c = ring_.control();
    bool changed = false;
    IdentityTable t = table();
    for (uint32_t row : t.used()) {
      if (t.is_live(row)) continue;
      chan::Receiver* r = ring_.receiver(row);
      if (r->armed.exchange(0) == 1) c->recv_sleepers.fetch_sub(1);
      if (r->sleeping.exchange(0) & kSleepSend) c->send_sleepers.fetch_sub(1);
      ring_.deactivate(row);
      unlink((chan::bell_prefix(name_) + std::to_string(row)).c_str());
      t.remove(row);
      changed = true;
    }
    if (changed) bump_membership();
  }

  void reap() {
    RobustMutex lock = seg_.lock();
    if (lock.lock(kLockMs * 1000000LL) == LockResult::TimedOut) return;  // a stopped lock holder: later
    reap_locked();
    lock.unlock();
  }

  // A cheap liveness look at the rows now and then; the lock is taken only when someone died.
  void maybe_reap() {
    if (++sends_since_reap_ < 64) return;
    sends_since_reap_ = 0;
    const int64_t now = monotonic_ns();
    if (now - last_reap_ < 500 * 1000000LL) return;
    last_reap_ = now;
    IdentityTable t = table();
    for (uint32_t row : t.used()) {
      if (!t.is_live(row)) return reap();
    }
  }

  bool has_receiver() const {
    return ring_.control()->receiver_count.load(std::memory_order_acquire) > (receives_ ? 1u : 0u);
  }

  // Writes one message (the caller holds the send lock), waiting for room; false when nobody receives.
  bool send_locked(const uint8_t* data, size_t len, int64_t deadline, int64_t timeout_ms, bool sync) {
    const uint64_t need = ring_.fragments(len);
    const bool stream = need > g_.capacity;
    size_t pos = 0;
    int64_t stalled_since = monotonic_ns();
    for (;;) {
      check_open();
      if (pos == 0 && !has_receiver()) return false;
      if (!stream) {
        if (ring_.write(data, len, &pos, tag_, true, &cached_min_, sync) > 0) {
          if (sync) wake_receivers();
          return true;
        }
      } else {
        const size_t before = pos;
        if (ring_.write(data, len, &pos, tag_, false, &cached_min_) > 0) wake_receivers();
        if (pos == len) return true;
        if (pos != before) stalled_since = monotonic_ns();
      }
      if (!sync) {  // a batch: receivers asleep would never make the room we wait for
        std::atomic_thread_fence(std::memory_order_seq_cst);
        wake_receivers();
      }
      wait_for_room(stream ? 1 : need, deadline, timeout_ms, stalled_since);
    }
  }

  // Sleeps until the slowest receiver makes room, dies (then it is reaped), or the deadline passes.
  void wait_for_room(uint64_t need, int64_t deadline, int64_t timeout_ms, int64_t stalled_since) {
    chan::Control* c = ring_.control();
    int slowest = -1;
    ring_.min_cursor(&slowest);
    if (slowest >= 0 && !table().is_live(static_cast<uint32_t>(slowest))) return reap();
    // Wait for a batch of room (a quarter of the ring, or what the message needs), not for every freed slot.
    const uint64_t want = std::min<uint64_t>(g_.capacity, std::max<uint64_t>(need, (g_.capacity + 3) / 4));
    ring_.set_room_target(want);
    chan::Receiver* me = ring_.receiver(row_);
    me->sleeping.fetch_or(kSleepSend);
    c->send_sleepers.fetch_add(1);
    const uint32_t observed = c->read_progress.load();
    const int64_t now = monotonic_ns();
    const bool stalled = now - stalled_since >= kFirstWaitMs * 1000000LL;
    bool ready = ring_.free_slots(want, &cached_min_) >= want || (stalled && ring_.free_slots(need, &cached_min_) >= need);
    if (!ready && deadline >= 0 && deadline <= now) {
      ready = ring_.free_slots(need, &cached_min_) >= need;
      if (!ready) {
        c->send_sleepers.fetch_sub(1);
        me->sleeping.fetch_and(~kSleepSend);
        const uint32_t who = slowest >= 0 ? table().pid(static_cast<uint32_t>(slowest)) : 0;
        throw Error("ERR_LIBIPC_TIMEOUT", "channel " + name_ + " is full: the slowest receiver (pid " + std::to_string(who) +
                                              ") made no room within " + std::to_string(timeout_ms) +
                                              " ms; it may be stopped or slow. Retry, raise the timeout, or use OnFull::Lag");
      }
    }
    if (!ready) {
      const int64_t slice = std::min<int64_t>(deadline < 0 ? INT64_MAX : deadline - now, kFirstWaitMs * 1000000LL);
      futex_wait(reinterpret_cast<const uint32_t*>(&c->read_progress), observed, slice);
    }
    c->send_sleepers.fetch_sub(1);
    me->sleeping.fetch_and(~kSleepSend);
  }

  void wake_receivers() {
    ring_.wake_receivers([this](uint32_t row, uint32_t generation) { bells_->ring(row, generation); });
  }

  // One message (spinning up to spin_us for an active sender); throws a pending lag.
  bool take(Bytes* out, uint32_t spin_us) {
    if (pending_lag_ != 0) {
      const uint64_t missed = pending_lag_;
      pending_lag_ = 0;
      throw LaggedError(missed);
    }
    const int64_t deadline = monotonic_ns() + int64_t(spin_us) * 1000;
    for (;;) {
      uint64_t missed = 0;
      chan::Reader::Step st = reader_.step(out, &missed);
      if (st == chan::Reader::Step::Message) return true;
      if (st == chan::Reader::Step::Lagged) throw LaggedError(missed);
      if (spin_us == 0 || monotonic_ns() >= deadline) return false;
      chan::cpu_relax();
    }
  }

  void arm_bell() {
    ring_.receiver(row_)->armed.store(1, std::memory_order_seq_cst);
    ring_.control()->recv_sleepers.fetch_add(1, std::memory_order_seq_cst);
  }
  // Disarms unless a sender already did: exactly one of us uncounts it.
  void disarm_bell() {
    if (ring_.receiver(row_)->armed.exchange(0) == 1) ring_.control()->recv_sleepers.fetch_sub(1);
  }

  void check_open() const {
    if (!open_) throw Error("ERR_LIBIPC_CLOSED", "channel " + name_ + " is closed; open a new handle to use it");
  }
  void check_sender() const { check_open(); }
  void check_receiver() const {
    check_open();
    if (!receives_) throw Error("ERR_LIBIPC_ILLEGAL_STATE", "channel " + name_ + ": this handle was opened as a sender; open one with Mode::Receiver to receive");
  }
  void check_size(size_t len) const {
    if (len > g_.max_message) {
      throw Error("ERR_LIBIPC_TOO_LARGE", "message of " + std::to_string(len) + " bytes is larger than channel " + name_ +
                                              "'s max_message (" + std::to_string(g_.max_message) + "); split it");
    }
  }
  [[noreturn]] void invalid(const std::string& why) const { throw Error("ERR_LIBIPC_INVALID_ARGUMENT", "Channel options: " + why); }

  std::string name_;
  ChannelOptions opts_;
  Segment seg_;
  chan::Geometry g_;
  chan::Ring ring_{nullptr, 0, chan::Geometry{}};
  chan::Reader reader_{&ring_, 0};
  std::unique_ptr<chan::BellRinger> bells_;
  bool open_ = false;
  bool receives_ = false;
  uint32_t row_ = 0;
  uint32_t tag_ = 0;
  int bell_fd_ = -1;
  uint64_t cached_min_ = 0;
  uint64_t pending_lag_ = 0;
  uint32_t sends_since_reap_ = 0;
  int64_t last_reap_ = 0;
};

}  // namespace libipc
