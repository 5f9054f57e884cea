// libFuzzer target for the journal parser (wedge::sys::ParseJournal): `wedge cleanup` and every
// `wedge run` parse whatever journal a killed wedge left behind, torn lines included, so any
// text must give entries or an error, never a crash or an exception. Parsing touches nothing on
// the host; build and run it with ci/fuzz.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>

#include "wedge/sys/journal.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto entries = wedge::sys::ParseJournal(text);
    if (entries.ok()) {
      (void)entries->size();
    } else if (entries.error().message().empty()) {
      std::fprintf(stderr, "journal_fuzzer: an error without a message\n");
      std::abort();
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "journal_fuzzer: ParseJournal threw: %s\n", error.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "journal_fuzzer: ParseJournal threw a non-std exception\n");
    std::abort();
  }
  return 0;
}
