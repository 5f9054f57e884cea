#include "wedge/scenario/json_document.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace wedge::scenario {
namespace {

constexpr std::size_t kMaxQuotedChars = 60;
constexpr std::size_t kMaxParserDetail = 160;

bool IsContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// nlohmann's message without its "[json.exception.parse_error.101] parse error at line 1,
// column 3: " prefix (the position is reported separately), printable and bounded: the
// "last read" part may hold raw bytes of a broken file.
std::string ParserDetail(std::string_view what) {
  if (what.starts_with("[json.exception.")) {
    std::size_t close = what.find("] ");
    if (close != std::string_view::npos) what.remove_prefix(close + 2);
  }
  if (what.starts_with("parse error")) {
    std::size_t colon = what.find(": ");
    if (colon != std::string_view::npos) what.remove_prefix(colon + 2);
  }
  std::string out;
  for (char c : what) {
    auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x80 || byte < 0x20 || byte == 0x7F) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
    } else {
      out += c;
    }
    if (out.size() >= kMaxParserDetail) {
      out += "...";
      break;
    }
  }
  return out;
}

// A SAX handler that builds the document while it tracks the JSON pointer of the value being
// read, so syntax errors, duplicate keys and excessive nesting are reported at a place.
class DocumentBuilder final : public nlohmann::json_sax<Json> {
 public:
  explicit DocumentBuilder(std::string_view text) : text_(text) {}

  Json& document() { return document_; }
  const std::optional<DocumentFailure>& failure() const { return failure_; }

  bool null() override { return AddScalar(Json(nullptr)); }
  bool boolean(bool value) override { return AddScalar(Json(value)); }
  bool number_integer(number_integer_t value) override { return AddScalar(Json(value)); }
  bool number_unsigned(number_unsigned_t value) override { return AddScalar(Json(value)); }
  bool number_float(number_float_t value, const string_t& /*text*/) override {
    return AddScalar(Json(value));
  }
  bool string(string_t& value) override { return AddScalar(Json(std::move(value))); }
  bool binary(binary_t& value) override { return AddScalar(Json::binary(std::move(value))); }

  bool start_object(std::size_t /*elements*/) override { return Open(Json::object()); }
  bool key(string_t& key) override {
    Frame& frame = frames_.back();
    if (frame.value->contains(key)) {
      failure_ = DocumentFailure{frame.pointer + "/" + EscapePointerToken(key),
                                 "duplicate key " + Quote(key) + " (each key may appear once)",
                                 {}};
      return false;
    }
    frame.key = std::move(key);
    frame.has_key = true;
    return true;
  }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t /*elements*/) override { return Open(Json::array()); }
  bool end_array() override { return Close(); }

  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& error) override {
    // `position` counts the bytes read, the offending one included (one past the end at EOF).
    std::size_t offset = std::min(position == 0 ? 0 : position - 1, text_.size());
    std::optional<std::size_t> bad_byte =
        FirstInvalidUtf8(text_.substr(0, std::min(offset + 1, text_.size())));
    if (bad_byte) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      auto byte = static_cast<unsigned char>(text_[*bad_byte]);
      std::string hex = {kHex[byte >> 4], kHex[byte & 0xF]};
      failure_ = DocumentFailure{NextPointer(),
                                 "invalid UTF-8 (byte 0x" + hex + "): scenario files must be UTF-8",
                                 *bad_byte};
    } else {
      failure_ =
          DocumentFailure{NextPointer(), "invalid JSON: " + ParserDetail(error.what()), offset};
    }
    return false;
  }

 private:
  struct Frame {
    Json* value;
    std::string pointer;
    std::size_t count = 0;  // arrays: elements completed
    std::string key;        // objects: the key whose value is being read
    bool has_key = false;
  };

  // The pointer of the value the parser reads next: where a syntax error is reported.
  std::string NextPointer() const {
    if (frames_.empty()) return "";
    const Frame& frame = frames_.back();
    if (frame.value->is_array()) return frame.pointer + "/" + std::to_string(frame.count);
    return frame.has_key ? frame.pointer + "/" + EscapePointerToken(frame.key) : frame.pointer;
  }

  Json* Insert(Json value) {
    if (frames_.empty()) {
      document_ = std::move(value);
      return &document_;
    }
    Frame& frame = frames_.back();
    if (frame.value->is_array()) {
      frame.value->push_back(std::move(value));
      return &frame.value->back();
    }
    Json& slot = (*frame.value)[frame.key];
    slot = std::move(value);
    return &slot;
  }

  void Completed() {
    if (frames_.empty()) return;
    Frame& frame = frames_.back();
    if (frame.value->is_array()) {
      ++frame.count;
    } else {
      frame.has_key = false;
    }
  }

  bool AddScalar(Json value) {
    Insert(std::move(value));
    Completed();
    return true;
  }

  bool Open(Json container) {
    std::string pointer = NextPointer();
    if (frames_.size() >= kMaxDocumentDepth) {
      failure_ = DocumentFailure{
          pointer, "nesting deeper than " + std::to_string(kMaxDocumentDepth) + " levels", {}};
      return false;
    }
    // Elements of an array are only appended to the innermost open container, so this pointer
    // stays valid until the container closes.
    Json* slot = Insert(std::move(container));
    frames_.push_back(Frame{slot, std::move(pointer), 0, {}, false});
    return true;
  }

  bool Close() {
    frames_.pop_back();
    Completed();
    return true;
  }

  std::string_view text_;
  Json document_;
  std::vector<Frame> frames_;
  std::optional<DocumentFailure> failure_;
};

}  // namespace

std::variant<Json, DocumentFailure> ParseJsonDocument(std::string_view text) {
  DocumentBuilder builder(text);
  bool parsed = false;
  try {
    parsed = Json::sax_parse(text, &builder);
  } catch (const Json::exception& exception) {
    // sax_parse reports through parse_error; this is a net for anything it throws instead.
    return DocumentFailure{"", "invalid JSON: " + ParserDetail(exception.what()), {}};
  }
  if (!parsed || builder.failure()) {
    return builder.failure().value_or(DocumentFailure{"", "invalid JSON", {}});
  }
  return std::move(builder.document());
}

std::string EscapePointerToken(std::string_view token) {
  std::string out;
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// The input is valid UTF-8 (the parser has checked it), so only quotes, backslashes and control
// characters need escaping.
std::string Quote(std::string_view text) {
  std::string out = "\"";
  std::size_t chars = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (!IsContinuationByte(c) && ++chars > kMaxQuotedChars) {
      out += "...";
      break;
    }
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

// RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
std::optional<std::size_t> FirstInvalidUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    auto byte = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (byte < 0x80) {
      length = 1;
    } else if (byte >= 0xC2 && byte <= 0xDF) {
      length = 2;
    } else if (byte >= 0xE0 && byte <= 0xEF) {
      length = 3;
      if (byte == 0xE0) low = 0xA0;
      if (byte == 0xED) high = 0x9F;
    } else if (byte >= 0xF0 && byte <= 0xF4) {
      length = 4;
      if (byte == 0xF0) low = 0x90;
      if (byte == 0xF4) high = 0x8F;
    } else {
      return i;
    }
    for (std::size_t k = 1; k < length; ++k) {
      if (i + k >= text.size()) return i;
      auto next = static_cast<unsigned char>(text[i + k]);
      if (next < (k == 1 ? low : 0x80) || next > (k == 1 ? high : 0xBF)) return i;
    }
    i += length;
  }
  return std::nullopt;
}

std::pair<int, int> LineAndColumn(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  int line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  int column = 1;
  for (std::size_t i = line_start; i < offset; ++i) {
    if (!IsContinuationByte(text[i])) ++column;
  }
  return {line, column};
}

}  // namespace wedge::scenario
