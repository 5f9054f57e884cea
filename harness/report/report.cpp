#include "wedge/report/report.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "report_internal.h"

namespace wedge::report::internal {

namespace {

std::string Quoted(const std::filesystem::path& path) { return "'" + path.string() + "'"; }

// Closes the temporary file and removes it unless it was renamed into place.
class TemporaryFile {
 public:
  TemporaryFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  ~TemporaryFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!renamed_) ::unlink(path_.c_str());
  }

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  Status Close() {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return ErrnoError("close('" + path_ + "')");
    return OkStatus();
  }
  void MarkRenamed() { renamed_ = true; }

 private:
  int fd_;
  std::string path_;
  bool renamed_ = false;
};

}  // namespace

Status WriteFileAtomically(const std::filesystem::path& file, std::string_view content) {
  std::filesystem::path directory = file.parent_path();
  if (directory.empty()) directory = ".";
  std::string name_template = (directory / ("." + file.filename().string() + ".XXXXXX")).string();
  int fd = ::mkstemp(name_template.data());
  if (fd < 0) return ErrnoError("mkstemp(" + Quoted(name_template) + ")");
  TemporaryFile temporary(fd, name_template);

  // mkstemp creates the file 0600; a report is meant to be read by CI and other users.
  if (::fchmod(temporary.fd(), 0644) != 0) {
    return ErrnoError("fchmod(" + Quoted(temporary.path()) + ", 0644)");
  }
  std::size_t written = 0;
  while (written < content.size()) {
    ssize_t n = ::write(temporary.fd(), content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write(" + Quoted(temporary.path()) + ")");
    }
    written += static_cast<std::size_t>(n);
  }
  // Without fsync before rename, a crash can leave an empty file under the final name.
  if (::fsync(temporary.fd()) != 0) return ErrnoError("fsync(" + Quoted(temporary.path()) + ")");
  WEDGE_RETURN_IF_ERROR(temporary.Close());
  if (::rename(temporary.path().c_str(), file.c_str()) != 0) {
    return ErrnoError("rename(" + Quoted(temporary.path()) + ", " + Quoted(file) + ")");
  }
  temporary.MarkRenamed();
  // Makes the rename itself durable; the report is already complete if this fails.
  int directory_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory_fd >= 0) {
    ::fsync(directory_fd);
    ::close(directory_fd);
  }
  return OkStatus();
}

const signature::MatchResult& VerdictMatch(const RunResult& result) {
  return result.decisive == DecisiveSignature::kHealthy ? result.healthy_match : result.bug_match;
}

std::string FormatMismatch(const signature::Mismatch& mismatch) {
  std::string where = mismatch.role.empty() ? mismatch.field : mismatch.role + "." + mismatch.field;
  return where + ": expected " + mismatch.expected + "; observed " + mismatch.observed;
}

std::vector<std::string> DiffLines(const RunResult& result) {
  std::vector<std::string> lines;
  if (result.verdict != result.expected) {
    lines.push_back("expected " + std::string(scenario::VerdictName(result.expected)) + ", got " +
                    std::string(scenario::VerdictName(result.verdict)));
  }
  if (!result.reason.empty()) lines.push_back("reason: " + result.reason);
  if (result.error) lines.push_back("error: " + *result.error);
  if (result.verdict != result.expected) {
    auto add_signature = [&lines](std::string_view name, const signature::MatchResult& match) {
      if (match.matched) {
        lines.push_back(std::string(name) + " signature: matched");
        return;
      }
      lines.push_back(std::string(name) + " signature: " + std::to_string(match.mismatches.size()) +
                      (match.mismatches.size() == 1 ? " mismatch" : " mismatches"));
      for (const signature::Mismatch& mismatch : match.mismatches) {
        lines.push_back("  " + FormatMismatch(mismatch));
      }
    };
    add_signature("bug", result.bug_match);
    add_signature("healthy", result.healthy_match);
  }
  if (!result.host_clean) {
    lines.push_back(result.host_leftovers.empty() ? "host not clean after teardown"
                                                  : "host not clean after teardown, left behind:");
    for (const std::string& leftover : result.host_leftovers) lines.push_back("  " + leftover);
  }
  return lines;
}

std::string FormatSeconds(std::int64_t milliseconds) {
  if (milliseconds < 0) milliseconds = 0;
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%" PRId64 ".%03" PRId64, milliseconds / 1000,
                milliseconds % 1000);
  return buffer;
}

std::string Hex16(std::uint64_t value) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016" PRIx64, value);
  return buffer;
}

std::string Join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string joined;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) joined += separator;
    joined += parts[i];
  }
  return joined;
}

}  // namespace wedge::report::internal
