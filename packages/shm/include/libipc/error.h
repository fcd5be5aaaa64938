// The errors of libipc's C++ clients: one exception type carrying the same stable codes as the TypeScript
// LibipcError subclasses (ERR_LIBIPC_TIMEOUT, ERR_LIBIPC_INCOMPATIBLE, …), with a message that says what to do.
// Only the client headers throw; the low-level headers (futex, mutex, segment, ring) return codes.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace libipc {

class Error : public std::runtime_error {
 public:
  Error(const char* code, const std::string& message) : std::runtime_error(message), code_(code) {}
  // "ERR_LIBIPC_…": stable, for programs to branch on.
  const char* code() const noexcept { return code_; }

 private:
  const char* code_;
};

// A receiver in 'lag' mode fell behind: `missed` messages were overwritten before it read them.
class LaggedError : public Error {
 public:
  explicit LaggedError(uint64_t missed)
      : Error("ERR_LIBIPC_LAGGED", "this receiver fell behind and missed " + std::to_string(missed) +
                                       " messages ('lag' mode); the next recv continues with the oldest message still held"),
        missed_(missed) {}
  uint64_t missed() const noexcept { return missed_; }

 private:
  uint64_t missed_;
};

// An errno from the OS as a coded error (ENOSPC: no space, EACCES/EPERM: permission, ENOENT: not found).
inline Error system_error(const std::string& what, int err) {
  const char* code = "ERR_LIBIPC_SYSTEM";
  if (err == ENOSPC || err == EDQUOT || err == ENOMEM) code = "ERR_LIBIPC_NO_SPACE";
  else if (err == EACCES || err == EPERM) code = "ERR_LIBIPC_PERMISSION";
  else if (err == ENOENT) code = "ERR_LIBIPC_NOT_FOUND";
  else if (err == ELOOP || err == EINVAL || err == ENODATA) code = "ERR_LIBIPC_INCOMPATIBLE";
  return Error(code, what + ": " + strerror(err));
}

// The one name rule of libipc (domains, services, channels): 1-63 bytes of [A-Za-z0-9._-].
inline void validate_name(const std::string& name, const char* what = "name") {
  bool ok = !name.empty() && name.size() <= 63;
  for (char ch : name) {
    ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-');
  }
  if (!ok) {
    throw Error("ERR_LIBIPC_INVALID_NAME", std::string(what) + " \"" + name.substr(0, 80) +
                                               "\" is not valid: use 1-63 characters from [A-Za-z0-9._-] (no '/', no spaces)");
  }
}

}  // namespace libipc
