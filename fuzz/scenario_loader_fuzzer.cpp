// libFuzzer target for the scenario loader (issue 6, item 3): any bytes at all must give either
// a scenario or a LoadError, never a crash, a hang or undefined behaviour. ParseScenario is pure:
// it never touches the host, so the fuzzer can run anywhere. Build and run it with ci/fuzz.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "wedge/scenario/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto loaded = wedge::scenario::ParseScenario(text, "fuzz.json");
  if (auto* error = std::get_if<wedge::scenario::LoadError>(&loaded)) {
    // The message is part of the contract: building it must be safe too.
    (void)error->ToString();
  }
  return 0;
}
