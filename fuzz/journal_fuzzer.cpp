// libFuzzer target for the journal parser (wedge::sys::ParseJournal) and the replay scope
// (wedge::sys::UndoScope::Check): `wedge cleanup` and every `wedge run` parse whatever journal a
// killed wedge left behind, torn lines included, and check each entry against what wedge could
// have done before undoing it. For any text: no crash and no exception; every malformed entry
// carries a message; every well-formed one writes back to the line it came from (ToJson and
// FromJson agree) and is either in scope or refused with a message. Neither parsing nor the
// check touches the host; build and run it with ci/fuzz.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>

#include "wedge/sys/journal.h"

namespace {

[[noreturn]] void Broken(const char* what) {
  std::fprintf(stderr, "journal_fuzzer: %s\n", what);
  std::abort();
}

// A scope such as a host's, without reading the host: the fuzzer must not depend on it.
const wedge::sys::UndoScope& Scope() {
  static const wedge::sys::UndoScope scope{
      "/run/wedge",
      "/proc/sys",
      {"fs.pipe-user-pages-soft", "fs.pipe-user-pages-hard", "fs.pipe-max-size"},
      {"/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified"},
      "/var/cache/wedge/stacks"};
  return scope;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    for (const wedge::sys::JournalEntry& entry : wedge::sys::ParseJournal(text)) {
      if (!entry.change.ok()) {
        if (entry.change.error().message().empty()) Broken("an entry's error has no message");
        continue;
      }
      wedge::sys::JournalEntry again =
          wedge::sys::FromJson(wedge::sys::ToJson(entry.seq, *entry.change));
      if (again.seq != entry.seq || !again.change.ok() || !(*again.change == *entry.change)) {
        Broken("an entry does not come back from the line ToJson writes for it");
      }
      wedge::Status in_scope = Scope().Check(*entry.change);
      if (!in_scope.ok() && in_scope.error().message().empty()) {
        Broken("a refusal without a message");
      }
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "journal_fuzzer: threw: %s\n", error.what());
    std::abort();
  } catch (...) {
    Broken("threw a non-std exception");
  }
  return 0;
}
