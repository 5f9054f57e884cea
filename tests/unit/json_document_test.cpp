// Tests of the scenario loader's first layer: JSON parsing that reports each failure at a JSON
// pointer, with a byte offset for syntax and encoding errors.
#include "wedge/scenario/json_document.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace wedge::scenario {
namespace {

// Fails the test unless `text` is refused; returns the failure.
DocumentFailure ExpectFailure(std::string_view text) {
  std::variant<Json, DocumentFailure> parsed = ParseJsonDocument(text);
  if (auto* failure = std::get_if<DocumentFailure>(&parsed)) return *failure;
  ADD_FAILURE() << "parsed, but a failure was expected: " << std::get<Json>(parsed).dump();
  return DocumentFailure{};
}

TEST(JsonDocument, ParsesADocumentWithItsObjectsInKeyOrder) {
  std::variant<Json, DocumentFailure> parsed =
      ParseJsonDocument(R"({"b": [1, -2, 3.5, true, null], "a": {"c": "d"}})");
  ASSERT_TRUE(std::holds_alternative<Json>(parsed)) << std::get<DocumentFailure>(parsed).message;
  const Json& document = std::get<Json>(parsed);
  EXPECT_EQ(document.begin().key(), "a");
  EXPECT_EQ(document["a"]["c"], "d");
  EXPECT_EQ(document["b"].size(), 5U);
  EXPECT_TRUE(document["b"][0].is_number_unsigned());
  EXPECT_TRUE(document["b"][1].is_number_integer());
  EXPECT_EQ(document["b"][2], 3.5);
  EXPECT_TRUE(document["b"][4].is_null());
}

TEST(JsonDocument, ToleratesAByteOrderMark) {
  std::variant<Json, DocumentFailure> parsed = ParseJsonDocument("\xEF\xBB\xBF{\"a\": 1}");
  ASSERT_TRUE(std::holds_alternative<Json>(parsed)) << std::get<DocumentFailure>(parsed).message;
  EXPECT_EQ(std::get<Json>(parsed)["a"], 1);
}

TEST(JsonDocument, SyntaxErrorIsReportedAtThePointerOfTheValueBeingRead) {
  constexpr std::string_view kText = "{\n  \"steps\": [\n    {\"action\": }\n  ]\n}";
  DocumentFailure failure = ExpectFailure(kText);
  EXPECT_EQ(failure.pointer, "/steps/0/action");
  EXPECT_TRUE(failure.message.starts_with("invalid JSON: syntax error while parsing value"))
      << failure.message;
  ASSERT_TRUE(failure.offset.has_value());
  EXPECT_EQ(*failure.offset, kText.find('}'));
  EXPECT_EQ(LineAndColumn(kText, *failure.offset), std::make_pair(3, 16));
}

TEST(JsonDocument, SyntaxErrorInAnArrayNamesTheNextElement) {
  DocumentFailure failure = ExpectFailure(R"({"a": [1, 2, ]})");
  EXPECT_EQ(failure.pointer, "/a/2");
  ASSERT_TRUE(failure.offset.has_value());
  EXPECT_EQ(*failure.offset, 13U);
}

TEST(JsonDocument, EmptyTextIsRefusedAtTheDocument) {
  DocumentFailure failure = ExpectFailure("");
  EXPECT_EQ(failure.pointer, "");
  EXPECT_TRUE(failure.message.starts_with("invalid JSON: ")) << failure.message;
  ASSERT_TRUE(failure.offset.has_value());
  EXPECT_EQ(*failure.offset, 0U);
}

TEST(JsonDocument, TextAfterTheDocumentIsRefused) {
  DocumentFailure failure = ExpectFailure(R"({"a": 1} {})");
  EXPECT_EQ(failure.pointer, "");
  EXPECT_TRUE(failure.message.starts_with("invalid JSON: ")) << failure.message;
  ASSERT_TRUE(failure.offset.has_value());
  EXPECT_EQ(*failure.offset, 9U);
}

TEST(JsonDocument, DuplicateKeyIsReportedAtTheSecondKey) {
  DocumentFailure failure = ExpectFailure(R"({"a": {"b": 1, "c": 2, "b": 3}})");
  EXPECT_EQ(failure.pointer, "/a/b");
  EXPECT_EQ(failure.message, "duplicate key \"b\" (each key may appear once)");
  EXPECT_FALSE(failure.offset.has_value());
}

TEST(JsonDocument, DuplicateKeyPointerEscapesTheKey) {
  DocumentFailure failure = ExpectFailure(R"({"x/y~z": 1, "x/y~z": 2})");
  EXPECT_EQ(failure.pointer, "/x~1y~0z");
  EXPECT_EQ(failure.message, "duplicate key \"x/y~z\" (each key may appear once)");
}

TEST(JsonDocument, KeysRepeatedInDifferentObjectsAreAccepted) {
  std::variant<Json, DocumentFailure> parsed = ParseJsonDocument(R"([{"a": 1}, {"a": 2}])");
  EXPECT_TRUE(std::holds_alternative<Json>(parsed));
}

TEST(JsonDocument, InvalidUtf8IsReportedWithTheByteAndItsOffset) {
  constexpr std::string_view kText = "{\"a\": [\"ok\", \"\xC3\x28\"]}";
  DocumentFailure failure = ExpectFailure(kText);
  EXPECT_EQ(failure.pointer, "/a/1");
  EXPECT_EQ(failure.message, "invalid UTF-8 (byte 0xC3): scenario files must be UTF-8");
  ASSERT_TRUE(failure.offset.has_value());
  EXPECT_EQ(*failure.offset, kText.find('\xC3'));
}

TEST(JsonDocument, InvalidUtf8OutsideAStringIsReportedAsSuch) {
  DocumentFailure failure = ExpectFailure("{\"a\": \xFF}");
  EXPECT_EQ(failure.pointer, "/a");
  EXPECT_EQ(failure.message, "invalid UTF-8 (byte 0xFF): scenario files must be UTF-8");
  ASSERT_TRUE(failure.offset.has_value());
  EXPECT_EQ(*failure.offset, 6U);
}

TEST(JsonDocument, SyntaxErrorMessageIsPrintableAndLeavesThePositionToTheOffset) {
  for (std::string_view text : {std::string_view("[\"a\x01\"]"), std::string_view("{\"a\": tru}"),
                                std::string_view("[1 2]"), std::string_view("\"\xC3\xA9\\q\"")}) {
    DocumentFailure failure = ExpectFailure(text);
    EXPECT_TRUE(failure.message.starts_with("invalid JSON: ")) << failure.message;
    EXPECT_EQ(failure.message.find("json.exception"), std::string::npos) << failure.message;
    EXPECT_EQ(failure.message.find("at line"), std::string::npos) << failure.message;
    for (char c : failure.message) {
      auto byte = static_cast<unsigned char>(c);
      EXPECT_TRUE(byte >= 0x20 && byte < 0x7F) << failure.message;
    }
    EXPECT_TRUE(failure.offset.has_value());
  }
}

std::string Nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(JsonDocument, NestingUpToTheLimitIsAccepted) {
  EXPECT_TRUE(std::holds_alternative<Json>(ParseJsonDocument(Nested(kMaxDocumentDepth))));
}

TEST(JsonDocument, NestingBeyondTheLimitIsRefusedAtTheFirstContainerTooDeep) {
  DocumentFailure failure = ExpectFailure(Nested(kMaxDocumentDepth + 1));
  std::string pointer;
  for (std::size_t i = 0; i < kMaxDocumentDepth; ++i) pointer += "/0";
  EXPECT_EQ(failure.pointer, pointer);
  EXPECT_EQ(failure.message, "nesting deeper than 64 levels");
  EXPECT_FALSE(failure.offset.has_value());
}

TEST(JsonDocument, NestingLimitCountsObjectsToo) {
  std::string text;
  for (std::size_t i = 0; i <= kMaxDocumentDepth; ++i) text += "{\"k\": ";
  text += "1";
  text.append(kMaxDocumentDepth + 1, '}');
  DocumentFailure failure = ExpectFailure(text);
  EXPECT_EQ(failure.message, "nesting deeper than 64 levels");
  std::string pointer;
  for (std::size_t i = 0; i < kMaxDocumentDepth; ++i) pointer += "/k";
  EXPECT_EQ(failure.pointer, pointer);
}

TEST(EscapePointerToken, EscapesTildeBeforeSlash) {
  EXPECT_EQ(EscapePointerToken("plain"), "plain");
  EXPECT_EQ(EscapePointerToken("pids.max"), "pids.max");
  EXPECT_EQ(EscapePointerToken("a/b~c"), "a~1b~0c");
  EXPECT_EQ(EscapePointerToken("~1"), "~01");
  EXPECT_EQ(EscapePointerToken(""), "");
}

TEST(Quote, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(Quote("kill"), "\"kill\"");
  EXPECT_EQ(Quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(Quote("tab\there\x7F"), "\"tab\\u0009here\\u007f\"");
  EXPECT_EQ(Quote("\xC3\xA9t\xC3\xA9"), "\"\xC3\xA9t\xC3\xA9\"");
}

TEST(Quote, CutsAfterSixtyCodePoints) {
  EXPECT_EQ(Quote(std::string(60, 'x')), "\"" + std::string(60, 'x') + "\"");
  EXPECT_EQ(Quote(std::string(61, 'x')), "\"" + std::string(60, 'x') + "...\"");
  std::string accents;
  for (int i = 0; i < 61; ++i) accents += "\xC3\xA9";
  EXPECT_EQ(Quote(accents), "\"" + accents.substr(0, 120) + "...\"");
}

TEST(FirstInvalidUtf8, AcceptsWellFormedText) {
  EXPECT_EQ(FirstInvalidUtf8(""), std::nullopt);
  EXPECT_EQ(FirstInvalidUtf8("ascii"), std::nullopt);
  EXPECT_EQ(FirstInvalidUtf8("\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"),
            std::nullopt);
}

TEST(FirstInvalidUtf8, RefusesOverlongSurrogateOutOfRangeAndTruncatedSequences) {
  EXPECT_EQ(FirstInvalidUtf8("ab\xC0\x80"), 2U);        // overlong NUL
  EXPECT_EQ(FirstInvalidUtf8("\xE0\x80\x80"), 0U);      // overlong three-byte form
  EXPECT_EQ(FirstInvalidUtf8("x\xED\xA0\x80"), 1U);     // surrogate U+D800
  EXPECT_EQ(FirstInvalidUtf8("\xF4\x90\x80\x80"), 0U);  // above U+10FFFF
  EXPECT_EQ(FirstInvalidUtf8("\xF5\x80\x80\x80"), 0U);  // no such lead byte
  EXPECT_EQ(FirstInvalidUtf8("ok\xE2\x82"), 2U);        // cut short at the end
  EXPECT_EQ(FirstInvalidUtf8("\xC3\xA9\x80"), 2U);      // a stray continuation byte
  EXPECT_EQ(FirstInvalidUtf8("\xE2\x28\xA1"), 0U);      // a bad second byte
}

TEST(LineAndColumn, CountsLinesFromOneAndColumnsInCodePoints) {
  constexpr std::string_view kText = "ab\n\xC3\xA9t\xC3\xA9 x\n";
  EXPECT_EQ(LineAndColumn(kText, 0), std::make_pair(1, 1));
  EXPECT_EQ(LineAndColumn(kText, 2), std::make_pair(1, 3));
  EXPECT_EQ(LineAndColumn(kText, 3), std::make_pair(2, 1));
  EXPECT_EQ(LineAndColumn(kText, kText.find('x')), std::make_pair(2, 5));
}

TEST(LineAndColumn, ClampsAnOffsetPastTheEnd) {
  EXPECT_EQ(LineAndColumn("ab\ncd", 100), std::make_pair(2, 3));
}

}  // namespace
}  // namespace wedge::scenario
