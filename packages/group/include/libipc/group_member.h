// libipc::GroupMember for C++: a process started by a Node `ServiceGroup` joins it exactly like the Node
// `GroupMember` (packages/group/src/group-member.ts): it reads the environment contract the host sets, registers
// `<service>.<id>` with a death lease, stamps its entry on its own thread, follows the group record (only the
// primary of the current epoch is primary: a fenced or replaced member reads that it is not) and exits with its host:
// from the host's death lease (broken by the kernel as the host starts to die) or its pidfd (once it has exited).
// Header-only, plain `g++ -std=c++17 -pthread` with the include dirs of @libipc/shm, @libipc/registry and @libipc/group.
//
// Crash safety is the registry's: the lease breaks the instant this process dies (the host fails over at once), the
// heartbeat is one lock-free compare-and-swap, and every locked call is bounded (a stopped peer holding the lock
// costs a skipped beat, never a wedged thread).
#pragma once

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "libipc/error.h"
#include "libipc/futex.h"
#include "libipc/lease.h"
#include "libipc/process_identity.h"
#include "libipc/registry.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace libipc {

enum class MemberRole { Standby, Primary };

inline const char* role_name(MemberRole r) { return r == MemberRole::Primary ? "primary" : "standby"; }

// What a started instance learns from its host (the environment contract of @libipc/process, environment.ts).
struct InstanceContext {
  std::string domain, service;
  uint32_t id = 0;
  std::optional<ProcessIdentity> parent;  // the host: pid + start time
};

namespace group {

inline const char* const kEnvDomain = "LIBIPC_DOMAIN";
inline const char* const kEnvService = "LIBIPC_SERVICE";
inline const char* const kEnvInstanceId = "LIBIPC_INSTANCE_ID";
inline const char* const kEnvParentPid = "LIBIPC_PARENT_PID";
inline const char* const kEnvParentStart = "LIBIPC_PARENT_START";
inline const char* const kEnvReadyFd = "LIBIPC_READY_FD";

inline bool all_digits(const std::string& s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; }

// The instance name of a started service: `<service>.<id>`.
inline std::string instance_name(const std::string& service, uint32_t id) {
  validate_name(service, "service name");
  return service + "." + std::to_string(id);
}

// Pure: the contract read from `env` and `args` (the last argument is the id when LIBIPC_INSTANCE_ID is unset);
// `domain`/`service` are used when run by hand. Same rules and codes as Node's readInstanceContext.
inline InstanceContext read_instance_context(const std::map<std::string, std::string>& env, const std::vector<std::string>& args,
                                             const std::optional<std::string>& domain = std::nullopt,
                                             const std::optional<std::string>& service = std::nullopt) {
  auto get = [&](const char* key) -> std::optional<std::string> {
    auto it = env.find(key);
    return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  InstanceContext ctx;
  const auto d = get(kEnvDomain) ? get(kEnvDomain) : domain;
  const auto s = get(kEnvService) ? get(kEnvService) : service;
  if (!d || !s) {
    throw Error("ERR_LIBIPC_INVALID_ARGUMENT", std::string(kEnvDomain) + " and " + kEnvService +
                                                   " are not set: start this process from a ServiceGroup, or set GroupMemberOptions "
                                                   "domain and service when running it by hand");
  }
  validate_name(*d, "domain");
  validate_name(*s, "service name");
  const auto raw_id = get(kEnvInstanceId) ? get(kEnvInstanceId) : (args.empty() ? std::nullopt : std::optional<std::string>(args.back()));
  // Node's rule: a whole number >= 0 (Number() also takes the canonical digits only here: no sign, no exponent).
  if (!raw_id || !all_digits(*raw_id) || raw_id->size() > 9) {
    throw Error("ERR_LIBIPC_INVALID_ARGUMENT", std::string("instance id must be a whole number >= 0 (") + kEnvInstanceId +
                                                   " or the last argument), got " + (raw_id ? "\"" + raw_id->substr(0, 40) + "\"" : "nothing"));
  }
  ctx.domain = *d;
  ctx.service = *s;
  ctx.id = static_cast<uint32_t>(std::stoul(*raw_id));
  validate_name(instance_name(ctx.service, ctx.id), "instance name");
  const auto ppid = get(kEnvParentPid), pstart = get(kEnvParentStart);
  if (ppid && pstart && all_digits(*ppid) && ppid->size() <= 9 && all_digits(*pstart) && pstart->size() <= 19) {
    const int pid = std::stoi(*ppid);
    if (pid > 0) ctx.parent = ProcessIdentity{pid, std::stoull(*pstart)};
  }
  return ctx;
}

// Pure: the role a group record gives `name` (fencing: only the current epoch's primary is primary).
inline MemberRole role_in(const GroupState& state, const std::string& name) {
  return state.primary && *state.primary == name ? MemberRole::Primary : MemberRole::Standby;
}

// This process's environment and arguments (from /proc/self/cmdline: no argv needs passing in).
inline std::map<std::string, std::string> process_env() {
  std::map<std::string, std::string> env;
  for (const char* key : {kEnvDomain, kEnvService, kEnvInstanceId, kEnvParentPid, kEnvParentStart}) {
    if (const char* v = getenv(key)) env[key] = v;
  }
  return env;
}
inline std::vector<std::string> process_args() {
  std::vector<std::string> args;
  FILE* f = fopen("/proc/self/cmdline", "re");
  if (f == nullptr) return args;
  std::string cur;
  for (int ch; (ch = fgetc(f)) != EOF;) {
    if (ch == 0) {
      args.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(ch));
    }
  }
  fclose(f);
  return args;
}

// Tells the host this instance is ready: READY on LIBIPC_READY_FD (a pipe or socket only), then closes it.
// A no-op when the variable is unset; best effort when the host stopped listening.
inline void ready() {
  const char* value = getenv(kEnvReadyFd);
  if (value == nullptr) return;
  const std::string fd_text = value;
  unsetenv(kEnvReadyFd);  // our own children must not write to it
  if (!all_digits(fd_text) || fd_text.size() > 9) return;
  const int fd = std::stoi(fd_text);
  struct stat st;
  if (fstat(fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) return;
  const char line[] = "READY\n";
  ssize_t n;
  do n = write(fd, line, sizeof line - 1);
  while (n < 0 && errno == EINTR);
  close(fd);
}

}  // namespace group

struct GroupMemberOptions {
  std::string control_channel, reply_channel;
  // How often the member stamps its registry entry; the host's heartbeatTimeoutMs must be larger.
  int heartbeat_ms = 100;
  // Exit (code 0, after leaving) when the host dies; on_host_exit is called either way.
  bool exit_with_host = true;
  // Run by hand (no environment contract): the domain, service and id to use.
  std::optional<std::string> domain, service;
  std::optional<uint32_t> id;
  std::optional<std::string> meta;
  // Called on the member's threads (never call leave() from them): every change of role; the host's death, once
  // (from its death lease or its pidfd); a registry error (retried on the next beat).
  std::function<void(MemberRole role, uint32_t epoch)> on_role;
  std::function<void()> on_host_exit;
  std::function<void(const Error&)> on_error;
};

class GroupMember {
 public:
  // Registers this process as `<service>.<id>` (death lease held by the calling thread: call it from a thread that
  // lives as long as the membership, e.g. main) and starts the member's thread. ERR_LIBIPC_ILLEGAL_STATE when a
  // live process already holds the name.
  static std::unique_ptr<GroupMember> join(const GroupMemberOptions& opts) { return std::unique_ptr<GroupMember>(new GroupMember(opts)); }

  ~GroupMember() { leave(); }
  GroupMember(const GroupMember&) = delete;
  GroupMember& operator=(const GroupMember&) = delete;

  uint32_t id() const { return ctx_.id; }
  const std::string& name() const { return name_; }
  const std::string& domain() const { return ctx_.domain; }
  const std::string& service() const { return ctx_.service; }

  // The role and epoch of the group record this member last read (every beat, and by is_primary()).
  MemberRole role() const { return role_.load(); }
  uint32_t epoch() const { return epoch_.load(); }

  // True only for the primary of the current epoch: read from the group record now, not cached. false after
  // leave(), and when the record cannot be read in time (a stopped process holds the registry lock).
  bool is_primary() {
    std::lock_guard<std::mutex> g(mu_);
    if (left_) return false;
    try {
      return refresh() == MemberRole::Primary;
    } catch (const Error&) {
      return false;
    }
  }

  // Tells the host this instance is ready (READY on LIBIPC_READY_FD; a no-op when run by hand).
  void ready() { group::ready(); }

  // Stops the member's thread, unregisters and closes the registry. Idempotent; not from a callback.
  void leave() {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (left_) return;
      left_ = true;
    }
    uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof one);
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    stop_lease_watch();
    std::lock_guard<std::mutex> g(mu_);
    try {
      registry_->unregister(name_);
    } catch (const Error&) {
      // A stopped lock holder: the entry goes with our lease when this process exits.
    }
    registry_->close();
    close_fds();
  }

 private:
  explicit GroupMember(const GroupMemberOptions& opts) : opts_(opts) {
    if (opts.heartbeat_ms < 1 || opts.heartbeat_ms > 3600000) {
      throw Error("ERR_LIBIPC_INVALID_ARGUMENT", "heartbeat_ms must be from 1 to 3600000 (default 100), got " + std::to_string(opts.heartbeat_ms));
    }
    if (opts.meta && opts.meta->size() > 1024) throw Error("ERR_LIBIPC_INVALID_ARGUMENT", "meta must be at most 1024 bytes");
    const std::vector<std::string> args = opts.id ? std::vector<std::string>{std::to_string(*opts.id)} : group::process_args();
    ctx_ = group::read_instance_context(group::process_env(), args, opts.domain, opts.service);
    name_ = group::instance_name(ctx_.service, ctx_.id);
    registry_.reset(new Registry(ctx_.domain));
    if (!registry_->register_service(name_, opts.control_channel, opts.reply_channel, opts.meta)) {
      registry_->close();
      throw Error("ERR_LIBIPC_ILLEGAL_STATE", "another live process already holds '" + name_ + "' in domain '" + ctx_.domain + "'; stop it first");
    }
    stop_fd_ = eventfd(0, EFD_CLOEXEC);
    if (stop_fd_ < 0) {
      const int err = errno;
      registry_->unregister(name_);
      registry_->close();
      throw system_error("eventfd", err);
    }
    if (ctx_.parent) open_host_watch();
    thread_ = std::thread([this] { run(); });
    if (host_lease_) lease_thread_ = std::thread([this] { watch_lease(); });
  }

  // The host's pidfd (readable when it exits), opened then checked against its identity: a reused pid is not our host.
  void open_host_watch() {
    host_fd_ = static_cast<int>(syscall(SYS_pidfd_open, ctx_.parent->pid, 0));
    if (!is_alive(ctx_.parent->pid, ctx_.parent->start_time)) host_gone_at_start_ = true;
    // Without pidfds (a kernel before 5.3) the identity is read on every beat instead.
    // The host's death lease, when our host holds it (a ServiceGroup does): the kernel breaks it as the host starts
    // to die, before its exit is reported (which waits for a large host's memory to be torn down).
    try {
      host_lease_ = registry_->group_lease(ctx_.service);
    } catch (const Error&) {
      host_lease_.reset();  // no lease to watch: the pidfd is enough
    }
    if (host_lease_ && host_lease_->state() != LeaseState::Held) host_lease_.reset();
  }

  // The lease thread: sleeps on the host lease's word until its holder dies (or releases it, or leave()).
  void watch_lease() {
    Lease& lease = *host_lease_;
    while (!stop_lease_.load()) {
      const LeaseState state = lease.state();  // also a holder that died without the kernel's mark (by identity)
      const uint32_t value = state == LeaseState::Held ? lease.prepare_wait() : 0;
      if (value == 0) {
        if (lease.state() == LeaseState::Held) continue;  // changed hands between the two reads: look again
        // The kernel wakes one watcher of a dead holder: wake the rest (other members, other processes).
        if (auto* word = lease.word()) futex_wake(reinterpret_cast<const uint32_t*>(word));
        if (lease.state() == LeaseState::OwnerDied) host_gone(true);
        return;
      }
      // Re-checked every 250 ms: leave() wakes this sleep, but may come just before it.
      futex_wait(reinterpret_cast<const uint32_t*>(lease.word()), value, 250000000LL);
    }
  }

  void stop_lease_watch() {
    stop_lease_.store(true);
    if (!lease_thread_.joinable() || lease_thread_.get_id() == std::this_thread::get_id()) return;
    if (auto* word = host_lease_->word()) futex_wake(reinterpret_cast<const uint32_t*>(word));
    lease_thread_.join();
  }

  bool host_alive_by_identity() const { return is_alive(ctx_.parent->pid, ctx_.parent->start_time); }

  // The member's thread: beat, read the record, sleep until the next beat, the host's exit or leave().
  void run() {
    bool watching = ctx_.parent.has_value();
    for (;;) {
      if (watching && (host_gone_at_start_ || (host_fd_ < 0 && !host_alive_by_identity()))) {
        if (!host_gone(false)) return;
        watching = false;
      }
      tick();
      struct pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {host_fd_, POLLIN, 0}};
      const int n = poll(fds, watching && host_fd_ >= 0 ? 2 : 1, opts_.heartbeat_ms);
      if (n < 0 && errno != EINTR) {
        report(system_error("poll", errno));
        return;
      }
      if (fds[0].revents != 0) return;  // leave()
      if (watching && host_fd_ >= 0 && fds[1].revents != 0) {
        if (!host_gone(false)) return;
        watching = false;
      }
    }
  }

  // The host died (seen by the member's thread or the lease thread, once): on_host_exit, then leave and exit
  // (exit_with_host), else go on beating. false: leave() was called.
  bool host_gone(bool on_lease_thread) {
    if (host_reported_.exchange(true)) return true;  // the other watch saw it first
    {
      std::lock_guard<std::mutex> g(mu_);
      if (left_) return false;
    }
    if (opts_.on_host_exit) opts_.on_host_exit();
    if (!opts_.exit_with_host) return true;
    // The lease lives in the registry's mapping, closed below: its watcher must be done with it first. (On the
    // lease thread, the member's thread touches the registry only under mu_, and sees left_.)
    if (!on_lease_thread) stop_lease_watch();
    {
      std::lock_guard<std::mutex> g(mu_);
      left_ = true;
      try {
        registry_->unregister(name_);
        registry_->close();  // the last process out removes the domain
      } catch (const Error&) {
      }
    }
    fflush(nullptr);
    // Not exit(): static destructors would run under the feet of the program's other threads.
    _exit(0);
  }

  // Nothing thrown here may end the process: a corrupt or full registry is reported and retried on the next beat.
  void tick() {
    std::optional<std::pair<MemberRole, uint32_t>> changed;
    {
      std::lock_guard<std::mutex> g(mu_);
      if (left_) return;
      try {
        registry_->heartbeat(name_);
      } catch (const Error& e) {
        // Our entry was removed (a registry clear, or a host that thought we were dead): announce ourselves again.
        if (std::string(e.code()) == "ERR_LIBIPC_NOT_FOUND") {
          guard([&] { registry_->register_service(name_, opts_.control_channel, opts_.reply_channel, opts_.meta); });
        } else {
          report(e);
        }
      }
      guard([&] { refresh(); });
      if (!notified_ || *notified_ != role_.load()) {
        notified_ = role_.load();
        changed = std::make_pair(role_.load(), epoch_.load());
      }
    }
    if (changed && opts_.on_role) opts_.on_role(changed->first, changed->second);
  }

  template <typename Fn>
  void guard(Fn&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      // A stopped process holding the registry lock is normal: read the record on the next beat.
      if (std::string(e.code()) != "ERR_LIBIPC_TIMEOUT") report(e);
    }
  }

  void report(const Error& e) {
    if (opts_.on_error) opts_.on_error(e);
  }

  // Caller holds mu_.
  MemberRole refresh() {
    const GroupState state = registry_->group_state(ctx_.service);
    const MemberRole role = group::role_in(state, name_);
    role_.store(role);
    epoch_.store(state.epoch);
    return role;
  }

  void close_fds() {
    if (stop_fd_ >= 0) ::close(stop_fd_);
    if (host_fd_ >= 0) ::close(host_fd_);
    stop_fd_ = host_fd_ = -1;
  }

  GroupMemberOptions opts_;
  InstanceContext ctx_;
  std::string name_;
  std::unique_ptr<Registry> registry_;
  std::mutex mu_;  // the registry handle is used by one thread at a time
  std::atomic<MemberRole> role_{MemberRole::Standby};
  std::atomic<uint32_t> epoch_{0};
  std::optional<MemberRole> notified_;  // the role last given to on_role (member's thread only)
  bool left_ = false;
  bool host_gone_at_start_ = false;
  int stop_fd_ = -1, host_fd_ = -1;
  std::thread thread_;
  std::optional<Lease> host_lease_;  // the host's death lease (a view into the registry's mapping)
  std::thread lease_thread_;
  std::atomic<bool> stop_lease_{false}, host_reported_{false};
};

}  // namespace libipc
