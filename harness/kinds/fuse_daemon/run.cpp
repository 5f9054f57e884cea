#include <filesystem>

#include "wedge/kinds/fuse_daemon.h"
#include "wedge/runner/run_context.h"

namespace wedge::kinds {

Status Prepare(const scenario::FuseDaemonFixture& fixture, runner::RunContext& context) {
  std::error_code ec;
  std::filesystem::create_directories(context.run_dir / fixture.mountpoint, ec);
  return OkStatus();
}

namespace {

// wedge-fuse's options after its binary, for a mountpoint `mountpoint`.
std::vector<std::string> DaemonArgv(const std::string& binary, const std::string& mountpoint,
                                    const scenario::FuseDaemonFixture& fixture) {
  std::vector<std::string> argv = {binary, "--mountpoint", mountpoint, "--file", fixture.file};
  if (fixture.holder_thread) argv.push_back("--holder-thread");
  if (fixture.holder_open == scenario::FuseDaemonFixture::HolderOpen::kPath) {
    argv.insert(argv.end(), {"--holder-open", "path"});
  }
  if (fixture.holder_closes) argv.push_back("--holder-closes");
  argv.push_back("--flush");
  argv.push_back(fixture.flush == scenario::FuseDaemonFixture::Flush::kReply ? "reply" : "never");
  return argv;
}

}  // namespace

std::vector<std::string> Argv(const scenario::FuseDaemonFixture& fixture,
                              const runner::RunContext& context) {
  return DaemonArgv((context.options.fixtures_dir / "wedge-fuse").string(),
                    (context.run_dir / fixture.mountpoint).string(), fixture);
}

ContainerRun InContainer(const scenario::FuseDaemonFixture& fixture,
                         const runner::RunContext& context) {
  const std::string mountpoint = "/wedge/" + fixture.mountpoint;
  ContainerRun run;
  run.binary = context.options.fixtures_dir / "wedge-fuse";
  // mount(2) of a FUSE filesystem needs the device and CAP_SYS_ADMIN in the container; docker
  // creates the working directory, which is then the mountpoint.
  run.run_options = {"--device", "/dev/fuse", "--cap-add", "SYS_ADMIN", "--workdir", mountpoint};
  run.argv = DaemonArgv("/wedge/wedge-fuse", mountpoint, fixture);
  run.argv.push_back("--ready-fd");
  run.argv.push_back("1");
  return run;
}

}  // namespace wedge::kinds
