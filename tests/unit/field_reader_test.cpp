// Tests of the scenario loader's second layer: the typed readers, each refusing a value at its
// JSON pointer with the message the malformed corpus pins.
#include "wedge/scenario/field_reader.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wedge::scenario::reader {
namespace {

// A parsed document and its root node; the node points into the document.
struct Document {
  explicit Document(std::string_view text) : json(Json::parse(text)) {}
  Node root() const { return Node{&json, ""}; }
  Json json;
};

// Runs `read`, which must refuse; returns its Failure.
template <typename Read>
Failure Refusal(Read read) {
  try {
    read();
  } catch (const Failure& failure) {
    return failure;
  }
  ADD_FAILURE() << "accepted, but a refusal was expected";
  return Failure{};
}

TEST(Node, ChildAndElementPointersEscapeTheirTokens) {
  Document document(R"({"a/b": [{"~": 1}]})");
  Node value = document.root().Child("a/b").Element(0).Child("~");
  EXPECT_EQ(value.pointer, "/a~1b/0/~0");
  EXPECT_EQ(value.json(), 1);
  EXPECT_TRUE(document.root().Has("a/b"));
  EXPECT_FALSE(document.root().Has("a"));
}

TEST(Required, ReportsAMissingKeyAtItsObject) {
  Document document(R"({"steps": [{"action": "kill"}]})");
  Node step = document.root().Child("steps").Element(0);
  EXPECT_EQ(Required(step, "action").json(), "kill");
  Failure failure = Refusal([&] { Required(step, "target"); });
  EXPECT_EQ(failure.pointer, "/steps/0");
  EXPECT_EQ(failure.message, "missing required key \"target\"");
  EXPECT_FALSE(Optional(step, "target").has_value());
  EXPECT_EQ(Optional(step, "action")->pointer, "/steps/0/action");
}

TEST(CheckKeys, NamesTheUnknownKeyTheContextAndTheAllowedKeys) {
  Document document(R"({"action": "kill", "sigal": "SIGKILL"})");
  Failure failure = Refusal([&] {
    CheckKeys(document.root(), {"action", "target", "signal"}, "for a \"kill\" step");
  });
  EXPECT_EQ(failure.pointer, "/sigal");
  EXPECT_EQ(failure.message,
            "unknown key \"sigal\" for a \"kill\" step; allowed: action, target, signal");
}

TEST(CheckKeys, WithoutContextListsOnlyTheAllowedKeys) {
  Document document(R"({"fresh": true, "x/y": 1})");
  Failure failure = Refusal([&] { CheckKeys(document.root(), {"fresh", "busybox_image"}); });
  EXPECT_EQ(failure.pointer, "/x~1y");
  EXPECT_EQ(failure.message, "unknown key \"x/y\"; allowed: fresh, busybox_image");
}

TEST(CheckKeys, AcceptsAnObjectOfAllowedKeys) {
  Document document(R"({"soft": 1, "hard": 2})");
  CheckKeys(document.root(), {"soft", "hard"});
}

TEST(ExpectObject, DescribesWhatWasFoundInstead) {
  Document document(R"([[1, 2], "text", 3.5, null, {}])");
  Node root = document.root();
  EXPECT_EQ(Refusal([&] { ExpectObject(root.Element(0)); }).message,
            "expected an object, got an array");
  EXPECT_EQ(Refusal([&] { ExpectObject(root.Element(1), "a step object"); }).message,
            "expected a step object, got \"text\"");
  EXPECT_EQ(Refusal([&] { ExpectObject(root.Element(2)); }).message, "expected an object, got 3.5");
  EXPECT_EQ(Refusal([&] { ExpectObject(root.Element(3)); }).message,
            "expected an object, got null");
  ExpectObject(root.Element(4));
}

TEST(ReadInteger, AcceptsBothEndsOfItsRange) {
  Document document(R"([1, 100, -5, 9223372036854775807])");
  Node root = document.root();
  EXPECT_EQ(ReadInteger(root.Element(0), 1, 100), 1);
  EXPECT_EQ(ReadInteger(root.Element(1), 1, 100), 100);
  EXPECT_EQ(ReadInteger(root.Element(2), -5, 5), -5);
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(ReadInteger(root.Element(3), 0, kMax), kMax);
}

TEST(ReadInteger, RefusesValuesOutsideItsRangeNamingTheRange) {
  Document document(R"([0, 101, -1, 18446744073709551615, 1.5, "5", true])");
  Node root = document.root();
  const std::vector<std::string> got = {"0",   "101",   "-1",  "18446744073709551615",
                                        "1.5", "\"5\"", "true"};
  for (std::size_t i = 0; i < got.size(); ++i) {
    Failure failure = Refusal([&] { ReadInteger(root.Element(i), 1, 100); });
    EXPECT_EQ(failure.pointer, "/" + std::to_string(i));
    EXPECT_EQ(failure.message, "expected an integer from 1 to 100, got " + got[i]);
  }
}

TEST(ReadInteger, ALargeUnsignedValueDoesNotWrapIntoARangeWithANegativeMinimum) {
  Document document("[18446744073709551615]");
  Failure failure = Refusal([&] { ReadInteger(document.root().Element(0), -10, 10); });
  EXPECT_EQ(failure.message, "expected an integer from -10 to 10, got 18446744073709551615");
}

TEST(ReadText, RefusesEmptyTextAndControlCharacters) {
  Document document(R"(["one line", "", "two\nlines", 7])");
  Node root = document.root();
  EXPECT_EQ(ReadText(root.Element(0)), "one line");
  EXPECT_EQ(Refusal([&] { ReadText(root.Element(1)); }).message,
            "expected a non-empty string, got \"\"");
  EXPECT_EQ(Refusal([&] { ReadText(root.Element(2)); }).message,
            "expected one line of text without control characters, got \"two\\u000alines\"");
  EXPECT_EQ(Refusal([&] { ReadText(root.Element(3)); }).message,
            "expected a non-empty string, got 7");
}

TEST(ReadName, RefusesWhatDoesNotMatchThePattern) {
  Document document(R"(["fuse-1", "Fuse", "-a"])");
  Node root = document.root();
  EXPECT_EQ(ReadName(root.Element(0), "a step name"), "fuse-1");
  EXPECT_EQ(Refusal([&] { ReadName(root.Element(1), "a step name"); }).message,
            "expected a step name matching ^[a-z0-9][a-z0-9-]{0,63}$, got \"Fuse\"");
  EXPECT_EQ(Refusal([&] { ReadName(root.Element(2), "a role name"); }).pointer, "/2");
}

TEST(ReadBool, RefusesEverythingButTrueAndFalse) {
  Document document(R"([true, false, 1, "true"])");
  Node root = document.root();
  EXPECT_TRUE(ReadBool(root.Element(0)));
  EXPECT_FALSE(ReadBool(root.Element(1)));
  EXPECT_EQ(Refusal([&] { ReadBool(root.Element(2)); }).message, "expected true or false, got 1");
  EXPECT_EQ(Refusal([&] { ReadBool(root.Element(3)); }).message,
            "expected true or false, got \"true\"");
}

TEST(ReadChoice, ReturnsTheNamedValueAndListsTheNamesOtherwise) {
  const NameTable<int> kTable = {{"reply", 1}, {"never", 2}};
  Document document(R"(["never", "always", 2])");
  Node root = document.root();
  EXPECT_EQ(ReadChoice(root.Element(0), kTable), 2);
  EXPECT_EQ(Refusal([&] { ReadChoice(root.Element(1), kTable); }).message,
            "expected one of \"reply\", \"never\", got \"always\"");
  EXPECT_EQ(Refusal([&] { ReadChoice(root.Element(2), kTable); }).message,
            "expected one of \"reply\", \"never\", got 2");
}

TEST(ReadKeyword, ReturnsTheKeywordAndListsTheKeywordsOtherwise) {
  Document document(R"(["mean", "median"])");
  Node root = document.root();
  EXPECT_EQ(ReadKeyword(root.Element(0), {"each_second", "mean"}), "mean");
  EXPECT_EQ(Refusal([&] {
              ReadKeyword(root.Element(1), {"each_second", "mean"});
            }).message,
            "expected one of \"each_second\", \"mean\", got \"median\"");
}

TEST(ReadSignalName, AcceptsOnlyFullNamesInTheProbesSpelling) {
  Document document(R"(["SIGKILL", "KILL", "SIGFOO", 9])");
  Node root = document.root();
  EXPECT_EQ(ReadSignalName(root.Element(0)), "SIGKILL");
  for (std::size_t i = 1; i < 4; ++i) {
    Failure failure = Refusal([&] { ReadSignalName(root.Element(i)); });
    EXPECT_EQ(failure.pointer, "/" + std::to_string(i));
    EXPECT_TRUE(failure.message.starts_with("expected a signal name such as \"SIGKILL\", got "))
        << failure.message;
  }
}

TEST(ReadArray, RefusesAnEmptyArrayUnlessTheShapeAllowsIt) {
  Document document(R"({"steps": [], "list": [1, 2], "text": "x"})");
  Node root = document.root();
  Failure empty = Refusal([&] { ReadArray(root.Child("steps"), {"step objects", "step"}); });
  EXPECT_EQ(empty.pointer, "/steps");
  EXPECT_EQ(empty.message, "expected at least one step, got []");
  EXPECT_TRUE(ReadArray(root.Child("steps"), {"step objects", "step", true}).empty());
  std::vector<Node> elements = ReadArray(root.Child("list"), {"numbers", "number"});
  ASSERT_EQ(elements.size(), 2U);
  EXPECT_EQ(elements[1].pointer, "/list/1");
  EXPECT_EQ(Refusal([&] {
              ReadArray(root.Child("text"), {"numbers", "number"});
            }).message,
            "expected an array of numbers, got \"x\"");
}

TEST(Uniqueness, RefusesASecondOccurrenceNamingTheFirst) {
  Document document(R"(["a", "b", "a"])");
  Node root = document.root();
  Uniqueness roles;
  roles.Add(root.Element(0), "a", "role");
  roles.Add(root.Element(1), "b", "role");
  Failure failure = Refusal([&] { roles.Add(root.Element(2), "a", "role"); });
  EXPECT_EQ(failure.pointer, "/2");
  EXPECT_EQ(failure.message, "duplicate role \"a\" (already at /0)");
}

TEST(Uniqueness, WithoutAWhatNamesOnlyTheKey) {
  Document document(R"(["SIGKILL", "SIGKILL"])");
  Uniqueness unique;
  unique.Add(document.root().Element(0), "SIGKILL");
  EXPECT_EQ(Refusal([&] { unique.Add(document.root().Element(1), "SIGKILL"); }).message,
            "duplicate \"SIGKILL\" (already at /0)");
}

TEST(ReadRelativePath, AcceptsAPathBelowTheRunDirectory) {
  Document document(R"(["mnt", "mnt/fuse/file.txt", "..a/b..", ".hidden"])");
  Node root = document.root();
  EXPECT_EQ(ReadRelativePath(root.Element(0)), "mnt");
  EXPECT_EQ(ReadRelativePath(root.Element(1)), "mnt/fuse/file.txt");
  EXPECT_EQ(ReadRelativePath(root.Element(2)), "..a/b..");
  EXPECT_EQ(ReadRelativePath(root.Element(3)), ".hidden");
}

TEST(ReadRelativePath, RefusesPathsThatLeaveOrDoNotNameAPlaceInTheRunDirectory) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty"},
      {"/etc/passwd", "absolute"},
      {"a//b", "empty component"},
      {"a/", "empty component"},
      {"a/../../b", "\"..\" component"},
      {"..", "\"..\" component"},
      {"./a", "\".\" component"},
      {"a\tb", "control character"},
      {std::string(1025, 'a'), "longer than 1024 bytes"},
      {"a/" + std::string(256, 'b'), "component longer than 255 bytes"},
  };
  for (const auto& [path, why] : cases) {
    Json document = Json::array({path});
    Failure failure = Refusal([&] { ReadRelativePath(Node{&document, ""}.Element(0)); });
    EXPECT_EQ(failure.pointer, "/0") << path;
    EXPECT_EQ(failure.message, "expected a relative path inside the run directory, got " +
                                   Quote(path) + " (" + why + ")");
  }
}

TEST(ReadRelativePath, RefusesANonString) {
  Document document("[1]");
  EXPECT_EQ(Refusal([&] { ReadRelativePath(document.root().Element(0)); }).message,
            "expected a relative path inside the run directory, got 1");
}

TEST(NamePredicates, IsNameFollowsThePattern) {
  EXPECT_TRUE(IsName("a"));
  EXPECT_TRUE(IsName("0fuse-daemon-"));
  EXPECT_TRUE(IsName(std::string(64, 'x')));
  EXPECT_FALSE(IsName(std::string(65, 'x')));
  EXPECT_FALSE(IsName(""));
  EXPECT_FALSE(IsName("-a"));
  EXPECT_FALSE(IsName("Fuse"));
  EXPECT_FALSE(IsName("a_b"));
}

TEST(NamePredicates, SyscallNamesAndGroupsAreSpelledAsTheKernelAndSystemdSpellThem) {
  EXPECT_TRUE(IsSyscallName("setrlimit"));
  EXPECT_TRUE(IsSyscallName("_llseek"));
  EXPECT_TRUE(IsSyscallName("epoll_wait2"));
  EXPECT_FALSE(IsSyscallName(""));
  EXPECT_FALSE(IsSyscallName("Open"));
  EXPECT_FALSE(IsSyscallName("@resources"));
  EXPECT_TRUE(IsSyscallGroup("@system-service"));
  EXPECT_TRUE(IsSyscallGroup("@resources"));
  EXPECT_FALSE(IsSyscallGroup("@"));
  EXPECT_FALSE(IsSyscallGroup("@-x"));
  EXPECT_FALSE(IsSyscallGroup("resources"));
  EXPECT_FALSE(IsSyscallGroup("@System"));
}

TEST(NamePredicates, CIdentifiersAndLowerHex) {
  EXPECT_TRUE(IsCIdentifier("fuse_flush"));
  EXPECT_TRUE(IsCIdentifier("_do_fork"));
  EXPECT_FALSE(IsCIdentifier("2fast"));
  EXPECT_FALSE(IsCIdentifier("pipe_write.isra.0"));
  EXPECT_FALSE(IsCIdentifier(""));
  EXPECT_TRUE(IsLowerHex("0123abcdef"));
  EXPECT_FALSE(IsLowerHex("ABC"));
  EXPECT_FALSE(IsLowerHex("g"));
}

TEST(NamePredicates, ControlCharactersAreBelowSpaceAndDel) {
  EXPECT_FALSE(HasControlCharacter("plain text \xC3\xA9"));
  EXPECT_TRUE(HasControlCharacter("a\tb"));
  EXPECT_TRUE(HasControlCharacter(std::string("a\0b", 3)));
  EXPECT_TRUE(HasControlCharacter("a\x7F"));
}

TEST(PathsOverlap, ComparesWholeComponents) {
  EXPECT_TRUE(PathsOverlap("mnt", "mnt"));
  EXPECT_TRUE(PathsOverlap("mnt", "mnt/fuse"));
  EXPECT_TRUE(PathsOverlap("mnt/fuse", "mnt"));
  EXPECT_FALSE(PathsOverlap("mnt", "mnt2"));
  EXPECT_FALSE(PathsOverlap("a/b", "a/c"));
}

TEST(Join, SeparatesItemsAndLeavesASingleItemAlone) {
  EXPECT_EQ(Join({}, ", "), "");
  EXPECT_EQ(Join({"a"}, ", "), "a");
  EXPECT_EQ(Join({"a", "b", "c"}, " | "), "a | b | c");
}

TEST(ResourceLimits, MapNamesToTheirNumbersInNameOrder) {
  EXPECT_EQ(Lookup(ResourceLimits(), "RLIMIT_NOFILE"), RLIMIT_NOFILE);
  EXPECT_EQ(Lookup(ResourceLimits(), "RLIMIT_STACK"), RLIMIT_STACK);
  EXPECT_EQ(Lookup(ResourceLimits(), "NOFILE"), std::nullopt);
  EXPECT_TRUE(RlimitNames().starts_with("RLIMIT_AS, RLIMIT_CORE, RLIMIT_CPU, "));
  EXPECT_TRUE(RlimitNames().ends_with(", RLIMIT_STACK"));
}

}  // namespace
}  // namespace wedge::scenario::reader
