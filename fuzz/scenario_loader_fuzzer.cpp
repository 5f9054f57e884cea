// libFuzzer target for the scenario loader: any bytes at all must give either a scenario or a
// LoadError, never a crash, a hang or undefined behaviour, through both entry points. Loading
// never touches the host beyond reading the input back from a memfd, so the fuzzer runs
// anywhere. Build and run it with ci/fuzz.
//
// Checked for every input (all below the 1 MiB limit: ci/fuzz caps them at 64 KiB):
//   - ParseScenario on the text and LoadScenarioFile on a file holding it agree: both accept, or
//     both refuse with the same error (for one input in 16: see below);
//   - an error's pointer is a well-formed RFC 6901 pointer; when the text is a JSON document, it
//     names a value of it, or a missing key of an object of it (a required key that is absent
//     points at its object, a default that conflicts points at the key it would have);
//   - an error's message, and its one-line form, are UTF-8;
//   - a scenario accepted stays accepted when its document is reformatted (indent 2).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <variant>

#include "wedge/scenario/json_document.h"
#include "wedge/scenario/scenario.h"

namespace {

using wedge::scenario::Json;
using wedge::scenario::LoadError;
using wedge::scenario::Scenario;

[[noreturn]] void Broken(const std::string& what) {
  std::fprintf(stderr, "scenario_loader_fuzzer: %s\n", what.c_str());
  std::abort();
}

// A memfd, opened once, that holds the current input; LoadScenarioFile reads it by path.
struct InputFile {
  int fd = -1;
  std::string path;
  InputFile() {
    fd = memfd_create("scenario.json", MFD_CLOEXEC);
    if (fd < 0) Broken("memfd_create failed");
    path = "/proc/self/fd/" + std::to_string(fd);
  }
  void Hold(std::string_view text) const {
    if (ftruncate(fd, 0) != 0) Broken("ftruncate failed");
    std::size_t written = 0;
    while (written < text.size()) {
      const ssize_t count =
          pwrite(fd, text.data() + written, text.size() - written, static_cast<off_t>(written));
      if (count <= 0) Broken("pwrite failed");
      written += static_cast<std::size_t>(count);
    }
  }
};

bool IsUtf8(std::string_view text) { return !wedge::scenario::FirstInvalidUtf8(text); }

bool SameError(const LoadError& a, const LoadError& b) {
  return a.file == b.file && a.pointer == b.pointer && a.message == b.message && a.line == b.line &&
         a.column == b.column;
}

void CheckPointer(const LoadError& error, const Json* document) {
  Json::json_pointer pointer;
  try {
    pointer = Json::json_pointer(error.pointer);
  } catch (const Json::exception&) {
    Broken("malformed pointer \"" + error.pointer + "\" in: " + error.ToString());
  }
  if (document == nullptr || document->contains(pointer)) return;
  if (!pointer.empty()) {
    const Json::json_pointer parent = pointer.parent_pointer();
    if (document->contains(parent) && document->at(parent).is_object()) return;
  }
  Broken("the pointer names nothing in the document: " + error.ToString());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const InputFile input;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = wedge::scenario::ParseScenario(text, input.path);

  // Reading the file back costs twenty parses (LoadScenarioFile reads into a buffer of the
  // limit), so one input in 16, picked by its hash so a crash reproduces, takes that path.
  if (std::hash<std::string_view>{}(text) % 16 == 0) {
    input.Hold(text);
    auto loaded = wedge::scenario::LoadScenarioFile(input.path);
    if (parsed.index() != loaded.index()) {
      Broken(std::string("ParseScenario ") + (parsed.index() == 0 ? "accepts" : "refuses") +
             " what LoadScenarioFile " + (loaded.index() == 0 ? "accepts" : "refuses"));
    }
    if (auto* error = std::get_if<LoadError>(&parsed);
        error != nullptr && !SameError(*error, std::get<LoadError>(loaded))) {
      Broken("the entry points refuse differently: " + error->ToString() + " | " +
             std::get<LoadError>(loaded).ToString());
    }
    if (auto* scenario = std::get_if<Scenario>(&parsed);
        scenario != nullptr && scenario->name != std::get<Scenario>(loaded).name) {
      Broken("the entry points accept different scenarios");
    }
  }

  auto document = wedge::scenario::ParseJsonDocument(text);
  const Json* json = std::get_if<Json>(&document);
  if (auto* error = std::get_if<LoadError>(&parsed)) {
    if (error->message.empty()) Broken("an error without a message");
    if (!IsUtf8(error->message) || !IsUtf8(error->ToString())) {
      Broken("an error message that is not UTF-8 at " + error->pointer);
    }
    CheckPointer(*error, json);
    return 0;
  }

  if (json == nullptr) Broken("a scenario accepted from text that is not a JSON document");
  const std::string reformatted = json->dump(2);
  if (reformatted.size() <= wedge::scenario::kMaxDocumentBytes) {
    auto again = wedge::scenario::ParseScenario(reformatted, input.path);
    if (auto* error = std::get_if<LoadError>(&again)) {
      Broken("the reformatted scenario is refused: " + error->ToString());
    }
  }
  return 0;
}
