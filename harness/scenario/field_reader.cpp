#include "wedge/scenario/field_reader.h"

#include <sys/resource.h>

#include <algorithm>
#include <utility>

#include "wedge/probe/signals.h"

namespace wedge::scenario::reader {

std::string Describe(const Json& value) {
  switch (value.type()) {
    case Json::value_t::string:
      return Quote(value.get_ref<const std::string&>());
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    default:
      return value.dump();
  }
}

std::string Join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

bool HasControlCharacter(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7F;
  });
}

bool IsName(std::string_view text) {
  if (text.empty() || text.size() > 64) return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(text[0])) return false;
  return std::all_of(text.begin(), text.end(),
                     [&](char c) { return lower_or_digit(c) || c == '-'; });
}

bool IsCIdentifier(std::string_view text) {
  if (text.empty() || text.size() > 128) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(text[0])) return false;
  return std::all_of(text.begin(), text.end(),
                     [&](char c) { return alpha(c) || (c >= '0' && c <= '9'); });
}

bool IsLowerHex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsSyscallName(std::string_view text) {
  return !text.empty() && text.size() <= 64 && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool IsSyscallGroup(std::string_view text) {
  if (text.size() < 2 || text.size() > 65 || text[0] != '@') return false;
  text.remove_prefix(1);
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  return lower_or_digit(text[0]) && std::all_of(text.begin(), text.end(), [&](char c) {
           return lower_or_digit(c) || c == '-';
         });
}

[[noreturn]] void Fail(std::string pointer, std::string message) {
  throw Failure{std::move(pointer), std::move(message)};
}

Node Node::Child(std::string_view key) const {
  return Node{&value->at(std::string(key)), pointer + "/" + EscapePointerToken(key)};
}

Node Node::Element(std::size_t index) const {
  return Node{&value->at(index), pointer + "/" + std::to_string(index)};
}

bool Node::Has(std::string_view key) const { return value->contains(key); }

[[noreturn]] void FailExpected(const Node& node, std::string_view expected) {
  Fail(node.pointer, "expected " + std::string(expected) + ", got " + Describe(node.json()));
}

void ExpectObject(const Node& node, std::string_view what) {
  if (!node.json().is_object()) FailExpected(node, what);
}

void CheckKeys(const Node& node, const std::vector<std::string>& allowed,
               std::string_view context) {
  for (const auto& [key, value] : node.json().items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string message = "unknown key " + Quote(key);
    if (!context.empty()) message += " " + std::string(context);
    Fail(node.pointer + "/" + EscapePointerToken(key),
         message + "; allowed: " + Join(allowed, ", "));
  }
}

Node Required(const Node& object, std::string_view key) {
  if (!object.Has(key)) Fail(object.pointer, "missing required key " + Quote(key));
  return object.Child(key);
}

std::optional<Node> Optional(const Node& object, std::string_view key) {
  if (!object.Has(key)) return std::nullopt;
  return object.Child(key);
}

const std::string& ReadString(const Node& node, std::string_view what) {
  if (!node.json().is_string()) FailExpected(node, what);
  return node.json().get_ref<const std::string&>();
}

std::string ReadText(const Node& node) {
  const std::string& text = ReadString(node, "a non-empty string");
  if (text.empty()) FailExpected(node, "a non-empty string");
  if (HasControlCharacter(text)) FailExpected(node, "one line of text without control characters");
  return text;
}

std::string ReadName(const Node& node, std::string_view what) {
  std::string expected = std::string(what) + " matching " + std::string(kNamePattern);
  const std::string& name = ReadString(node, expected);
  if (!IsName(name)) FailExpected(node, expected);
  return name;
}

std::vector<char> ReadStateLetters(const Node& node) {
  constexpr std::string_view kStateLetters = "RSDTtZXI";
  std::vector<char> letters;
  Uniqueness unique;
  for (const Node& element :
       ReadArray(node, {"state letters (R S D T t Z X I)", "state letter", false})) {
    std::string_view expected = "a state letter, one of R S D T t Z X I";
    const std::string& letter = ReadString(element, expected);
    if (letter.size() != 1 || kStateLetters.find(letter[0]) == std::string_view::npos) {
      FailExpected(element, expected);
    }
    unique.Add(element, letter);
    letters.push_back(letter[0]);
  }
  return letters;
}

bool ReadBool(const Node& node) {
  if (!node.json().is_boolean()) FailExpected(node, "true or false");
  return node.json().get<bool>();
}

std::int64_t ReadInteger(const Node& node, std::int64_t min, std::int64_t max) {
  const Json& value = node.json();
  std::string expected = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (value.is_number_unsigned()) {
    auto number = value.get<std::uint64_t>();
    if (number > static_cast<std::uint64_t>(max) || static_cast<std::int64_t>(number) < min) {
      FailExpected(node, expected);
    }
    return static_cast<std::int64_t>(number);
  }
  if (value.is_number_integer()) {
    auto number = value.get<std::int64_t>();
    if (number < min || number > max) FailExpected(node, expected);
    return number;
  }
  FailExpected(node, expected);
}

std::string ReadKeyword(const Node& node, const std::vector<std::string_view>& keywords) {
  if (node.json().is_string()) {
    const std::string& text = node.json().get_ref<const std::string&>();
    if (std::find(keywords.begin(), keywords.end(), text) != keywords.end()) return text;
  }
  std::vector<std::string> quoted;
  for (std::string_view keyword : keywords) quoted.push_back(Quote(keyword));
  FailExpected(node, "one of " + Join(quoted, ", "));
}

std::vector<Node> ReadArray(const Node& node, const ArrayShape& shape) {
  if (!node.json().is_array()) FailExpected(node, "an array of " + std::string(shape.plural));
  if (!shape.allow_empty && node.json().empty()) {
    Fail(node.pointer, "expected at least one " + std::string(shape.singular) + ", got []");
  }
  std::vector<Node> elements;
  for (std::size_t i = 0; i < node.json().size(); ++i) elements.push_back(node.Element(i));
  return elements;
}

void Uniqueness::Add(const Node& node, const std::string& key, std::string_view what) {
  auto [it, inserted] = first_.emplace(key, node.pointer);
  if (!inserted) {
    Fail(node.pointer, "duplicate " + std::string(what) + (what.empty() ? "" : " ") + Quote(key) +
                           " (already at " + it->second + ")");
  }
}

std::string ReadSignalName(const Node& node) {
  if (node.json().is_string()) {
    const std::string& name = node.json().get_ref<const std::string&>();
    // Full names only ("SIGKILL"), in the probe's spelling, so that scenarios read alike.
    std::optional<int> number = probe::SignalNumber(name);
    if (number && probe::SignalName(*number) == name) return name;
  }
  FailExpected(node, "a signal name such as \"SIGKILL\"");
}

std::string ReadRelativePath(const Node& node) {
  std::string_view expected = "a relative path inside the run directory";
  const std::string& path = ReadString(node, expected);
  auto refuse = [&](std::string_view why) {
    Fail(node.pointer, "expected " + std::string(expected) + ", got " + Describe(node.json()) +
                           " (" + std::string(why) + ")");
  };
  if (path.empty()) refuse("empty");
  if (path.size() > 1024) refuse("longer than 1024 bytes");
  if (HasControlCharacter(path)) refuse("control character");
  if (path.front() == '/') refuse("absolute");
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = std::min(path.find('/', start), path.size());
    std::string_view component = std::string_view(path).substr(start, end - start);
    if (component.empty()) refuse("empty component");
    if (component == "..") refuse("\"..\" component");
    if (component == ".") refuse("\".\" component");
    if (component.size() > 255) refuse("component longer than 255 bytes");
    start = end + 1;
  }
  return path;
}

bool PathsOverlap(std::string_view a, std::string_view b) {
  if (a.size() > b.size()) std::swap(a, b);
  return b.starts_with(a) && (b.size() == a.size() || b[a.size()] == '/');
}

const NameTable<int>& ResourceLimits() {
  static const NameTable<int> kLimits = {
      {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_CORE", RLIMIT_CORE},
      {"RLIMIT_CPU", RLIMIT_CPU},
      {"RLIMIT_DATA", RLIMIT_DATA},
      {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
      {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_NPROC", RLIMIT_NPROC},
      {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
      {"RLIMIT_RTTIME", RLIMIT_RTTIME},
      {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_STACK", RLIMIT_STACK},
  };
  return kLimits;
}

std::string RlimitNames() {
  std::vector<std::string> names;
  for (const auto& limit : ResourceLimits()) names.emplace_back(limit.first);
  return Join(names, ", ");
}

}  // namespace wedge::scenario::reader
