// Errors are values: Status for "ok or a message", Expected<T> for "a T or a message".
// Messages name what is wrong (the node, tensor or file) so the CLI can print one clear line.
#pragma once
#include <cassert>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <variant>

namespace kiln {

class Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string message) {
    Status s;
    s.message_ = std::move(message);
    s.failed_ = true;
    return s;
  }
  bool is_ok() const { return !failed_; }
  explicit operator bool() const { return !failed_; }
  const std::string& message() const { return message_; }
  // Prepends context ("node 'x' (Conv): ") to an error; a no-op on success.
  Status with_context(const std::string& context) const {
    return failed_ ? error(context + message_) : *this;
  }

 private:
  std::string message_;
  bool failed_ = false;
};

// Builds a message from streamable parts: err("axis ", axis, " out of range").
template <class... Args>
Status err(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return Status::error(os.str());
}

template <class T>
class Expected {
 public:
  Expected(T value) : value_(std::move(value)) {}           // NOLINT: implicit by design
  Expected(Status status) : status_(std::move(status)) {     // NOLINT
    assert(!status_.is_ok() && "Expected<T> built from an ok Status");
  }
  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace kiln

#define KILN_CONCAT_INNER(a, b) a##b
#define KILN_CONCAT(a, b) KILN_CONCAT_INNER(a, b)

// Returns early with the error of a Status-returning expression.
#define KILN_RETURN_IF_ERROR(expr)                   \
  do {                                               \
    ::kiln::Status kiln_status_ = (expr);            \
    if (!kiln_status_.is_ok()) return kiln_status_;  \
  } while (0)

// KILN_ASSIGN_OR_RETURN(auto x, expected_expr): unwraps or returns the error.
#define KILN_ASSIGN_OR_RETURN(lhs, expr) \
  KILN_ASSIGN_OR_RETURN_IMPL(KILN_CONCAT(kiln_expected_, __LINE__), lhs, expr)
#define KILN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.is_ok()) return tmp.status();           \
  lhs = std::move(tmp).value()
