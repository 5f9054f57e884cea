#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "wedge/base/unique_fd.h"
#include "wedge/stack/docker_stack.h"
#include "wedge/sys/process.h"

namespace wedge::stack {
namespace {

// Waits until `fd` is ready for `events` or the deadline passes.
Status WaitFor(int fd, short events, std::int64_t deadline, const std::string& what) {
  for (;;) {
    int left = static_cast<int>(deadline - sys::MonotonicMillis());
    if (left <= 0) return Error(what + ": timed out");
    pollfd pfd{fd, events, 0};
    int ready = ::poll(&pfd, 1, left);
    if (ready < 0 && errno != EINTR) return ErrnoError("poll(" + what + ")");
    if (ready > 0) return OkStatus();
  }
}

// Decodes a "Transfer-Encoding: chunked" body.
Result<std::string> Dechunk(const std::string& body) {
  std::string out;
  size_t at = 0;
  for (;;) {
    size_t line_end = body.find("\r\n", at);
    if (line_end == std::string::npos) return Error("truncated chunked body");
    size_t size = std::strtoul(body.substr(at, line_end - at).c_str(), nullptr, 16);
    if (size == 0) return out;
    at = line_end + 2;
    if (at + size > body.size()) return Error("truncated chunked body");
    out.append(body, at, size);
    at += size + 2;
  }
}

}  // namespace

Result<std::pair<int, std::string>> HttpGetUnix(const std::filesystem::path& socket,
                                                const std::string& path,
                                                std::chrono::milliseconds timeout) {
  const std::int64_t deadline = sys::MonotonicMillis() + timeout.count();
  const std::string what = "GET " + path + " on " + socket.string();
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket.string().size() >= sizeof address.sun_path) {
    return Error(what + ": socket path longer than " + std::to_string(sizeof address.sun_path - 1) +
                 " bytes");
  }
  std::strncpy(address.sun_path, socket.c_str(), sizeof address.sun_path - 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return ErrnoError("socket(AF_UNIX, SOCK_STREAM)");
  // A non-blocking unix connect never waits: it fails with EAGAIN while the listener's backlog
  // is full, so it is retried until the deadline.
  while (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    if (errno != EAGAIN && errno != EINTR) return ErrnoError("connect('" + socket.string() + "')");
    if (sys::MonotonicMillis() >= deadline) return Error(what + ": connect timed out");
    ::usleep(1000);
  }
  // HTTP/1.0: the server closes the connection after the response and never chunks it.
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: wedge\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    WEDGE_RETURN_IF_ERROR(WaitFor(fd.get(), POLLOUT, deadline, what));
    ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return ErrnoError("send(" + what + ")");
    if (n > 0) sent += static_cast<size_t>(n);
  }
  std::string response;
  char buffer[8192];
  for (;;) {
    WEDGE_RETURN_IF_ERROR(WaitFor(fd.get(), POLLIN, deadline, what));
    ssize_t n = ::recv(fd.get(), buffer, sizeof buffer, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return ErrnoError("recv(" + what + ")");
    if (n == 0) break;
    response.append(buffer, static_cast<size_t>(n));
    if (response.size() > (64u << 20)) return Error(what + ": response larger than 64 MiB");
  }
  // "HTTP/1.1 200 OK\r\nHeaders...\r\n\r\nBody"
  size_t header_end = response.find("\r\n\r\n");
  if (response.rfind("HTTP/", 0) != 0 || header_end == std::string::npos) {
    return Error(what + ": not an HTTP response: '" + response.substr(0, 80) + "'");
  }
  size_t space = response.find(' ');
  int status = std::atoi(response.c_str() + space + 1);
  std::string headers = response.substr(0, header_end);
  std::string body = response.substr(header_end + 4);
  for (char& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (headers.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
    Result<std::string> decoded = Dechunk(body);
    if (!decoded.ok()) return decoded.error().WithContext(what);
    body = std::move(*decoded);
  }
  return std::make_pair(status, body);
}

}  // namespace wedge::stack
