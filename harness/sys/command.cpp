#include "wedge/sys/command.h"

#include <boost/process.hpp>
#include <future>

namespace wedge::sys {

Result<CommandOutput> RunCommand(const std::string& program, const std::vector<std::string>& args,
                                 std::chrono::milliseconds timeout) {
  namespace bp = boost::process;
  boost::filesystem::path path = program.find('/') == std::string::npos
                                     ? bp::search_path(program)
                                     : boost::filesystem::path(program);
  if (path.empty()) return Error(program + ": not found in PATH");
  try {
    boost::asio::io_context io;
    std::future<std::string> output;
    bp::child child(path, bp::args(args), (bp::std_out & bp::std_err) > output, bp::std_in.close(),
                    io);
    // Run the I/O loop until the output pipe closes or the deadline passes.
    io.run_for(timeout);
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

}  // namespace wedge::sys
