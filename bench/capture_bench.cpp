// Capture cost: a full snapshot (stack, status, stat, wchan, syscall, fds with pipe peeking) of
// a process with 200 threads, repeated. Prints `name: value unit` lines for bench/run.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>
#include <vector>

#include "wedge/probe/task.h"

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 200;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 50;
  int ready[2];
  if (::pipe(ready) != 0) return 1;
  pid_t child = ::fork();
  if (child == 0) {
    std::vector<std::thread> sleepers;
    for (int i = 1; i < threads; ++i) sleepers.emplace_back([] { ::pause(); });
    char byte = 1;
    (void)!::write(ready[1], &byte, 1);
    ::pause();
    return 0;
  }
  char byte = 0;
  (void)!::read(ready[0], &byte, 1);
  std::vector<double> ms;
  for (int i = 0; i < rounds; ++i) {
    auto start = std::chrono::steady_clock::now();
    wedge::probe::TreeSnapshot snapshot = wedge::probe::ReadProcesses({child}, /*peek_pipes=*/true);
    auto end = std::chrono::steady_clock::now();
    if (snapshot.processes.empty() ||
        snapshot.processes[0].tasks.size() != static_cast<size_t>(threads)) {
      std::fprintf(stderr, "capture saw %zu tasks, expected %d\n",
                   snapshot.processes.empty() ? 0 : snapshot.processes[0].tasks.size(), threads);
    }
    ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
  }
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  std::sort(ms.begin(), ms.end());
  std::printf("capture_%d_threads_min: %.2f ms\n", threads, ms.front());
  std::printf("capture_%d_threads_median: %.2f ms\n", threads, ms[ms.size() / 2]);
  std::printf("capture_%d_threads_max: %.2f ms\n", threads, ms.back());
  return 0;
}
