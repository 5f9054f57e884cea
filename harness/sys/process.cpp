#include "wedge/sys/process.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <thread>

#include "wedge/probe/task.h"

namespace wedge::sys {

std::optional<std::uint64_t> ProcessStartTime(pid_t pid) {
  Result<probe::TaskStat> stat = probe::ReadStat(pid, pid);
  if (!stat.ok()) return std::nullopt;
  return stat->start_time;
}

bool IsSameProcess(pid_t pid, std::uint64_t start_time) {
  std::optional<std::uint64_t> now = ProcessStartTime(pid);
  return now && *now == start_time;
}

Result<Pidfd> Pidfd::Open(pid_t pid) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return ErrnoError("pidfd_open(" + std::to_string(pid) + ")");
  return Pidfd(pid, UniqueFd(fd));
}

Status Pidfd::SendSignal(int signo) const {
  if (::syscall(SYS_pidfd_send_signal, fd_.get(), signo, nullptr, 0) != 0 && errno != ESRCH) {
    return ErrnoError("pidfd_send_signal(" + std::to_string(pid_) + ", " + std::to_string(signo) +
                      ")");
  }
  return OkStatus();
}

bool Pidfd::HasExited() const {
  pollfd pfd{fd_.get(), POLLIN, 0};
  return ::poll(&pfd, 1, 0) > 0;
}

bool Pidfd::WaitForExit(std::chrono::milliseconds bound) const {
  const std::int64_t deadline = MonotonicMillis() + bound.count();
  for (;;) {
    const std::int64_t left = deadline - MonotonicMillis();
    pollfd pfd{fd_.get(), POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(std::max<std::int64_t>(left, 0)));
    if (ready > 0) return true;
    if ((ready == 0 || errno != EINTR) || left <= 0) return false;
  }
}

std::vector<pid_t> ParsePidList(std::string_view text) {
  std::vector<pid_t> pids;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  while (p < end) {
    pid_t pid = 0;
    auto [next, ec] = std::from_chars(p, end, pid);
    if (ec == std::errc()) {
      pids.push_back(pid);
      p = next;
    } else {
      ++p;
    }
  }
  return pids;
}

namespace {
std::atomic<int> interrupt_signal{0};

void RecordInterrupt(int signo) { interrupt_signal.store(signo); }
}  // namespace

void InstallInterruptHandlers() {
  struct sigaction action {};
  action.sa_handler = RecordInterrupt;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGHUP, &action, nullptr);
}

int Interrupted() { return interrupt_signal.load(); }

int WaitForInterrupt() {
  // Blocked while the flag is checked, so a signal between the check and the wait is not lost:
  // ppoll unblocks them and sleeps in one step. The signal may be taken by another of wedge's
  // threads instead, which sets the flag without waking this one: the wait is therefore cut into
  // slices, each of which checks the flag again.
  sigset_t interrupts, previous;
  sigemptyset(&interrupts);
  for (int signo : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&interrupts, signo);
  ::pthread_sigmask(SIG_BLOCK, &interrupts, &previous);
  sigset_t waiting = previous;
  for (int signo : {SIGINT, SIGTERM, SIGHUP}) sigdelset(&waiting, signo);
  const timespec slice{0, 100 * 1000 * 1000};
  while (Interrupted() == 0) ::ppoll(nullptr, 0, &slice, &waiting);
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return Interrupted();
}

void ClearInterrupt() { interrupt_signal.store(0); }

void SleepFor(std::chrono::milliseconds duration) {
  // Sleep in short slices so a SIGINT is noticed promptly even if it lands between checks.
  std::int64_t deadline = MonotonicMillis() + duration.count();
  while (!Interrupted()) {
    std::int64_t left = deadline - MonotonicMillis();
    if (left <= 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<std::int64_t>(left, 20)));
  }
}

std::int64_t MonotonicMillis() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace wedge::sys
