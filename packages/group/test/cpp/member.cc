// member.cc: the C++ twin of fixtures/member.mjs, a group instance built on libipc::GroupMember.
//   member [<args>… <id>]  joins (the environment a ServiceGroup sets), logs "<name> <pid> joined" and every role
//                          change "<name> <pid> role <role> <epoch>" to $MEMBER_LOG; SIGUSR1 logs a fresh read
//                          "<name> <pid> is_primary <0|1> <epoch>", the host's death "<name> <pid> host-exit";
//                          SIGTERM leaves the group and exits 0.
//                          MEMBER_HEARTBEAT_MS (default 20), MEMBER_STAY=1: do not exit with the host.
//   member context [args…] prints the instance context read from this environment/arguments, or "error <code>"
//                          (compared with Node's readInstanceContext on the same table)
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "libipc/group_member.h"

static void log_line(const std::string& line) {
  const char* path = getenv("MEMBER_LOG");
  if (path == nullptr) return;
  FILE* f = fopen(path, "ae");
  if (f == nullptr) return;
  fprintf(f, "%s\n", line.c_str());
  fclose(f);
}

static int print_context() {
  try {
    const libipc::InstanceContext c = libipc::group::read_instance_context(libipc::group::process_env(), libipc::group::process_args());
    printf("context %s %s %u %s\n", c.domain.c_str(), c.service.c_str(), c.id,
           c.parent ? (std::to_string(c.parent->pid) + ":" + std::to_string(c.parent->start_time)).c_str() : "-");
  } catch (const libipc::Error& e) {
    printf("error %s\n", e.code());
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "context") return print_context();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before join(): the member's thread inherits the mask

  const std::string pid = std::to_string(getpid());
  std::string name;
  libipc::GroupMemberOptions opts;
  const std::string id = argc > 1 ? argv[argc - 1] : "0";
  opts.control_channel = "ctrl_" + id;
  opts.reply_channel = "reply_" + id;
  opts.heartbeat_ms = getenv("MEMBER_HEARTBEAT_MS") ? atoi(getenv("MEMBER_HEARTBEAT_MS")) : 20;
  opts.exit_with_host = !(getenv("MEMBER_STAY") && std::string(getenv("MEMBER_STAY")) == "1");
  opts.on_role = [&](libipc::MemberRole role, uint32_t epoch) {
    log_line(name + " " + pid + " role " + libipc::role_name(role) + " " + std::to_string(epoch));
  };
  opts.on_error = [&](const libipc::Error& e) { log_line(name + " " + pid + " error " + e.code()); };
  opts.on_host_exit = [&] { log_line(name + " " + pid + " host-exit"); };
  // name is known before join() returns only from the contract: read it first so the first on_role names it.
  try {
    const libipc::InstanceContext c = libipc::group::read_instance_context(libipc::group::process_env(), libipc::group::process_args());
    name = libipc::group::instance_name(c.service, c.id);
  } catch (const libipc::Error& e) {
    fprintf(stderr, "member: %s (%s)\n", e.what(), e.code());
    return 2;
  }
  std::unique_ptr<libipc::GroupMember> member;
  try {
    member = libipc::GroupMember::join(opts);
  } catch (const libipc::Error& e) {
    fprintf(stderr, "member: %s (%s)\n", e.what(), e.code());
    return 2;
  }
  log_line(name + " " + pid + " joined");
  member->ready();
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGTERM) break;
    const bool primary = member->is_primary();
    log_line(name + " " + pid + " is_primary " + (primary ? "1" : "0") + " " + std::to_string(member->epoch()));
  }
  member->leave();
  return 0;
}
