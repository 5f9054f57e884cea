// Readers of live tasks under /proc.
#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "wedge/base/unique_fd.h"
#include "wedge/probe/pipe.h"
#include "wedge/probe/task.h"

namespace wedge::probe {
namespace {

// Owns one DIR stream.
class ScopedDir {
 public:
  explicit ScopedDir(DIR* dir) : dir_(dir) {}
  ScopedDir(const ScopedDir&) = delete;
  ScopedDir& operator=(const ScopedDir&) = delete;
  ~ScopedDir() {
    if (dir_ != nullptr) closedir(dir_);
  }
  DIR* get() const { return dir_; }

 private:
  DIR* dir_;
};

// A task or process that exited while being read: its /proc entry is gone (ENOENT) or the
// entry outlived the task (ESRCH from a read).
bool IsGone(int error) { return error == ENOENT || error == ESRCH; }

// Errors that leave one /proc file unreadable without saying anything about the others:
// zombies have no mm or files, and stack, syscall and fd need ptrace access.
bool IsTolerated(int error) {
  return error == ENOENT || error == ESRCH || error == EACCES || error == EPERM;
}

std::string ProcessDir(std::string_view proc_root, pid_t pid) {
  return std::string(proc_root) + "/" + std::to_string(pid);
}

std::string TaskDir(std::string_view proc_root, pid_t pid, pid_t tid) {
  return ProcessDir(proc_root, pid) + "/task/" + std::to_string(tid);
}

// Reads a whole file into `out`. Returns 0 or the errno of the failing call.
int ReadWholeFile(const std::string& path, std::string& out) {
  out.clear();
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return errno;
  char buffer[4096];
  while (true) {
    const ssize_t n = read(fd.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return 0;
    out.append(buffer, static_cast<size_t>(n));
  }
}

// Reads up to `capacity` bytes of a one-record /proc file into `buffer`. Returns the byte count
// (== capacity when the file may be longer), or -errno.
ssize_t ReadIntoBuffer(const char* path, char* buffer, size_t capacity) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  // stat, status and wchan are single_open seq files: the first read returns the whole text when
  // it fits, so a short read is the end and the usual read-until-0 costs a syscall for nothing.
  ssize_t n;
  do {
    n = read(fd, buffer, capacity);
  } while (n < 0 && errno == EINTR);
  const int error = errno;
  close(fd);
  return n < 0 ? -error : n;
}

template <typename T>
bool ParseDecimal(std::string_view text, T& out) {
  if (text.empty()) return false;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end == text.data() + text.size();
}

// The numeric entries of a directory such as /proc/PID/task or /proc/PID/fd, ascending.
// Returns 0 or the errno of opendir.
int ListNumericEntries(const std::string& path, std::vector<int>& out) {
  out.clear();
  ScopedDir dir(opendir(path.c_str()));
  if (dir.get() == nullptr) return errno;
  while (const dirent* entry = readdir(dir.get())) {
    int value = 0;
    if (ParseDecimal(std::string_view(entry->d_name), value)) out.push_back(value);
  }
  std::sort(out.begin(), out.end());
  return 0;
}

std::string_view TrimNewlines(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  return text;
}

// Reads and parses DIR/status; on failure `failed_errno` holds the errno of the read (0 when
// the text did not parse).
Result<TaskStatus> ReadStatusImpl(const std::string& dir, int& failed_errno) {
  failed_errno = 0;
  const std::string status_path = dir + "/status";
  std::string text;
  if (int error = ReadWholeFile(status_path, text); error != 0) {
    failed_errno = error;
    return ErrnoError("read('" + status_path + "')", error);
  }
  Result<TaskStatus> status = ParseStatus(text);
  if (!status.ok()) return status.error().WithContext(status_path);
  return status;
}

// Reads one task; on failure `failed_errno` holds the errno of the call that failed (0 when
// the text did not parse).
Result<TaskSnapshot> ReadTaskImpl(pid_t pid, pid_t tid, std::string_view proc_root,
                                  int& failed_errno) {
  failed_errno = 0;
  const std::string dir = TaskDir(proc_root, pid, tid);
  TaskSnapshot task;
  task.tid = tid;
  std::string text;

  Result<TaskStatus> status = ReadStatusImpl(dir, failed_errno);
  if (!status.ok()) return status.error();
  task.status = std::move(status).value();

  const std::string stat_path = dir + "/stat";
  if (int error = ReadWholeFile(stat_path, text); error != 0) {
    failed_errno = error;
    return ErrnoError("read('" + stat_path + "')", error);
  }
  Result<TaskStat> stat = ParseStat(text);
  if (!stat.ok()) return stat.error().WithContext(stat_path);
  task.stat = std::move(stat).value();

  // wchan, stack and syscall are best effort: stack needs CAP_SYS_ADMIN, stack and syscall need
  // ptrace access, and a zombie or exiting task may refuse them.
  if (ReadWholeFile(dir + "/wchan", text) == 0) task.wchan = std::string(TrimNewlines(text));
  if (ReadWholeFile(dir + "/stack", text) == 0) {
    task.stack_text = text;
    task.stack = ParseStack(text);
  }
  if (ReadWholeFile(dir + "/syscall", text) == 0) {
    task.syscall_text = text;
    Result<SyscallState> syscall = ParseSyscall(text);
    if (syscall.ok()) task.syscall = *syscall;
  }
  return task;
}

// The first unread bytes (at most kPipeHeadBytes) of the pipe open as `fd` in process `pid`,
// left in place: tee(2) duplicates pipe buffers into another pipe without consuming them. tee
// needs a readable end, and the target's descriptor may be the write end (a child's stderr), so
// the pipe is opened again for reading through /proc/PID/fd/FD (O_NONBLOCK: no wait for a
// writer); the extra reader is closed before returning. Empty when the pipe cannot be reopened
// or holds nothing.
std::string PeekPipeHead(pid_t pid, int fd) {
  UniqueFd reader(open(("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd)).c_str(),
                       O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (reader.get() < 0) return {};
  int ends[2];
  if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) != 0) return {};
  UniqueFd read_end(ends[0]);
  UniqueFd write_end(ends[1]);
  ssize_t copied = tee(reader.get(), write_end.get(), kPipeHeadBytes, SPLICE_F_NONBLOCK);
  if (copied <= 0) return {};
  std::string head(static_cast<std::size_t>(copied), '\0');
  ssize_t got = read(read_end.get(), head.data(), head.size());
  head.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  return head;
}

// Measures each pipe in `fds` through copies of the target's descriptors.
void PeekPipes(pid_t pid, std::vector<FileDescriptor>& fds) {
  // pidfd_open (5.3) and pidfd_getfd (5.6) need PTRACE_MODE_ATTACH_REALCREDS over the target.
  // The copy shares the target's open file description, so FIONREAD on it reports what is
  // buffered in the pipe without consuming anything. Closing the copy is the only side effect:
  // if the target closed its own descriptor meanwhile, the pipe end is released a moment later.
  // https://man7.org/linux/man-pages/man2/pidfd_getfd.2.html
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (pidfd.get() < 0) return;
  for (FileDescriptor& fd : fds) {
    if (!fd.pipe_inode) continue;
    Result<UniqueFd> copy = CopyDescriptor(pidfd.get(), pid, fd.fd);
    if (!copy.ok()) continue;
    Result<PipeFill> fill = MeasurePipe(copy->get(), fd.target);
    if (!fill.ok()) continue;
    fd.pipe_unread_bytes = fill->unread_bytes;
    fd.pipe_capacity_bytes = fill->capacity_bytes;
    if (fill->unread_bytes > 0) fd.pipe_head = PeekPipeHead(pid, fd.fd);
  }
}

Result<std::vector<FileDescriptor>> ReadFds(pid_t pid, std::string_view proc_root) {
  const std::string dir = ProcessDir(proc_root, pid);
  std::vector<FileDescriptor> fds;
  std::vector<int> numbers;
  if (int error = ListNumericEntries(dir + "/fd", numbers); error != 0) {
    if (IsTolerated(error)) return fds;
    return ErrnoError("opendir('" + dir + "/fd')", error);
  }
  std::string text;
  for (int number : numbers) {
    FileDescriptor fd;
    fd.fd = number;
    const std::string link = dir + "/fd/" + std::to_string(number);
    char target[PATH_MAX];
    const ssize_t length = readlink(link.c_str(), target, sizeof(target));
    if (length < 0) {
      if (IsTolerated(errno)) continue;  // closed since the directory was listed
      return ErrnoError("readlink('" + link + "')");
    }
    fd.target.assign(target, static_cast<size_t>(length));
    fd.pipe_inode = ParsePipeInode(fd.target);

    const std::string info = dir + "/fdinfo/" + std::to_string(number);
    if (int error = ReadWholeFile(info, text); error != 0) {
      if (IsTolerated(error)) continue;
      return ErrnoError("read('" + info + "')", error);
    }
    Status parsed = ParseFdinfo(text, fd);
    if (!parsed.ok()) return parsed.error().WithContext(info);
    fds.push_back(std::move(fd));
  }
  return fds;
}

std::int64_t MonotonicMs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

// Value of the status line starting with `key` ("voluntary_ctxt_switches:"), or 0.
std::uint64_t StatusNumber(std::string_view text, std::string_view key) {
  size_t pos = 0;
  while ((pos = text.find(key, pos)) != std::string_view::npos) {
    if (pos == 0 || text[pos - 1] == '\n') break;
    pos += key.size();
  }
  if (pos == std::string_view::npos) return 0;
  std::string_view rest = text.substr(pos + key.size());
  const size_t begin = rest.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return 0;
  rest.remove_prefix(begin);
  std::uint64_t value = 0;
  std::from_chars(rest.data(), rest.data() + rest.size(), value);
  return value;
}

// Fills state and cpu_ticks from the text of a stat file; false if it does not parse.
bool ScanStat(std::string_view text, TaskActivity& activity) {
  const size_t close = text.rfind(')');
  if (close == std::string_view::npos) return false;
  std::string_view rest = text.substr(close + 1);
  // Field numbers of proc(5): 3 is the state, 14 utime, 15 stime.
  std::uint64_t utime = 0;
  std::uint64_t stime = 0;
  int field = 2;
  size_t pos = 0;
  while (field < 15) {
    pos = rest.find_first_not_of(' ', pos);
    if (pos == std::string_view::npos) return false;
    size_t end = rest.find_first_of(" \n", pos);
    if (end == std::string_view::npos) end = rest.size();
    const std::string_view word = rest.substr(pos, end - pos);
    ++field;
    if (field == 3) {
      activity.state = word.empty() ? '?' : word[0];
    } else if (field == 14) {
      if (!ParseDecimal(word, utime)) return false;
    } else if (field == 15) {
      if (!ParseDecimal(word, stime)) return false;
    }
    pos = end;
  }
  activity.cpu_ticks = utime + stime;
  return true;
}

// Reads the activity of one task; false if it vanished.
bool ReadOneActivity(std::string_view proc_root, pid_t pid, pid_t tid, TaskActivity& activity) {
  char path[PATH_MAX];
  const auto task_path = [&](const char* file) {
    std::snprintf(path, sizeof(path), "%.*s/%d/task/%d/%s", static_cast<int>(proc_root.size()),
                  proc_root.data(), pid, tid, file);
    return path;
  };
  activity.tid = tid;

  char stat[2048];
  const ssize_t stat_size = ReadIntoBuffer(task_path("stat"), stat, sizeof(stat));
  if (stat_size <= 0 ||
      !ScanStat(std::string_view(stat, static_cast<size_t>(stat_size)), activity)) {
    return false;
  }

  char status[8192];
  const ssize_t status_size = ReadIntoBuffer(task_path("status"), status, sizeof(status));
  if (status_size < 0) return false;
  std::string large_status;
  std::string_view status_text(status, static_cast<size_t>(status_size));
  if (static_cast<size_t>(status_size) == sizeof(status)) {
    // The switch counts are the last lines; a status this large (long Mems_allowed) is rare.
    if (ReadWholeFile(path, large_status) != 0) return false;
    status_text = large_status;
  }
  activity.context_switches = StatusNumber(status_text, "voluntary_ctxt_switches:") +
                              StatusNumber(status_text, "nonvoluntary_ctxt_switches:");

  char wchan[512];
  const ssize_t wchan_size = ReadIntoBuffer(task_path("wchan"), wchan, sizeof(wchan));
  activity.wchan.clear();
  if (wchan_size > 0) {
    activity.wchan.assign(TrimNewlines(std::string_view(wchan, static_cast<size_t>(wchan_size))));
  }
  return true;
}

}  // namespace

Result<TaskStatus> ReadStatus(pid_t pid, pid_t tid, std::string_view proc_root) {
  int failed_errno = 0;
  return ReadStatusImpl(TaskDir(proc_root, pid, tid), failed_errno);
}

Result<TaskStat> ReadStat(pid_t pid, pid_t tid, std::string_view proc_root) {
  const std::string path = TaskDir(proc_root, pid, tid) + "/stat";
  std::string text;
  if (int error = ReadWholeFile(path, text); error != 0) {
    return ErrnoError("read('" + path + "')", error);
  }
  Result<TaskStat> stat = ParseStat(text);
  if (!stat.ok()) return stat.error().WithContext(path);
  return stat;
}

Result<pid_t> ReadParent(pid_t pid, std::string_view proc_root) {
  WEDGE_ASSIGN_OR_RETURN(TaskStat stat, ReadStat(pid, pid, proc_root));
  return stat.ppid;
}

Result<std::string> ReadComm(pid_t pid, std::string_view proc_root) {
  const std::string path = ProcessDir(proc_root, pid) + "/comm";
  std::string text;
  if (int error = ReadWholeFile(path, text); error != 0) {
    return ErrnoError("read('" + path + "')", error);
  }
  return ParseComm(text);
}

Result<std::vector<std::string>> ReadCmdline(pid_t pid, std::string_view proc_root) {
  const std::string path = ProcessDir(proc_root, pid) + "/cmdline";
  std::string text;
  if (int error = ReadWholeFile(path, text); error != 0) {
    return ErrnoError("read('" + path + "')", error);
  }
  return ParseCmdline(text);
}

Result<std::vector<CgroupMembership>> ReadCgroups(pid_t pid, std::string_view proc_root) {
  const std::string path = ProcessDir(proc_root, pid) + "/cgroup";
  std::string text;
  if (int error = ReadWholeFile(path, text); error != 0) {
    return ErrnoError("read('" + path + "')", error);
  }
  return ParseCgroups(text);
}

Result<TaskSnapshot> ReadTask(pid_t pid, pid_t tid, std::string_view proc_root) {
  int failed_errno = 0;
  return ReadTaskImpl(pid, tid, proc_root, failed_errno);
}

Result<ProcessSnapshot> ReadProcess(pid_t pid, bool peek_pipes, std::string_view proc_root) {
  ProcessSnapshot process;
  process.pid = pid;
  const std::string task_dir = ProcessDir(proc_root, pid) + "/task";
  std::vector<int> tids;
  if (int error = ListNumericEntries(task_dir, tids); error != 0) {
    return ErrnoError("opendir('" + task_dir + "')", error);
  }
  // The thread-group leader first.
  std::stable_partition(tids.begin(), tids.end(), [pid](int tid) { return tid == pid; });
  for (int tid : tids) {
    int failed_errno = 0;
    Result<TaskSnapshot> task = ReadTaskImpl(pid, tid, proc_root, failed_errno);
    if (!task.ok()) {
      // A thread that exited meanwhile is left out; the leader's entry lasts until the whole
      // process is reaped, so losing it means the process is gone.
      if (tid != pid && IsGone(failed_errno)) continue;
      return task.error();
    }
    process.tasks.push_back(std::move(task).value());
  }
  if (process.tasks.empty()) {
    return Error("process " + std::to_string(pid) + ": no task left to read in " + task_dir);
  }

  WEDGE_ASSIGN_OR_RETURN(process.fds, ReadFds(pid, proc_root));
  // Peeking goes through the live pid, so it only makes sense against the real /proc.
  if (peek_pipes && proc_root == "/proc") PeekPipes(pid, process.fds);
  process.children = ReadChildren(pid, proc_root);
  return process;
}

std::vector<pid_t> ReadChildren(pid_t pid, std::string_view proc_root) {
  // /proc/PID/task/TID/children lists the children of that thread only (CONFIG_PROC_CHILDREN),
  // so a process's children are the union over its threads.
  std::vector<pid_t> children;
  const std::string task_dir = ProcessDir(proc_root, pid) + "/task";
  std::vector<int> tids;
  if (ListNumericEntries(task_dir, tids) != 0) return children;
  std::set<pid_t> seen;
  std::string text;
  for (int tid : tids) {
    if (ReadWholeFile(task_dir + "/" + std::to_string(tid) + "/children", text) != 0) continue;
    std::string_view rest = text;
    while (!rest.empty()) {
      const size_t begin = rest.find_first_not_of(" \n");
      if (begin == std::string_view::npos) break;
      rest.remove_prefix(begin);
      size_t end = rest.find_first_of(" \n");
      if (end == std::string_view::npos) end = rest.size();
      pid_t child = 0;
      if (ParseDecimal(rest.substr(0, end), child) && seen.insert(child).second) {
        children.push_back(child);
      }
      rest.remove_prefix(end);
    }
  }
  return children;
}

std::vector<pid_t> ListDescendants(pid_t root, std::string_view proc_root) {
  std::vector<pid_t> pids;
  if (access(ProcessDir(proc_root, root).c_str(), F_OK) != 0) return pids;
  // Breadth first, so parents come before children; `seen` guards against pid reuse cycles.
  std::set<pid_t> seen = {root};
  pids.push_back(root);
  for (size_t next = 0; next < pids.size(); ++next) {
    for (pid_t child : ReadChildren(pids[next], proc_root)) {
      if (seen.insert(child).second) pids.push_back(child);
    }
  }
  return pids;
}

TreeSnapshot ReadProcesses(const std::vector<pid_t>& pids, bool peek_pipes,
                           std::string_view proc_root) {
  TreeSnapshot tree;
  tree.captured_at_ms = MonotonicMs();
  for (pid_t pid : pids) {
    Result<ProcessSnapshot> process = ReadProcess(pid, peek_pipes, proc_root);
    if (process.ok()) tree.processes.push_back(std::move(process).value());
  }
  return tree;
}

std::vector<TaskActivity> ReadActivity(const std::vector<pid_t>& pids, std::string_view proc_root) {
  std::vector<TaskActivity> activities;
  char path[PATH_MAX];
  for (pid_t pid : pids) {
    std::snprintf(path, sizeof(path), "%.*s/%d/task", static_cast<int>(proc_root.size()),
                  proc_root.data(), pid);
    ScopedDir dir(opendir(path));
    if (dir.get() == nullptr) continue;
    while (const dirent* entry = readdir(dir.get())) {
      pid_t tid = 0;
      if (!ParseDecimal(std::string_view(entry->d_name), tid)) continue;
      TaskActivity activity;
      if (ReadOneActivity(proc_root, pid, tid, activity)) activities.push_back(std::move(activity));
    }
  }
  std::sort(activities.begin(), activities.end(),
            [](const TaskActivity& a, const TaskActivity& b) { return a.tid < b.tid; });
  return activities;
}

std::vector<pid_t> ListProcesses(std::string_view proc_root) {
  std::vector<int> pids;
  if (ListNumericEntries(std::string(proc_root), pids) != 0) return {};
  return std::vector<pid_t>(pids.begin(), pids.end());
}

std::vector<pid_t> ListTasks(pid_t pid, std::string_view proc_root) {
  std::vector<int> tids;
  if (ListNumericEntries(ProcessDir(proc_root, pid) + "/task", tids) != 0) return {};
  return std::vector<pid_t>(tids.begin(), tids.end());
}

bool IsAsleep(char state) { return state == 'S' || state == 'D' || state == 'Z' || state == 'I'; }

bool SettleWatch::Settled(std::vector<TaskActivity> sample, std::int64_t now_ms) {
  const bool asleep =
      !sample.empty() && std::all_of(sample.begin(), sample.end(),
                                     [](const TaskActivity& task) { return IsAsleep(task.state); });
  if (!asleep || sample != previous_) {
    previous_ = std::move(sample);
    quiet_since_ms_ = now_ms;
    return false;
  }
  return now_ms - quiet_since_ms_ >= settle_ms_;
}

}  // namespace wedge::probe
