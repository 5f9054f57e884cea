#include "wedge/sys/command.h"

#include <boost/process.hpp>
#include <future>
#include <thread>

namespace wedge::sys {

namespace {

namespace bp = boost::process;

Result<CommandOutput> Run(const std::string& program, const std::vector<std::string>& args,
                          std::chrono::milliseconds timeout, const bp::environment& environment) {
  boost::filesystem::path path = program.find('/') == std::string::npos
                                     ? bp::search_path(program)
                                     : boost::filesystem::path(program);
  if (path.empty()) return Error(program + ": not found in PATH");
  try {
    boost::asio::io_context io;
    std::future<std::string> output;
    bp::child child(path, bp::args(args), (bp::std_out & bp::std_err) > output, bp::std_in.close(),
                    environment, io);
    // Run the I/O loop until the output pipe closes or the deadline passes; the pipe closes
    // as the command exits, a moment before it can be waited for.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    io.run_until(deadline);
    while (child.running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (child.running()) {
      child.terminate();
      return Error(program + ": still running after " + std::to_string(timeout.count()) +
                   " ms; killed");
    }
    child.wait();
    return CommandOutput{child.exit_code(), output.get()};
  } catch (const std::exception& e) {
    return Error(program + ": " + e.what());
  }
}

}  // namespace

Result<CommandOutput> RunCommand(const std::string& program, const std::vector<std::string>& args,
                                 std::chrono::milliseconds timeout) {
  return Run(program, args, timeout, boost::this_process::environment());
}

Result<CommandOutput> RunCommand(const std::string& program, const std::vector<std::string>& args,
                                 std::chrono::milliseconds timeout,
                                 const std::map<std::string, std::string>& environment) {
  bp::environment exact;
  for (const auto& [name, value] : environment) exact[name] = value;
  return Run(program, args, timeout, exact);
}

}  // namespace wedge::sys
