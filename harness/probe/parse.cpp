// Pure parsers for the text of /proc files. Formats are those of fs/proc/array.c (status, stat),
// fs/proc/base.c (stack, syscall, wchan, comm, cmdline), fs/proc/fd.c (fdinfo) and
// kernel/cgroup/cgroup.c (proc_cgroup_show: cgroup).
#include <charconv>
#include <string>
#include <string_view>
#include <system_error>

#include "wedge/probe/task.h"

namespace wedge::probe {
namespace {

constexpr std::string_view kBlanks = " \t\r\n";

std::string_view Trim(std::string_view text) {
  const size_t begin = text.find_first_not_of(kBlanks);
  if (begin == std::string_view::npos) return {};
  const size_t end = text.find_last_not_of(kBlanks);
  return text.substr(begin, end - begin + 1);
}

// Calls `fn(line)` for each line of `text`, without the newline.
template <typename Fn>
void ForEachLine(std::string_view text, Fn&& fn) {
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    fn(text.substr(0, newline));
    if (newline == std::string_view::npos) break;
    text.remove_prefix(newline + 1);
  }
}

// Splits on runs of spaces and tabs.
std::vector<std::string_view> SplitWords(std::string_view text) {
  std::vector<std::string_view> words;
  size_t pos = 0;
  while (true) {
    pos = text.find_first_not_of(kBlanks, pos);
    if (pos == std::string_view::npos) break;
    size_t end = text.find_first_of(kBlanks, pos);
    if (end == std::string_view::npos) end = text.size();
    words.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return words;
}

template <typename T>
bool ParseNumber(std::string_view text, T& out, int base = 10) {
  if (text.empty()) return false;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return error == std::errc() && end == text.data() + text.size();
}

// "0x7ffc12" -> 0x7ffc12; the kernel always prints the prefix for syscall arguments.
bool ParseHex(std::string_view text, std::uint64_t& out) {
  if (text.starts_with("0x") || text.starts_with("0X")) text.remove_prefix(2);
  return ParseNumber(text, out, 16);
}

Error FieldError(std::string_view file, std::string_view field, std::string_view problem) {
  return Error(std::string(file) + ": " + std::string(problem) + " field '" + std::string(field) +
               "'");
}

Error BadValue(std::string_view file, std::string_view field, std::string_view value) {
  return Error(std::string(file) + ": bad value '" + std::string(value) + "' for field '" +
               std::string(field) + "'");
}

}  // namespace

Result<TaskStatus> ParseStatus(std::string_view text) {
  constexpr std::string_view kFile = "status";
  TaskStatus status;
  bool have_state = false;
  bool have_pid = false;
  std::optional<Error> error;

  auto number = [&](std::string_view field, std::string_view value, auto& out) {
    if (!ParseNumber(value, out) && !error) error = BadValue(kFile, field, value);
  };
  // A 64-bit mask printed as (at most) 16 hex digits.
  auto hex = [&](std::string_view field, std::string_view value, std::uint64_t& out) {
    if (value.size() > 16 || !ParseNumber(value, out, 16)) {
      if (!error) error = BadValue(kFile, field, value);
      return false;
    }
    return true;
  };
  auto mask = [&](std::string_view field, std::string_view value, SignalSet& out) {
    std::uint64_t bits = 0;
    if (hex(field, value, bits)) out = SignalSet(bits);
  };

  ForEachLine(text, [&](std::string_view line) {
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return;
    const std::string_view key = line.substr(0, colon);
    // Name: is printed raw after the tab (escaped only for '\n' and '\\'), so only the tab and
    // the line end are removed; a comm may legitimately end in a space.
    std::string_view value = line.substr(colon + 1);
    if (key == "Name") {
      if (value.starts_with('\t')) value.remove_prefix(1);
      status.name = std::string(value);
      return;
    }
    value = Trim(value);
    if (key == "State") {
      if (value.empty()) {
        if (!error) error = BadValue(kFile, key, value);
        return;
      }
      status.state = value[0];
      status.state_text = std::string(value);
      have_state = true;
    } else if (key == "Tgid") {
      number(key, value, status.tgid);
    } else if (key == "Pid") {
      number(key, value, status.pid);
      have_pid = true;
    } else if (key == "PPid") {
      number(key, value, status.ppid);
    } else if (key == "TracerPid") {
      number(key, value, status.tracer_pid);
    } else if (key == "NSpid") {
      for (std::string_view word : SplitWords(value)) {
        pid_t pid = 0;
        number(key, word, pid);
        status.ns_pids.push_back(pid);
      }
    } else if (key == "Threads") {
      number(key, value, status.threads);
    } else if (key == "SigPnd") {
      mask(key, value, status.sig_pnd);
    } else if (key == "ShdPnd") {
      mask(key, value, status.shd_pnd);
    } else if (key == "SigBlk") {
      mask(key, value, status.sig_blk);
    } else if (key == "SigIgn") {
      mask(key, value, status.sig_ign);
    } else if (key == "SigCgt") {
      mask(key, value, status.sig_cgt);
    } else if (key == "CapEff") {
      hex(key, value, status.cap_eff);
    } else if (key == "voluntary_ctxt_switches") {
      number(key, value, status.voluntary_ctxt_switches);
    } else if (key == "nonvoluntary_ctxt_switches") {
      number(key, value, status.nonvoluntary_ctxt_switches);
    }
  });

  if (error) return *error;
  if (!have_state) return FieldError(kFile, "State", "missing");
  if (!have_pid) return FieldError(kFile, "Pid", "missing");
  return status;
}

Result<TaskStat> ParseStat(std::string_view text) {
  constexpr std::string_view kFile = "stat";
  // comm is printed unescaped between parentheses and may itself hold ") ", so it ends at the
  // last ')' of the line (fs/proc/array.c do_task_stat).
  const size_t open = text.find('(');
  const size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return FieldError(kFile, "comm", "no parenthesised");
  }
  TaskStat stat;
  stat.comm = std::string(text.substr(open + 1, close - open - 1));

  // words[0] is field 3 (state) of proc(5).
  const std::vector<std::string_view> words = SplitWords(text.substr(close + 1));
  auto field = [&](int number) -> std::string_view {
    const size_t index = static_cast<size_t>(number - 3);
    return index < words.size() ? words[index] : std::string_view();
  };
  if (words.size() < 20) {
    return Error(std::string(kFile) + ": only " + std::to_string(words.size() + 2) +
                 " fields, need at least 22");
  }
  if (field(3).size() != 1) return BadValue(kFile, "state", field(3));
  stat.state = field(3)[0];
  if (!ParseNumber(field(4), stat.ppid)) return BadValue(kFile, "ppid", field(4));
  if (!ParseNumber(field(9), stat.flags)) return BadValue(kFile, "flags", field(9));
  if (!ParseNumber(field(14), stat.utime)) return BadValue(kFile, "utime", field(14));
  if (!ParseNumber(field(15), stat.stime)) return BadValue(kFile, "stime", field(15));
  if (!ParseNumber(field(22), stat.start_time)) return BadValue(kFile, "starttime", field(22));
  return stat;
}

namespace {
// Bit values of include/linux/sched.h since Linux 5.17 (PF_IO_WORKER at 0x10, PF_VCPU at 0x1);
// older kernels used some bits differently (0x10 was PF_VCPU, 0x8 PF_EXITPIDONE).
struct Flag {
  std::uint32_t bit;
  const char* name;
};
constexpr Flag kTaskFlags[] = {
    {0x00000001, "PF_VCPU"},           {0x00000002, "PF_IDLE"},
    {0x00000004, "PF_EXITING"},        {0x00000008, "PF_POSTCOREDUMP"},
    {0x00000010, "PF_IO_WORKER"},      {0x00000020, "PF_WQ_WORKER"},
    {0x00000040, "PF_FORKNOEXEC"},     {0x00000080, "PF_MCE_PROCESS"},
    {0x00000100, "PF_SUPERPRIV"},      {0x00000200, "PF_DUMPCORE"},
    {0x00000400, "PF_SIGNALED"},       {0x00000800, "PF_MEMALLOC"},
    {0x00001000, "PF_NPROC_EXCEEDED"}, {0x00002000, "PF_USED_MATH"},
    {0x00004000, "PF_USER_WORKER"},    {0x00008000, "PF_NOFREEZE"},
    {0x00020000, "PF_KSWAPD"},         {0x00040000, "PF_MEMALLOC_NOFS"},
    {0x00080000, "PF_MEMALLOC_NOIO"},  {0x00100000, "PF_LOCAL_THROTTLE"},
    {0x00200000, "PF_KTHREAD"},        {0x00400000, "PF_RANDOMIZE"},
    {0x04000000, "PF_NO_SETAFFINITY"}, {0x08000000, "PF_MCE_EARLY"},
    {0x10000000, "PF_MEMALLOC_PIN"},   {0x80000000, "PF_SUSPEND_TASK"},
};
}  // namespace

std::vector<std::string> TaskFlagNames(std::uint32_t flags) {
  std::vector<std::string> names;
  for (const Flag& flag : kTaskFlags) {
    if ((flags & flag.bit) != 0) names.emplace_back(flag.name);
  }
  return names;
}

std::optional<std::uint32_t> TaskFlagBit(std::string_view name) {
  for (const Flag& flag : kTaskFlags) {
    if (name == flag.name) return flag.bit;
  }
  return std::nullopt;
}

std::vector<StackFrame> ParseStack(std::string_view text) {
  std::vector<StackFrame> frames;
  ForEachLine(text, [&](std::string_view line) {
    const std::string_view trimmed = Trim(line);
    if (trimmed.empty()) return;
    StackFrame frame;
    frame.raw = std::string(trimmed);
    std::string_view symbol = trimmed;
    // Older kernels print the frame's address, "[<ffffffffadc4bd50>] "; newer ones hide it as
    // "[<0>] " so /proc/PID/stack cannot defeat KASLR.
    if (symbol.starts_with("[<")) {
      const size_t end = symbol.find(">]");
      if (end != std::string_view::npos) symbol = Trim(symbol.substr(end + 2));
    }
    // Older kernels end the trace with a ULONG_MAX entry, printed as an unresolved address.
    if (symbol.empty() || symbol == "0xffffffffffffffff") return;
    if (symbol.ends_with(']')) {
      const size_t open = symbol.rfind(" [");
      if (open != std::string_view::npos) {
        frame.module = std::string(symbol.substr(open + 2, symbol.size() - open - 3));
        symbol = Trim(symbol.substr(0, open));
      }
    }
    const size_t plus = symbol.find('+');
    if (plus != std::string_view::npos) {
      frame.offset = std::string(symbol.substr(plus + 1));
      symbol = symbol.substr(0, plus);
    }
    frame.function = std::string(symbol);
    frames.push_back(std::move(frame));
  });
  return frames;
}

Result<SyscallState> ParseSyscall(std::string_view text) {
  constexpr std::string_view kFile = "syscall";
  const std::string_view trimmed = Trim(text);
  SyscallState state;
  if (trimmed == "running") {
    state.kind = SyscallState::Kind::kRunning;
    return state;
  }
  const std::vector<std::string_view> words = SplitWords(trimmed);
  if (words.empty()) return Error(std::string(kFile) + ": empty");
  if (!ParseNumber(words[0], state.number)) return BadValue(kFile, "nr", words[0]);
  // A blocked task outside a system call prints "-1 sp pc" (fs/proc/base.c proc_pid_syscall).
  if (state.number < 0) {
    if (words.size() != 3) {
      return Error(std::string(kFile) + ": expected 'nr sp pc', got '" + std::string(trimmed) +
                   "'");
    }
    state.kind = SyscallState::Kind::kNotInSyscall;
    if (!ParseHex(words[1], state.stack_pointer)) return BadValue(kFile, "sp", words[1]);
    if (!ParseHex(words[2], state.program_counter)) return BadValue(kFile, "pc", words[2]);
    return state;
  }
  if (words.size() != 9) {
    return Error(std::string(kFile) + ": expected 'nr arg1..arg6 sp pc', got '" +
                 std::string(trimmed) + "'");
  }
  state.kind = SyscallState::Kind::kInSyscall;
  for (size_t i = 0; i < state.args.size(); ++i) {
    if (!ParseHex(words[i + 1], state.args[i])) {
      return BadValue(kFile, "arg" + std::to_string(i + 1), words[i + 1]);
    }
  }
  if (!ParseHex(words[7], state.stack_pointer)) return BadValue(kFile, "sp", words[7]);
  if (!ParseHex(words[8], state.program_counter)) return BadValue(kFile, "pc", words[8]);
  return state;
}

std::optional<std::uint64_t> ParsePipeInode(std::string_view link_target) {
  constexpr std::string_view kPrefix = "pipe:[";
  if (!link_target.starts_with(kPrefix) || !link_target.ends_with(']')) return std::nullopt;
  std::uint64_t inode = 0;
  if (!ParseNumber(link_target.substr(kPrefix.size(), link_target.size() - kPrefix.size() - 1),
                   inode)) {
    return std::nullopt;
  }
  return inode;
}

Status ParseFdinfo(std::string_view text, FileDescriptor& fd) {
  constexpr std::string_view kFile = "fdinfo";
  bool have_pos = false;
  bool have_flags = false;
  std::optional<Error> error;
  ForEachLine(text, [&](std::string_view line) {
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return;
    const std::string_view key = line.substr(0, colon);
    const std::string_view value = Trim(line.substr(colon + 1));
    if (key == "pos") {
      have_pos = true;
      if (!ParseNumber(value, fd.pos) && !error) error = BadValue(kFile, key, value);
    } else if (key == "flags") {
      // Printed with "%07o" (fs/proc/fd.c seq_show): octal, O_CLOEXEC is 02000000.
      have_flags = true;
      if (!ParseNumber(value, fd.flags, 8) && !error) error = BadValue(kFile, key, value);
    }
  });
  if (error) return *error;
  if (!have_pos) return FieldError(kFile, "pos", "missing");
  if (!have_flags) return FieldError(kFile, "flags", "missing");
  return OkStatus();
}

std::string ParseComm(std::string_view text) {
  // comm_show prints the name and one newline; the name itself may end in spaces.
  if (text.ends_with('\n')) text.remove_suffix(1);
  return std::string(text);
}

std::vector<std::string> ParseCmdline(std::string_view text) {
  std::vector<std::string> argv;
  while (!text.empty()) {
    const size_t end = text.find('\0');
    argv.emplace_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return argv;
}

std::vector<CgroupMembership> ParseCgroups(std::string_view text) {
  std::vector<CgroupMembership> cgroups;
  ForEachLine(text, [&](std::string_view line) {
    // "ID:CONTROLLERS:PATH"; the path is the rest of the line and may itself hold ':'.
    const size_t first = line.find(':');
    if (first == std::string_view::npos) return;
    const size_t second = line.find(':', first + 1);
    if (second == std::string_view::npos) return;
    CgroupMembership membership;
    if (!ParseNumber(line.substr(0, first), membership.hierarchy_id)) return;
    std::string_view controllers = line.substr(first + 1, second - first - 1);
    while (!controllers.empty()) {
      const size_t comma = controllers.find(',');
      if (comma != 0) membership.controllers.emplace_back(controllers.substr(0, comma));
      if (comma == std::string_view::npos) break;
      controllers.remove_prefix(comma + 1);
    }
    membership.path = std::string(line.substr(second + 1));
    cgroups.push_back(std::move(membership));
  });
  return cgroups;
}

std::optional<std::string> PidsCgroupPath(const std::vector<CgroupMembership>& cgroups) {
  std::optional<std::string> v1;
  std::optional<std::string> v2;
  for (const CgroupMembership& cgroup : cgroups) {
    for (const std::string& controller : cgroup.controllers) {
      if (controller == "pids") v1 = cgroup.path;
    }
    if (cgroup.hierarchy_id == 0 && cgroup.controllers.empty()) v2 = cgroup.path;
  }
  return v1 ? v1 : v2;
}

}  // namespace wedge::probe
