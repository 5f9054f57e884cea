// What the probe costs, measured on the project's machine kind (Debian 12, kernel 6.18, 2 cores;
// dockerd 20.10.24, containerd 1.6.20, strace 6.1) with the private stack and one container:
// - Latency: 50 sequential GET /containers/json (stack::HttpGetUnix on dockerd's socket), ten
//   rounds each way: 0.16-0.27 ms a request without the probe, 0.82-1.66 ms with strace
//   attached (5-9x). strace cannot use --seccomp-bpf with -p, so every system call of every
//   dockerd thread stops for it, not only the traced ones.
// - Connect rate while containerd is away for 3 s, counted without ptrace by
//   `unshare -m perf stat -e syscalls:sys_enter_connect -I 100 -p DOCKERD` (its own mount
//   namespace, since perf mounts tracefs): SIGTERM (socket removed), 398-402 connects in
//   ~3.03 s, in bursts of 200/s; under strace 374-378 in the outage's three whole seconds, in
//   bursts of ~188/s, so strace slows the redial loop by about 6%. SIGKILL (socket left,
//   ECONNREFUSED): 6 connects either way, paced by gRPC's backoff, which strace does not change.
#include "wedge/stack/syscall_probe.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

#include "wedge/probe/task.h"
#include "wedge/stack/strace_process.h"
#include "wedge/sys/files.h"
#include "wedge/sys/process.h"

namespace wedge::stack {
namespace {

namespace fs = std::filesystem;

constexpr int kSamplePeriodMs = 100;
constexpr std::int64_t kMicros = 1000000;
constexpr std::chrono::milliseconds kAttachTimeout{10000};
constexpr size_t kEvidenceLines = 20;

// The metrics of Finish, in the order they are reported.
const std::vector<std::string> kCountMetrics = {"connect", "connect_errors", "socket", "close"};
const std::vector<std::string> kGaugeMetrics = {"threads", "futex_threads"};
constexpr char kLogMetric[] = "containerd_log_lines";

// What dockerd 20.10 logs while containerd is away: libcontainerd's event stream failing and
// waiting (processEventStream, waitServe in
// https://github.com/moby/moby/blob/v20.10.24/libcontainerd/remote/client.go) and gRPC's
// failed dials (grpc-go addrConn.createTransport), which name the socket.
const std::vector<std::string> kContainerdTrouble = {
    "Failed to get event",
    "Waiting for containerd to be ready",
    "Error while testing if containerd API is ready",
};
constexpr char kFailedDial[] = "createTransport failed to connect";

std::int64_t RealtimeMicros() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<std::int64_t>(now.tv_sec) * kMicros + now.tv_nsec / 1000;
}

// "1700000000.123456" (strace -ttt) to microseconds since the epoch.
std::optional<std::int64_t> ParseEpochMicros(std::string_view text) {
  const size_t dot = text.find('.');
  std::int64_t seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + std::min(dot, text.size()), seconds);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  std::int64_t micros = 0;
  if (dot != std::string_view::npos) {
    std::string_view fraction = text.substr(dot + 1, 6);
    for (size_t i = 0; i < 6; ++i) {
      const char c = i < fraction.size() ? fraction[i] : '0';
      if (c < '0' || c > '9') return std::nullopt;
      micros = micros * 10 + (c - '0');
    }
  }
  return seconds * kMicros + micros;
}

// dockerd's time="2024-05-01T12:34:56.123456789+02:00" (RFC 3339) to microseconds.
std::optional<std::int64_t> ParseRfc3339Micros(std::string_view text) {
  std::tm tm{};
  const std::string head(text.substr(0, 19));
  if (head.size() != 19 || ::strptime(head.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) {
    return std::nullopt;
  }
  std::int64_t micros = static_cast<std::int64_t>(::timegm(&tm)) * kMicros;
  size_t at = 19;
  if (at < text.size() && text[at] == '.') {
    std::int64_t scale = kMicros / 10;
    for (++at; at < text.size() && text[at] >= '0' && text[at] <= '9'; ++at) {
      micros += (text[at] - '0') * scale;
      scale /= 10;
    }
  }
  if (at < text.size() && (text[at] == '+' || text[at] == '-') && at + 6 <= text.size()) {
    const int hours = std::atoi(std::string(text.substr(at + 1, 2)).c_str());
    const int minutes = std::atoi(std::string(text.substr(at + 4, 2)).c_str());
    const std::int64_t offset = (hours * 3600 + minutes * 60) * kMicros;
    micros += text[at] == '+' ? -offset : offset;
  }
  return micros;
}

// One counted call of the trace.
struct Call {
  std::int64_t at_us = 0;  // when the call started
  std::string metric;      // "connect", "socket", "close"
  bool failed = false;     // returned -1
};

// One system call of the trace, its "<unfinished ...>" and "<... resumed>" halves joined.
struct TracedCall {
  std::string tid;
  std::int64_t at_us = 0;  // when it started
  std::string name;
  std::string text;  // from the name to the result: "connect(9, {...}, 54) = -1 ENOENT (...)"
};

// "... = -1 ECONNREFUSED (...)" -> true; "= 0", "= 7", "= ?" -> false.
bool ReturnedError(std::string_view text) {
  const size_t equals = text.rfind(" = ");
  return equals != std::string_view::npos && text.substr(equals + 3, 2) == "-1";
}

// Parses `strace -f -ttt` lines ("[TID ]SECONDS.MICROS CALL...") into whole calls, joining
// "<unfinished ...>" with "<... NAME resumed>" per thread. A call still unfinished when strace
// detached is kept, without a result.
std::vector<TracedCall> ParseCalls(std::string_view trace) {
  constexpr std::string_view kUnfinished = " <unfinished ...>";
  std::vector<TracedCall> calls;
  std::map<std::string, TracedCall> pending;  // by thread id
  size_t at = 0;
  while (at < trace.size()) {
    size_t end = trace.find('\n', at);
    if (end == std::string_view::npos) end = trace.size();
    std::string_view line = trace.substr(at, end - at);
    at = end + 1;
    std::string tid;
    size_t space = line.find(' ');
    if (space == std::string_view::npos) continue;
    if (line.substr(0, space).find('.') == std::string_view::npos) {  // "TID TIMESTAMP ..."
      tid = std::string(line.substr(0, space));
      line.remove_prefix(space + 1);
      while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
      space = line.find(' ');
      if (space == std::string_view::npos) continue;
    }
    std::optional<std::int64_t> when = ParseEpochMicros(line.substr(0, space));
    if (!when) continue;
    std::string_view rest = line.substr(space + 1);
    if (rest.rfind("<... ", 0) == 0) {
      auto found = pending.find(tid);
      const size_t resumed = rest.find(" resumed>");
      if (found == pending.end() || resumed == std::string_view::npos) continue;
      found->second.text += rest.substr(resumed + 9);
      calls.push_back(std::move(found->second));
      pending.erase(found);
      continue;
    }
    const size_t paren = rest.find('(');
    if (paren == std::string_view::npos) continue;  // "+++ exited ...", "--- SIG... ---"
    TracedCall call{tid, *when, std::string(rest.substr(0, paren)), std::string(rest)};
    if (rest.size() >= kUnfinished.size() &&
        rest.substr(rest.size() - kUnfinished.size()) == kUnfinished) {
      call.text.resize(call.text.size() - kUnfinished.size());
      pending[tid] = std::move(call);
    } else {
      calls.push_back(std::move(call));
    }
  }
  for (auto& [tid, call] : pending) calls.push_back(std::move(call));
  std::stable_sort(calls.begin(), calls.end(),
                   [](const TracedCall& a, const TracedCall& b) { return a.at_us < b.at_us; });
  return calls;
}

// The tasks of the trace that are not dockerd's threads: -f follows the processes dockerd
// forks too (`docker top` runs ps), whose calls must not count. A clone without CLONE_THREAD
// starts one, and everything such a process clones is one too. A vforked child runs (and is
// printed) before its parent's clone returns, hence the fixpoint.
std::set<std::string> OtherProcesses(const std::vector<TracedCall>& calls) {
  struct Clone {
    std::string parent, child;
    bool thread;
  };
  std::vector<Clone> clones;
  for (const TracedCall& call : calls) {
    if (call.name != "clone" && call.name != "clone3" && call.name != "fork" &&
        call.name != "vfork") {
      continue;
    }
    const size_t equals = call.text.rfind(" = ");
    if (equals == std::string::npos) continue;
    const long child = std::atol(call.text.c_str() + equals + 3);
    if (child <= 0) continue;
    clones.push_back(
        {call.tid, std::to_string(child), call.text.find("CLONE_THREAD") != std::string::npos});
  }
  std::set<std::string> others;
  for (bool grew = true; grew;) {
    grew = false;
    for (const Clone& clone : clones) {
      if ((!clone.thread || others.count(clone.parent) != 0) && others.insert(clone.child).second) {
        grew = true;
      }
    }
  }
  return others;
}

// The calls of dockerd's own threads that count: connect() to the containerd socket,
// socket(AF_UNIX, ...), close().
std::vector<Call> ParseTrace(std::string_view trace, const fs::path& socket) {
  const std::string sun_path = "sun_path=\"" + socket.string() + "\"";
  const std::vector<TracedCall> traced = ParseCalls(trace);
  const std::set<std::string> others = OtherProcesses(traced);
  std::vector<Call> calls;
  for (const TracedCall& call : traced) {
    if (others.count(call.tid) != 0) continue;
    if ((call.name == "connect" && call.text.find(sun_path) != std::string::npos) ||
        (call.name == "socket" && call.text.rfind("socket(AF_UNIX,", 0) == 0) ||
        call.name == "close") {
      calls.push_back({call.at_us, call.name, call.name == "connect" && ReturnedError(call.text)});
    }
  }
  return calls;
}

// The whole seconds of each window named `name`, in order: [begin, begin + 1 s), ... A window
// held for N s by a millisecond timer can end a little short of N s; up to kSlackUs short
// still counts as N seconds, the last one clipped to the window's end.
constexpr std::int64_t kSlackUs = 20000;
std::vector<std::pair<std::int64_t, std::int64_t>> Seconds(const std::vector<ProbeWindow>& windows,
                                                           const std::string& name) {
  std::vector<std::pair<std::int64_t, std::int64_t>> seconds;
  for (const auto& window : windows) {
    if (window.name != name || window.end_us <= window.begin_us) continue;
    const std::int64_t whole = (window.end_us - window.begin_us + kSlackUs) / kMicros;
    for (std::int64_t i = 0; i < whole; ++i) {
      seconds.emplace_back(window.begin_us + i * kMicros,
                           std::min(window.end_us, window.begin_us + (i + 1) * kMicros));
    }
  }
  return seconds;
}

std::vector<std::string> WindowNames(const std::vector<ProbeWindow>& windows) {
  std::vector<std::string> names;
  for (const auto& window : windows) {
    if (std::find(names.begin(), names.end(), window.name) == names.end()) {
      names.push_back(window.name);
    }
  }
  return names;
}

// Counts of `times` (sorted) in each second.
std::vector<double> CountPerSecond(const std::vector<std::int64_t>& times,
                                   const std::vector<std::pair<std::int64_t, std::int64_t>>& s) {
  std::vector<double> counts;
  for (const auto& [begin, end] : s) {
    auto from = std::lower_bound(times.begin(), times.end(), begin);
    auto to = std::lower_bound(times.begin(), times.end(), end);
    counts.push_back(static_cast<double>(to - from));
  }
  return counts;
}

// One sample of dockerd's threads.
struct Sample {
  std::int64_t at_us = 0;
  int threads = 0;
  int futex = 0;
  std::map<std::string, int> histogram;  // "S futex" -> count, for the evidence
};

Sample TakeSample(pid_t pid) {
  Sample sample;
  sample.at_us = RealtimeMicros();
  for (pid_t tid : probe::ListTasks(pid)) {
    Result<probe::TaskStat> stat = probe::ReadStat(pid, tid);
    if (!stat.ok()) continue;  // the thread exited meanwhile
    ++sample.threads;
    Result<std::string> syscall_text =
        sys::ReadFile("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall");
    std::string what = "?";
    if (syscall_text.ok()) {
      Result<probe::SyscallState> state = probe::ParseSyscall(*syscall_text);
      if (state.ok() && state->kind == probe::SyscallState::Kind::kInSyscall) {
        if (state->number == SYS_futex) ++sample.futex;
        what = state->number == SYS_futex ? "futex" : "nr " + std::to_string(state->number);
      } else if (state.ok()) {
        what = state->kind == probe::SyscallState::Kind::kRunning ? "running" : "user";
      }
    }
    ++sample.histogram[std::string(1, stat->state) + " " + what];
  }
  return sample;
}

std::string FormatSample(const Sample& sample) {
  std::ostringstream text;
  text << sample.threads << " threads, " << sample.futex << " in futex:";
  for (const auto& [what, count] : sample.histogram) text << " [" << what << "] x" << count;
  return text.str();
}

std::vector<std::string> Lines(std::string_view text) {
  std::vector<std::string> lines;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void AppendHeadAndTail(std::ostringstream& out, const std::vector<std::string>& lines,
                       const std::string& what) {
  out << what << " (" << lines.size() << " lines)";
  if (lines.empty()) {
    out << ": none\n";
    return;
  }
  out << ":\n";
  const size_t head = std::min(lines.size(), kEvidenceLines);
  for (size_t i = 0; i < head; ++i) out << "  " << lines[i] << "\n";
  if (lines.size() > 2 * kEvidenceLines) out << "  ...\n";
  for (size_t i = std::max(head, lines.size() - std::min(lines.size(), kEvidenceLines));
       i < lines.size(); ++i) {
    out << "  " << lines[i] << "\n";
  }
}

}  // namespace

std::vector<signature::ObservedSeries> CountTraceSeries(std::string_view trace,
                                                        const fs::path& containerd_socket,
                                                        const std::vector<ProbeWindow>& windows) {
  std::map<std::string, std::vector<std::int64_t>> times;
  for (const Call& call : ParseTrace(trace, containerd_socket)) {
    times[call.metric].push_back(call.at_us);
    if (call.failed) times["connect_errors"].push_back(call.at_us);
  }
  for (auto& [metric, list] : times) std::sort(list.begin(), list.end());
  std::vector<signature::ObservedSeries> series;
  for (const std::string& name : WindowNames(windows)) {
    const auto seconds = Seconds(windows, name);
    for (const std::string& metric : kCountMetrics) {
      series.push_back({metric, name, CountPerSecond(times[metric], seconds)});
    }
  }
  return series;
}

struct SyscallProbe::State {
  pid_t dockerd = 0;
  fs::path socket;
  fs::path dockerd_log;
  std::uintmax_t log_offset = 0;
  fs::path trace_file;
  fs::path strace_log;
  std::unique_ptr<StraceProcess> strace;

  std::vector<ProbeWindow> windows;
  std::optional<std::vector<signature::ObservedSeries>> series;  // once finished

  mutable std::mutex mutex;
  std::condition_variable wake;
  bool stop_sampling = false;
  std::vector<Sample> samples;  // guarded by mutex
  std::thread sampler;

  std::string trace_text;  // read by Finish
  std::vector<std::string> log_lines;
  std::vector<std::string> window_summaries;

  void RunSampler() {
    std::unique_lock lock(mutex);
    while (!stop_sampling) {
      lock.unlock();
      stack::Sample sample = TakeSample(dockerd);
      lock.lock();
      samples.push_back(std::move(sample));
      wake.wait_for(lock, std::chrono::milliseconds(kSamplePeriodMs),
                    [this] { return stop_sampling; });
    }
  }

  void StopSampling() {
    {
      std::lock_guard lock(mutex);
      stop_sampling = true;
    }
    wake.notify_all();
    if (sampler.joinable()) sampler.join();
  }

  Status Detach() { return strace ? strace->Detach() : OkStatus(); }
};

SyscallProbe::SyscallProbe(std::unique_ptr<State> state) : state_(std::move(state)) {}

SyscallProbe::~SyscallProbe() {
  state_->StopSampling();
  (void)state_->Detach();
}

Result<std::unique_ptr<SyscallProbe>> SyscallProbe::Attach(sys::Journal& journal, pid_t dockerd,
                                                           const fs::path& containerd_socket,
                                                           const fs::path& dockerd_log,
                                                           const fs::path& work_dir) {
  std::error_code ec;
  fs::create_directories(work_dir, ec);
  if (ec) return Error("create_directories('" + work_dir.string() + "'): " + ec.message());
  auto state = std::make_unique<State>();
  State& s = *state;
  s.dockerd = dockerd;
  s.socket = containerd_socket;
  s.dockerd_log = dockerd_log;
  s.log_offset = fs::file_size(dockerd_log, ec);
  if (ec) s.log_offset = 0;
  s.trace_file = work_dir / "strace.txt";
  s.strace_log = work_dir / "strace.log";
  // -f with -p attaches every thread of the process and each thread it creates later (strace(1)
  // on -p with -f); the clones tell its threads from the processes it forks.
  Result<std::unique_ptr<StraceProcess>> strace = StraceProcess::Attach(
      journal,
      {"-f", "-qq", "-ttt", "-e", "trace=connect,socket,close,clone,clone3,fork,vfork", "-e",
       "signal=none", "-o", s.trace_file.string()},
      dockerd, s.strace_log, kAttachTimeout);
  if (!strace.ok()) {
    return Error("syscall probe of dockerd (pid " + std::to_string(dockerd) +
                 "): " + strace.error().message());
  }
  s.strace = std::move(*strace);
  std::unique_ptr<SyscallProbe> probe(new SyscallProbe(std::move(state)));
  s.sampler = std::thread([&s] { s.RunSampler(); });
  return probe;
}

void SyscallProbe::BeginWindow(const std::string& name) {
  const std::int64_t now = RealtimeMicros();
  EndWindow();
  state_->windows.push_back({name, now, 0});
}

void SyscallProbe::EndWindow() {
  if (!state_->windows.empty() && state_->windows.back().end_us == 0) {
    state_->windows.back().end_us = RealtimeMicros();
  }
}

Result<std::vector<signature::ObservedSeries>> SyscallProbe::Finish() {
  State& s = *state_;
  if (s.series) return *s.series;
  EndWindow();
  s.StopSampling();
  WEDGE_RETURN_IF_ERROR(s.Detach());
  Result<std::string> trace = sys::ReadFile(s.trace_file);
  if (!trace.ok()) return trace.error().WithContext("syscall probe: reading the strace output");
  s.trace_text = std::move(*trace);

  std::vector<signature::ObservedSeries> series =
      CountTraceSeries(s.trace_text, s.socket, s.windows);
  // Per window: how dockerd's connects to containerd went, and when the first one succeeded.
  const std::vector<Call> calls = ParseTrace(s.trace_text, s.socket);
  for (const auto& window : s.windows) {
    int connects = 0, failed = 0;
    std::optional<std::int64_t> first_ok;
    for (const Call& call : calls) {
      if (call.metric != "connect" || call.at_us < window.begin_us || call.at_us >= window.end_us) {
        continue;
      }
      ++connects;
      failed += call.failed;
      if (!call.failed && !first_ok) first_ok = call.at_us - window.begin_us;
    }
    s.window_summaries.push_back(
        window.name + ": " + std::to_string(connects) + " connect() to the socket, " +
        std::to_string(failed) + " failed" +
        (first_ok ? ", the first that succeeded at +" + std::to_string(*first_ok / 1000) + " ms"
                  : std::string()));
  }
  // Log lines about containerd, by their own timestamps.
  std::vector<std::int64_t> log_times;
  {
    std::ifstream in(s.dockerd_log, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(s.log_offset));
    for (std::string line; std::getline(in, line);) {
      const bool trouble = std::any_of(kContainerdTrouble.begin(), kContainerdTrouble.end(),
                                       [&](const std::string& what) {
                                         return line.find(what) != std::string::npos;
                                       }) ||
                           (line.find(kFailedDial) != std::string::npos &&
                            line.find(s.socket.string()) != std::string::npos);
      const size_t time = line.find("time=\"");
      if (!trouble || time == std::string::npos) continue;
      std::optional<std::int64_t> when =
          ParseRfc3339Micros(std::string_view(line).substr(time + 6));
      if (!when) continue;
      log_times.push_back(*when);
      s.log_lines.push_back(line);
    }
  }
  std::sort(log_times.begin(), log_times.end());
  std::vector<Sample> samples;
  {
    std::lock_guard lock(s.mutex);
    samples = s.samples;
  }
  for (const std::string& name : WindowNames(s.windows)) {
    const auto seconds = Seconds(s.windows, name);
    std::vector<double> threads, futex;
    double last_threads = samples.empty() ? 0 : samples.front().threads;
    double last_futex = samples.empty() ? 0 : samples.front().futex;
    for (const auto& [begin, end] : seconds) {
      double sum_threads = 0, sum_futex = 0;
      int count = 0;
      for (const auto& sample : samples) {
        if (sample.at_us < begin) {
          last_threads = sample.threads;
          last_futex = sample.futex;
        } else if (sample.at_us < end) {
          sum_threads += sample.threads;
          sum_futex += sample.futex;
          ++count;
        }
      }
      // A second without a sample (the sampler stalled) takes the latest one before it.
      threads.push_back(count ? sum_threads / count : last_threads);
      futex.push_back(count ? sum_futex / count : last_futex);
    }
    series.push_back({kGaugeMetrics[0], name, threads});
    series.push_back({kGaugeMetrics[1], name, futex});
    series.push_back({kLogMetric, name, CountPerSecond(log_times, seconds)});
  }
  s.series = series;
  return series;
}

std::string SyscallProbe::EvidenceText() const {
  const State& s = *state_;
  std::ostringstream out;
  out << "syscall probe of dockerd (pid " << s.dockerd << "): connect() to " << s.socket.string()
      << ", socket(AF_UNIX), close(); threads sampled every " << kSamplePeriodMs << " ms\n";
  out << "strace: " << s.strace->Describe() << "\n";
  Result<std::string> strace_log = sys::ReadFile(s.strace_log);
  if (strace_log.ok() && !strace_log->empty()) {
    out << "  strace said: " << sys::TrimTrailing(*strace_log) << "\n";
  }
  out << "windows (CLOCK_REALTIME):\n";
  for (const auto& window : s.windows) {
    char begin[32];
    std::snprintf(begin, sizeof begin, "%.6f", static_cast<double>(window.begin_us) / kMicros);
    out << "  " << window.name << " from " << begin << " for "
        << (window.end_us ? std::to_string((window.end_us - window.begin_us) / 1000) + " ms"
                          : std::string("(open)"))
        << "\n";
  }
  for (const auto& summary : s.window_summaries) out << "  " << summary << "\n";
  if (s.series) {
    out << "per-second series:\n";
    for (const auto& series : *s.series) {
      out << "  " << series.window << " " << series.metric << ":";
      for (double value : series.per_second) out << " " << value;
      out << "\n";
    }
  }
  AppendHeadAndTail(out, Lines(s.trace_text), "trace " + s.trace_file.string());
  std::vector<std::string> samples;
  {
    std::lock_guard lock(s.mutex);
    if (!s.samples.empty()) {
      samples.push_back("first: " + FormatSample(s.samples.front()));
      const auto busiest =
          std::max_element(s.samples.begin(), s.samples.end(),
                           [](const Sample& a, const Sample& b) { return a.threads < b.threads; });
      samples.push_back("most threads: " + FormatSample(*busiest));
      samples.push_back("last: " + FormatSample(s.samples.back()));
    }
  }
  AppendHeadAndTail(out, samples, "thread samples");
  AppendHeadAndTail(out, s.log_lines, "dockerd log lines about containerd");
  return out.str();
}

}  // namespace wedge::stack
