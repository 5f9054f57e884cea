// Pointer-tracking JSON parsing for scenario files: the document, or the first syntax error,
// invalid UTF-8, duplicate key or excessive nesting, reported at its RFC 6901 JSON pointer.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace wedge::scenario {

// A parsed document. Objects keep their keys sorted, so they are validated in name order.
using Json = nlohmann::json;

// The largest scenario text wedge reads, in bytes (1 MiB); callers check it before parsing.
inline constexpr std::size_t kMaxDocumentBytes = std::size_t{1} << 20;
// The deepest nesting of objects and arrays ParseJsonDocument accepts.
inline constexpr std::size_t kMaxDocumentDepth = 64;

// Why a text is not a JSON document wedge accepts, and where.
struct DocumentFailure {
  std::string pointer;                // of the value being read; "" for the whole document
  std::string message;                // "duplicate key \"name\" (each key may appear once)"
  std::optional<std::size_t> offset;  // byte offset, for syntax and encoding errors
};

// Parses `text` as one JSON document; a key repeated in an object, a byte that is not UTF-8 and
// nesting deeper than kMaxDocumentDepth are refused like syntax errors.
std::variant<Json, DocumentFailure> ParseJsonDocument(std::string_view text);

// `token` escaped for use as one JSON pointer token: "~" as "~0", "/" as "~1".
std::string EscapePointerToken(std::string_view token);
// `text` as a JSON string literal, cut with "..." after 60 code points. `text` must be UTF-8.
std::string Quote(std::string_view text);
// Offset of the first byte of `text` that is not part of a well-formed UTF-8 sequence (RFC 3629).
std::optional<std::size_t> FirstInvalidUtf8(std::string_view text);
// The 1-based line, and column in code points, of byte `offset` of `text`.
std::pair<int, int> LineAndColumn(std::string_view text, std::size_t offset);

}  // namespace wedge::scenario
