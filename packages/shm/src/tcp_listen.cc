// A listening TCP socket that this process opens but never polls: a supervisor hands it to its children (one
// accept queue shared by every instance) and must not accept connections itself, which a net.Server would.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "addon.h"
#include "tcp_listen.h"

namespace libipc {

namespace {

// socket + SO_REUSEADDR + SO_REUSEPORT + bind + listen; returns the fd, or -errno (and the failing call in *what).
int open_listener(const std::string& host, int port, int backlog, const char** what) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_INET;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v6);
  } else {
    *what = "inet_pton";
    return -EINVAL;
  }
  // CLOEXEC: only the children it is handed to (dup2 onto fd 4, 5 …) get it, not every exec of this process.
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *what = "socket";
    return -errno;
  }
  int one = 1, zero = 0;
  int err = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    *what = "setsockopt";
    err = errno;
  } else if (family == AF_INET6 && host == "::" && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0) {
    *what = "setsockopt";
    err = errno;
  } else if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    *what = "bind";
    err = errno;
  } else if (listen(fd, backlog) != 0) {
    *what = "listen";
    err = errno;
  }
  if (err != 0) {
    close(fd);
    return -err;
  }
  return fd;
}

}  // namespace

// listenTcp(host, port, backlog) -> fd. Arguments are checked by the TypeScript layer.
Napi::Value ListenTcp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "listenTcp(host, port, backlog)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const char* what = "socket";
  int fd = open_listener(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Number>().Int32Value(),
                         info[2].As<Napi::Number>().Int32Value(), &what);
  if (fd < 0) {
    errno_error(env, what, -fd).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

}  // namespace libipc
