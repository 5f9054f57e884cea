// Errors as values at wedge's API boundaries.
//
// A `Result<T>` holds either a value or an `Error`; `Status` is `Result<void>`. errno text is
// added in exactly one place, `ErrnoError`, so every failing system call reads the same way:
// `open('/proc/12/stack'): ENOENT (No such file or directory)`.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace wedge {

// A failure, described for the person reading the console or the evidence bundle.
class Error {
 public:
  explicit Error(std::string message) : message_(std::move(message)) {}

  const std::string& message() const { return message_; }
  // Returns this error with `context` prepended: "context: message".
  Error WithContext(std::string_view context) const;

 private:
  std::string message_;
};

// Describes a failed system call: `call` should repeat the call and its arguments,
// e.g. "mount('fusectl', '/sys/fs/fuse/connections')".
Error ErrnoError(std::string_view call, int errno_value = errno);

// The symbolic name of an errno value ("ENOENT"), or its number as text when unknown.
std::string ErrnoName(int errno_value);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<Error>(state_); }

 private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error)
      : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_{""};
  bool ok_ = true;
};

using Status = Result<void>;

inline Status OkStatus() { return Status(); }

}  // namespace wedge

#define WEDGE_CONCAT_INNER_(a, b) a##b
#define WEDGE_CONCAT_(a, b) WEDGE_CONCAT_INNER_(a, b)

// Returns the error of `expr` (a Status or Result) from the enclosing function.
#define WEDGE_RETURN_IF_ERROR(expr)                        \
  do {                                                     \
    auto&& wedge_status_ = (expr);                         \
    if (!wedge_status_.ok()) return wedge_status_.error(); \
  } while (false)

// Evaluates `expr` (a Result<T>); on error returns it, else moves the value into `lhs`.
#define WEDGE_ASSIGN_OR_RETURN(lhs, expr) \
  WEDGE_ASSIGN_OR_RETURN_IMPL_(WEDGE_CONCAT_(wedge_result_, __LINE__), lhs, expr)
#define WEDGE_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.error();                 \
  lhs = std::move(tmp).value()
