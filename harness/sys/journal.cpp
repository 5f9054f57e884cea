#include "wedge/sys/journal.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "wedge/sys/cgroup.h"
#include "wedge/sys/files.h"
#include "wedge/sys/mount.h"
#include "wedge/sys/process.h"

namespace wedge::sys {
namespace {

Status RemoveRunDirectory(const std::filesystem::path& path, std::vector<std::string>& log) {
  // Only ever a run directory: STATE_DIR/runs/RUN_ID, absolute, without "..".
  if (!path.is_absolute() || path.parent_path().filename() != "runs" ||
      path.lexically_normal() != path) {
    return Error("refusing to remove '" + path.string() + "': not a wedge run directory");
  }
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return OkStatus();
  std::filesystem::remove_all(path, ec);
  if (ec) return Error("remove_all('" + path.string() + "'): " + ec.message());
  log.push_back("removed " + path.string());
  return OkStatus();
}

}  // namespace

std::filesystem::path DefaultStateDirectory() {
  const char* override_dir = std::getenv("WEDGE_STATE_DIR");
  return override_dir != nullptr && *override_dir != '\0' ? override_dir : "/run/wedge";
}

Status UndoEntry(const JournalEntry& entry, std::vector<std::string>& log) {
  const nlohmann::json& d = entry.data;
  try {
    if (entry.kind == "directory") return RemoveRunDirectory(d.at("path").get<std::string>(), log);
    if (entry.kind == "cgroup") {
      std::filesystem::path directory =
          std::filesystem::path(d.at("mount").get<std::string>()) / d.at("path").get<std::string>();
      return DestroyCgroup(directory, log);
    }
    if (entry.kind == "mount") {
      return UnmountIfMounted(d.at("target").get<std::string>(), d.at("fstype").get<std::string>(),
                              log);
    }
    if (entry.kind == "sysctl") {
      std::filesystem::path path = d.at("path").get<std::string>();
      std::string old_value = d.at("old").get<std::string>();
      Result<std::string> now = ReadFile(path);
      if (now.ok() && TrimTrailing(*now) == old_value) return OkStatus();
      WEDGE_RETURN_IF_ERROR(WriteExisting(path, old_value));
      log.push_back("restored " + d.at("name").get<std::string>() + " = " + old_value);
      return OkStatus();
    }
    if (entry.kind == "cgroup-tree") return DestroyCgroupTree(d.at("name").get<std::string>(), log);
    if (entry.kind == "process") {
      pid_t pid = d.at("pid").get<pid_t>();
      if (IsSameProcess(pid, d.at("start_time").get<std::uint64_t>())) {
        ::kill(pid, SIGKILL);
        log.push_back("killed process " + std::to_string(pid));
      }
      return OkStatus();
    }
  } catch (const nlohmann::json::exception& e) {
    return Error("journal entry " + std::to_string(entry.seq) + " (" + entry.kind +
                 "): " + e.what());
  }
  return Error("journal entry " + std::to_string(entry.seq) + ": unknown kind '" + entry.kind +
               "'");
}

Result<std::vector<JournalEntry>> ParseJournal(std::string_view text) {
  std::vector<JournalEntry> entries;
  std::istringstream lines{std::string(text)};
  std::string line;
  int line_number = 0;
  while (std::getline(lines, line)) {
    ++line_number;
    if (line.empty()) continue;
    nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded() || !record.is_object()) {
      // A line torn by a crash mid-write can only be the last one; its change was never made.
      if (lines.peek() == EOF) break;
      return Error("journal line " + std::to_string(line_number) + " is not JSON");
    }
    if (record.contains("undone")) {
      std::uint64_t seq = record["undone"].get<std::uint64_t>();
      std::erase_if(entries, [seq](const JournalEntry& e) { return e.seq == seq; });
      continue;
    }
    entries.push_back({record.at("seq").get<std::uint64_t>(), record.at("kind").get<std::string>(),
                       record.at("data")});
  }
  return entries;
}

Result<std::unique_ptr<Journal>> Journal::Create(const std::filesystem::path& state_dir,
                                                 const std::string& run_id) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir / "journal", ec);
  if (ec)
    return Error("create_directories('" + (state_dir / "journal").string() + "'): " + ec.message());
  std::filesystem::path path = state_dir / "journal" / (run_id + ".jsonl");
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoError("open('" + path.string() + "', O_CREAT|O_EXCL)");
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0)
    return ErrnoError("flock('" + path.string() + "')");
  return std::unique_ptr<Journal>(new Journal(std::move(path), run_id, std::move(fd)));
}

Journal::Journal(std::filesystem::path path, std::string run_id, UniqueFd fd)
    : path_(std::move(path)), run_id_(std::move(run_id)), fd_(std::move(fd)) {}

Journal::~Journal() {
  (void)UndoAll();
  if (Pending().empty()) ::unlink(path_.c_str());
}

Status Journal::Append(const nlohmann::json& line) {
  std::string text = line.dump() + "\n";
  if (::write(fd_.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoError("write('" + path_.string() + "')");
  }
  if (::fdatasync(fd_.get()) != 0) return ErrnoError("fdatasync('" + path_.string() + "')");
  return OkStatus();
}

Result<std::uint64_t> Journal::Record(std::string_view kind, nlohmann::json data) {
  std::uint64_t seq = entries_.size() + 1;
  WEDGE_RETURN_IF_ERROR(Append({{"seq", seq}, {"kind", kind}, {"data", data}}));
  entries_.push_back({seq, std::string(kind), std::move(data)});
  undone_.push_back(false);
  return seq;
}

Status Journal::Undo(std::uint64_t seq) {
  if (seq == 0 || seq > entries_.size() || undone_[seq - 1]) return OkStatus();
  WEDGE_RETURN_IF_ERROR(UndoEntry(entries_[seq - 1], undo_log_));
  undone_[seq - 1] = true;
  return Append({{"undone", seq}});
}

Status Journal::Forget(std::uint64_t seq) {
  if (seq == 0 || seq > entries_.size() || undone_[seq - 1]) return OkStatus();
  undone_[seq - 1] = true;
  return Append({{"undone", seq}, {"kept", true}});
}

Status Journal::UndoAll() {
  Status first;
  for (std::uint64_t seq = entries_.size(); seq >= 1; --seq) {
    Status status = Undo(seq);
    if (!status.ok() && first.ok()) first = status;
  }
  return first;
}

std::vector<JournalEntry> Journal::Pending() const {
  std::vector<JournalEntry> pending;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (!undone_[i]) pending.push_back(entries_[i]);
  }
  return pending;
}

Result<std::vector<std::string>> RecoverOrphanJournals(const std::filesystem::path& state_dir) {
  std::vector<std::string> log;
  std::error_code ec;
  std::vector<std::filesystem::path> journals;
  for (const auto& file : std::filesystem::directory_iterator(state_dir / "journal", ec)) {
    if (file.path().extension() == ".jsonl") journals.push_back(file.path());
  }
  std::sort(journals.begin(), journals.end());
  Status first;
  for (const auto& path : journals) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
    if (!fd.valid()) continue;
    // A live wedge holds its journal's lock: leave its journal alone. A killed wedge's lock can
    // outlive it for a moment, in a child it cloned that has not yet run to drop its copy of
    // the descriptor: give the lock a little while before deciding its owner is alive.
    bool locked = false;
    for (int attempt = 0; attempt < 30 && !locked; ++attempt) {
      locked = ::flock(fd.get(), LOCK_EX | LOCK_NB) == 0;
      if (!locked) ::usleep(10000);
    }
    if (!locked) continue;
    // A run that ended while this one waited for the lock removed its journal before letting go
    // of it: the lock is then on an unlinked file, with nothing left to undo.
    struct stat st {};
    if (::fstat(fd.get(), &st) == 0 && st.st_nlink == 0) continue;
    WEDGE_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
    Result<std::vector<JournalEntry>> entries = ParseJournal(text);
    if (!entries.ok()) {
      if (first.ok()) first = entries.error().WithContext(path.string());
      continue;
    }
    bool all_undone = true;
    for (auto it = entries->rbegin(); it != entries->rend(); ++it) {
      Status status = UndoEntry(*it, log);
      if (status.ok()) {
        std::string line = nlohmann::json{{"undone", it->seq}}.dump() + "\n";
        (void)!::write(fd.get(), line.data(), line.size());
      } else {
        all_undone = false;
        if (first.ok()) first = status.error().WithContext(path.string());
      }
    }
    if (all_undone) {
      ::unlink(path.c_str());
      log.push_back("replayed journal " + path.filename().string());
    }
  }
  if (!first.ok()) return first.error();
  return log;
}

Result<RunLock> RunLock::Acquire(const std::filesystem::path& state_dir,
                                 const std::function<void(const std::string&)>& notice) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  std::filesystem::path path = state_dir / "run.lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoError("open('" + path.string() + "')");
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return ErrnoError("flock('" + path.string() + "')");
    Result<std::string> holder = ReadFile(path);
    notice("another wedge run (pid " + (holder.ok() ? TrimTrailing(*holder) : "?") + ") holds " +
           path.string() + "; waiting for it to finish");
    while (::flock(fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) return ErrnoError("flock('" + path.string() + "')");
      if (Interrupted()) return Error("interrupted while waiting for " + path.string());
    }
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  (void)!::ftruncate(fd.get(), 0);
  (void)!::pwrite(fd.get(), pid.data(), pid.size(), 0);
  return RunLock(std::move(fd));
}

}  // namespace wedge::sys
