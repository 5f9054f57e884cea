// Typed readers for the fields of a parsed scenario document. Each reader checks one value and
// throws the first Failure, naming the value's JSON pointer and what was expected there:
// "expected an integer from 1 to 100, got 0". Messages are part of wedge's interface: the
// malformed corpus (tests/data/scenarios/malformed) pins them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wedge/scenario/json_document.h"

namespace wedge::scenario::reader {

// A refused value: thrown by the readers, caught once where the document's validation starts.
struct Failure {
  std::string pointer;  // RFC 6901 JSON pointer; "" for the whole document
  std::string message;
};

// A value of the document and its JSON pointer.
struct Node {
  const Json* value;
  std::string pointer;

  const Json& json() const { return *value; }
  // The member `key` of this object, which must exist.
  Node Child(std::string_view key) const;
  // The element `index` of this array, which must exist.
  Node Element(std::size_t index) const;
  // True when this object has the member `key`.
  bool Has(std::string_view key) const;
};

// The pattern of scenario, step, process and role names, as messages spell it.
inline constexpr std::string_view kNamePattern = "^[a-z0-9][a-z0-9-]{0,63}$";

// What was found, for "expected X, got Y": a quoted string, "an object", "an array" or the JSON.
std::string Describe(const Json& value);
// `items` separated by `separator`.
std::string Join(const std::vector<std::string>& items, std::string_view separator);
// True when `text` holds a byte below 0x20 or 0x7F (DEL).
bool HasControlCharacter(std::string_view text);
// True when `text` matches kNamePattern.
bool IsName(std::string_view text);
// True for a C identifier of at most 128 characters: "fuse_flush", "_do_fork".
bool IsCIdentifier(std::string_view text);
// True when every character of `text` is a lower-case hex digit (true for "").
bool IsLowerHex(std::string_view text);
// True for a syscall name as the kernel's tables spell it: "setrlimit", "_llseek", "epoll_wait2".
bool IsSyscallName(std::string_view text);
// True for a systemd syscall group: "@system-service", "@resources".
bool IsSyscallGroup(std::string_view text);
// True when one path is the other or lies below it, component-wise.
bool PathsOverlap(std::string_view a, std::string_view b);

// Throws Failure{pointer, message}.
[[noreturn]] void Fail(std::string pointer, std::string message);
// Throws "expected EXPECTED, got WHAT-NODE-HOLDS" at `node`.
[[noreturn]] void FailExpected(const Node& node, std::string_view expected);
// Refuses a `node` that is not an object: "expected WHAT, got ...".
void ExpectObject(const Node& node, std::string_view what = "an object");
// Refuses the first key of the object `node` not in `allowed`, at that key; `context` ("for a
// \"kill\" step") follows the key in the message, and the message lists `allowed`.
void CheckKeys(const Node& node, const std::vector<std::string>& allowed,
               std::string_view context = "");
// The member `key` of the object `object`; refuses its absence at `object`.
Node Required(const Node& object, std::string_view key);
// The member `key` of the object `object`, when it has one.
std::optional<Node> Optional(const Node& object, std::string_view key);

// The string `node` holds; refuses anything else as "expected WHAT".
const std::string& ReadString(const Node& node, std::string_view what = "a string");
// A non-empty string of one line without control characters.
std::string ReadText(const Node& node);
// A string matching kNamePattern; `what` names it in the message ("a step name").
std::string ReadName(const Node& node, std::string_view what);
// true or false.
bool ReadBool(const Node& node);
// An integer from `min` to `max`, both included; fractions and other types are refused.
std::int64_t ReadInteger(const Node& node, std::int64_t min, std::int64_t max);
// A string that must be one of `keywords`, returned as written.
std::string ReadKeyword(const Node& node, const std::vector<std::string_view>& keywords);
// A full signal name in the probe's spelling: "SIGKILL", never "KILL" or "SIG9".
std::string ReadSignalName(const Node& node);
// A path below the run directory: relative, at most 1024 bytes, no control characters, and no
// empty, "." or ".." components or components longer than 255 bytes.
std::string ReadRelativePath(const Node& node);

// How an array's messages name its elements.
struct ArrayShape {
  std::string_view plural;    // "state letters (R S D T t Z X I)"
  std::string_view singular;  // "state letter"
  bool allow_empty = false;
};
// The elements of the array `node`; refuses another type, and [] unless `shape` allows it.
std::vector<Node> ReadArray(const Node& node, const ArrayShape& shape);

// A non-empty array of distinct task state letters of /proc/PID/stat (R S D T t Z X I), in order.
std::vector<char> ReadStateLetters(const Node& node);

// Refuses a second occurrence of a member of a set written as an array or list of names.
class Uniqueness {
 public:
  // Records `key` as read at `node`; refuses a `key` recorded before, naming where. `what`
  // ("role") qualifies the key in the message.
  void Add(const Node& node, const std::string& key, std::string_view what = "");

 private:
  std::map<std::string, std::string> first_;  // key -> pointer of its first occurrence
};

// Names and the values they stand for, in the order messages list them.
template <typename T>
using NameTable = std::vector<std::pair<std::string_view, T>>;

// The value `name` stands for in `table`, if any.
template <typename T>
std::optional<T> Lookup(const NameTable<T>& table, std::string_view name) {
  for (const auto& [entry_name, value] : table) {
    if (entry_name == name) return value;
  }
  return std::nullopt;
}

// The names of `table`, quoted, for a message: "one of \"a\", \"b\"".
template <typename T>
std::string OneOf(const NameTable<T>& table) {
  std::vector<std::string> names;
  for (const auto& entry : table) names.push_back(Quote(entry.first));
  return "one of " + Join(names, ", ");
}

// The value of `table` whose name the string `node` holds; refuses anything else.
template <typename T>
T ReadChoice(const Node& node, const NameTable<T>& table) {
  if (node.json().is_string()) {
    if (auto value = Lookup(table, node.json().get_ref<const std::string&>())) return *value;
  }
  FailExpected(node, OneOf(table));
}

// The resource limits a scenario may name, "RLIMIT_AS" to "RLIMIT_STACK", and their numbers.
const NameTable<int>& ResourceLimits();
// The names of ResourceLimits(), separated by ", ", for a message.
std::string RlimitNames();

}  // namespace wedge::scenario::reader
