#include <cinttypes>
#include <cstdio>
#include <string>

#include "report_internal.h"
#include "wedge/probe/signals.h"
#include "wedge/probe/task.h"
#include "wedge/report/report.h"
#include "wedge/sys/files.h"

namespace wedge::report {

namespace {

using nlohmann::json;

std::string StateLetter(char state) { return std::string(1, state); }

json SignalsJson(const probe::SignalSet& set) {
  return json{{"mask", internal::Hex16(set.mask())}, {"names", set.Names()}};
}

std::string_view SyscallKindName(probe::SyscallState::Kind kind) {
  switch (kind) {
    case probe::SyscallState::Kind::kInSyscall:
      return "in-syscall";
    case probe::SyscallState::Kind::kNotInSyscall:
      return "not-in-syscall";
    case probe::SyscallState::Kind::kRunning:
      break;
  }
  return "running";
}

json SyscallJson(const probe::SyscallState& syscall) {
  json value{{"kind", SyscallKindName(syscall.kind)}};
  if (syscall.kind == probe::SyscallState::Kind::kInSyscall) {
    value["number"] = syscall.number;
    json args = json::array();
    for (std::uint64_t arg : syscall.args) args.push_back("0x" + internal::Hex16(arg));
    value["args"] = std::move(args);
  }
  if (syscall.kind != probe::SyscallState::Kind::kRunning) {
    value["stack_pointer"] = "0x" + internal::Hex16(syscall.stack_pointer);
    value["program_counter"] = "0x" + internal::Hex16(syscall.program_counter);
  }
  return value;
}

json TaskJson(const probe::TaskSnapshot& task) {
  const probe::TaskStatus& status = task.status;
  char state = status.state != '?' ? status.state : task.stat.state;
  char flags_hex[16];
  std::snprintf(flags_hex, sizeof flags_hex, "0x%08" PRIx32, task.stat.flags);

  json stack = json::array();
  for (const probe::StackFrame& frame : task.stack) {
    stack.push_back(
        {{"function", frame.function}, {"offset", frame.offset}, {"module", frame.module}});
  }
  return json{
      {"tid", task.tid},
      {"comm", task.stat.comm.empty() ? status.name : task.stat.comm},
      {"state", StateLetter(state)},
      {"state_text", status.state_text},
      {"tgid", status.tgid},
      {"pid", status.pid},
      {"ppid", status.ppid},
      {"ns_pids", status.ns_pids},
      {"threads", status.threads},
      {"voluntary_ctxt_switches", status.voluntary_ctxt_switches},
      {"nonvoluntary_ctxt_switches", status.nonvoluntary_ctxt_switches},
      // Keyed by the /proc/PID/status field names so they can be compared with the file.
      {"signals",
       {{"SigPnd", SignalsJson(status.sig_pnd)},
        {"ShdPnd", SignalsJson(status.shd_pnd)},
        {"SigBlk", SignalsJson(status.sig_blk)},
        {"SigIgn", SignalsJson(status.sig_ign)},
        {"SigCgt", SignalsJson(status.sig_cgt)}}},
      {"flags", {{"mask", flags_hex}, {"names", probe::TaskFlagNames(task.stat.flags)}}},
      {"utime", task.stat.utime},
      {"stime", task.stat.stime},
      {"start_time", task.stat.start_time},
      {"wchan", task.wchan},
      {"stack_text", task.stack_text},
      {"stack", std::move(stack)},
      {"syscall_text", task.syscall_text},
      {"syscall", task.syscall ? SyscallJson(*task.syscall) : json(nullptr)},
  };
}

json FdJson(const probe::FileDescriptor& fd) {
  char flags_octal[16];
  // fdinfo prints flags in octal; keep that form so O_* bits read as they do in the file.
  std::snprintf(flags_octal, sizeof flags_octal, "0%" PRIo32, fd.flags);
  return json{
      {"fd", fd.fd},
      {"target", fd.target},
      {"pipe_inode", fd.pipe_inode ? json(*fd.pipe_inode) : json(nullptr)},
      {"pos", fd.pos},
      {"flags", flags_octal},
      {"pipe_unread_bytes", fd.pipe_unread_bytes ? json(*fd.pipe_unread_bytes) : json(nullptr)},
      {"pipe_capacity_bytes",
       fd.pipe_capacity_bytes ? json(*fd.pipe_capacity_bytes) : json(nullptr)},
      // The first unread bytes as text; invalid UTF-8 is replaced, never fails the report.
      {"pipe_head", fd.pipe_head ? json(*fd.pipe_head) : json(nullptr)},
  };
}

json ProcessJson(const probe::ProcessSnapshot& process) {
  json tasks = json::array();
  for (const probe::TaskSnapshot& task : process.tasks) tasks.push_back(TaskJson(task));
  json fds = json::array();
  for (const probe::FileDescriptor& fd : process.fds) fds.push_back(FdJson(fd));
  return json{{"label", process.label},
              {"pid", process.pid},
              {"children", process.children},
              {"fds", std::move(fds)},
              {"tasks", std::move(tasks)}};
}

json ObservedTaskJson(const signature::ObservedTask& task) {
  return json{{"process", task.process},
              {"pid", task.pid},
              {"tid", task.tid},
              {"leader", task.leader},
              {"comm", task.comm},
              {"state", StateLetter(task.state)},
              {"stack", task.stack},
              {"shd_pending", task.shd_pending},
              {"sig_pending", task.sig_pending},
              {"task_flags", task.task_flags},
              {"wchan", task.wchan}};
}

json MismatchesJson(const std::vector<signature::Mismatch>& mismatches) {
  json array = json::array();
  for (const signature::Mismatch& mismatch : mismatches) {
    array.push_back({{"role", mismatch.role},
                     {"field", mismatch.field},
                     {"expected", mismatch.expected},
                     {"observed", mismatch.observed}});
  }
  return array;
}

}  // namespace

json ToJson(const HostInfo& host) {
  json binaries = json::array();
  for (const BinaryVersion& binary : host.binaries) {
    json entry = {{"name", binary.name}, {"path", binary.path}, {"version", binary.version}};
    if (!binary.package.empty()) entry["package"] = binary.package;
    if (!binary.go_version.empty()) entry["go_version"] = binary.go_version;
    if (!binary.release.empty()) entry["release"] = binary.release;
    binaries.push_back(std::move(entry));
  }
  return json{{"kernel",
               {{"release", host.kernel_release},
                {"version", host.kernel_version},
                {"machine", host.machine}}},
              {"cgroup_mode", host.cgroup_mode},
              {"sysctls", host.sysctls},
              {"rlimits", host.rlimits},
              {"binaries", std::move(binaries)},
              {"wedge_version", host.wedge_version}};
}

json ToJson(const probe::TreeSnapshot& snapshot) {
  json processes = json::array();
  for (const probe::ProcessSnapshot& process : snapshot.processes) {
    processes.push_back(ProcessJson(process));
  }
  return json{{"captured_at_ms", snapshot.captured_at_ms}, {"processes", std::move(processes)}};
}

json ObservedCommandJson(const signature::ObservedCommand& command) {
  auto optional = [](const auto& value) { return value ? json(*value) : json(nullptr); };
  return json{{"command", command.command},
              {"binary", command.binary},
              {"argv", command.argv},
              {"exit_code", optional(command.exit_code)},
              {"killed_by", optional(command.killed_by)},
              {"refused_syscall", optional(command.refused_syscall)},
              {"refused_syscall_number", optional(command.refused_syscall_number)},
              {"audit_record", command.audit_record},
              {"output", command.output},
              {"timed_out", command.timed_out},
              {"running_at_capture", command.running_at_capture},
              {"duration_ms", command.duration_ms}};
}

json ToJson(const RunResult& result) {
  json signature = json::object();
  for (const auto& [role, task] : VerdictMatch(result).bound) {
    signature[role] = ObservedTaskJson(task);
  }
  json commands = json::array();
  for (const signature::ObservedCommand& command : result.observation.commands) {
    commands.push_back(ObservedCommandJson(command));
  }
  json preconditions = json::array();
  for (const PreconditionResult& precondition : result.preconditions) {
    preconditions.push_back({{"name", precondition.name},
                             {"held", precondition.held},
                             {"detail", precondition.detail},
                             {"why", precondition.why}});
  }
  json figures = json::array();
  for (const auto& figure : result.figures) {
    figures.push_back({{"name", figure.name}, {"value", figure.value}, {"unit", figure.unit}});
  }
  json series = json::array();
  for (const auto& one : result.observation.series) {
    series.push_back(
        {{"metric", one.metric}, {"window", one.window}, {"per_second", one.per_second}});
  }
  json phases = json::array();
  for (const PhaseTiming& phase : result.phases) {
    phases.push_back({{"phase", phase.phase}, {"duration_ms", phase.duration_ms}});
  }
  return json{
      {"scenario", result.scenario},
      {"file", result.file},
      {"verdict", scenario::VerdictName(result.verdict)},
      {"expected", scenario::VerdictName(result.expected)},
      {"as_expected", result.AsExpected()},
      {"reason", result.reason},
      {"signature_hash", result.signature_hash},
      {"signature", std::move(signature)},
      {"all_exited", result.observation.all_exited},
      {"commands", std::move(commands)},
      {"preconditions", std::move(preconditions)},
      {"figures", std::move(figures)},
      {"series", std::move(series)},
      {"binaries", result.binaries},
      {"diff",
       {{"bug", MismatchesJson(result.bug_match.mismatches)},
        {"healthy", MismatchesJson(result.healthy_match.mismatches)}}},
      {"evidence", ToJson(result.evidence)},
      {"phases", std::move(phases)},
      {"duration_ms", result.duration_ms},
      {"stall_detected_after_ms",
       result.stall_detected_after_ms >= 0 ? json(result.stall_detected_after_ms) : json(nullptr)},
      {"recovery", result.recovery},
      {"injections", result.injections},
      {"held", result.held ? json{{"duration_ms", result.held->duration_ms},
                                  {"released_by", result.held->released_by},
                                  {"match_command", result.held->match_command}}
                           : json(nullptr)},
      {"host_clean", result.host_clean},
      {"host_leftovers", result.host_leftovers},
      {"error", result.error ? json(*result.error) : json(nullptr)},
  };
}

json ToJson(const std::vector<Determinism>& summary) {
  json entries = json::array();
  for (const Determinism& d : summary) {
    entries.push_back(
        {{"scenario", d.scenario},
         {"runs", d.runs},
         {"verdicts", d.verdicts},
         {"signature_hashes", d.hashes},
         {"duration_ms", {{"min", d.min_ms}, {"median", d.median_ms}, {"max", d.max_ms}}},
         {"flaky", d.flaky()}});
  }
  return entries;
}

json ToJson(const Report& report) {
  json results = json::array();
  for (const RunResult& result : report.results) results.push_back(ToJson(result));
  return json{{"wedge_report", 1},
              {"host", ToJson(report.host)},
              {"results", std::move(results)},
              {"determinism", ToJson(SummarizeDeterminism(report))}};
}

Status WriteJson(const Report& report, const std::filesystem::path& file) {
  // comm and /proc text are bytes, not necessarily UTF-8; the default handler would throw.
  std::string text = ToJson(report).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  text += '\n';
  Status status = sys::WriteFileAtomically(file, text, internal::kReportFileMode);
  if (!status.ok()) return status.error().WithContext("writing the JSON report");
  return OkStatus();
}

}  // namespace wedge::report
