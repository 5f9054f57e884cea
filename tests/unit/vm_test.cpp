// The pure parts of the kernel matrix: kernel specs, package selection, module closure, the
// initramfs writer, the guest's console markers and the matrix table.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "wedge/stack/release_archive.h"
#include "wedge/sys/command.h"
#include "wedge/sys/files.h"
#include "wedge/vm/guest.h"
#include "wedge/vm/guest_stack.h"
#include "wedge/vm/initramfs.h"
#include "wedge/vm/kernel.h"
#include "wedge/vm/matrix.h"

namespace wedge::vm {
namespace {

namespace fs = std::filesystem;

const fs::path kData = fs::path(WEDGE_TEST_DATA_DIR) / "vm";

std::string Recorded(const std::string& name) {
  Result<std::string> text = sys::ReadFile(kData / name);
  EXPECT_TRUE(text.ok()) << name;
  return text.ok() ? *text : "";
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A fresh directory under the test's temp dir, removed afterwards.
class TempDirectory {
 public:
  TempDirectory()
      : path_(fs::temp_directory_path() /
              ("wedge-vm-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++))) {
    fs::create_directories(path_);
  }
  ~TempDirectory() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

TEST(KernelSpec, HostPathOrPackage) {
  auto host = ParseKernelSpec("host");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->source, KernelSource::kHost);
  auto path = ParseKernelSpec("./boot/vmlinuz-6.1.0-56-cloud-amd64");
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(path->source, KernelSource::kPath);
  auto glob = ParseKernelSpec("linux-image-6.1.0-*-cloud-amd64");
  ASSERT_TRUE(glob.ok());
  EXPECT_EQ(glob->source, KernelSource::kPackage);
  EXPECT_EQ(glob->text, "linux-image-6.1.0-*-cloud-amd64");
}

TEST(KernelSpec, APackageMayNameTheReleaseWhoseArchiveHasIt) {
  auto bullseye = ParseKernelSpec("bullseye:linux-image-5.10.0-*-cloud-amd64");
  ASSERT_TRUE(bullseye.ok()) << bullseye.error().message();
  EXPECT_EQ(bullseye->source, KernelSource::kPackage);
  EXPECT_EQ(bullseye->release, "bullseye");
  EXPECT_EQ(bullseye->package, "linux-image-5.10.0-*-cloud-amd64");
  EXPECT_EQ(bullseye->text, "bullseye:linux-image-5.10.0-*-cloud-amd64");
  auto host_apt = ParseKernelSpec("linux-image-6.1.0-*-cloud-amd64");
  ASSERT_TRUE(host_apt.ok());
  EXPECT_EQ(host_apt->release, "");
  EXPECT_EQ(host_apt->package, "linux-image-6.1.0-*-cloud-amd64");
  auto buster = ParseKernelSpec("buster:linux-image-4.19.0-*-cloud-amd64");
  ASSERT_FALSE(buster.ok());
  EXPECT_EQ(buster.error().message(),
            "--kernel buster:linux-image-4.19.0-*-cloud-amd64: buster is not a release wedge "
            "fetches from (bullseye, bookworm, trixie, sid)");
  EXPECT_FALSE(ParseKernelSpec("sid:").ok());
  EXPECT_FALSE(ParseKernelSpec("sid:-linux").ok());
}

TEST(KernelSpec, RefusesWhatIsNeitherAPathNorAPackageName) {
  EXPECT_FALSE(ParseKernelSpec("").ok());
  EXPECT_FALSE(ParseKernelSpec("Linux-Image").ok());
  EXPECT_FALSE(ParseKernelSpec("linux-image;rm").ok());
  EXPECT_FALSE(ParseKernelSpec("-linux").ok());
}

TEST(KernelPackage, GlobPicksTheHighestImageAndNeverItsDbgOrUnsignedSibling) {
  const auto available = Lines(Recorded("apt-cache-pkgnames-linux-image-6.1.0.txt"));
  auto picked = SelectKernelPackage("linux-image-6.1.0-*-cloud-amd64", available);
  ASSERT_TRUE(picked.ok()) << picked.error().message();
  EXPECT_EQ(*picked, "linux-image-6.1.0-56-cloud-amd64");
  auto plain = SelectKernelPackage("linux-image-6.1.0-*-amd64", available);
  ASSERT_TRUE(plain.ok());
  // "-*-amd64" also matches the cloud images; the highest version wins, never a -dbg.
  EXPECT_EQ(plain->find("-dbg"), std::string::npos);
  EXPECT_EQ(plain->find("-unsigned"), std::string::npos);
}

TEST(KernelPackage, VersionSortRanksTenAboveNine) {
  auto picked =
      SelectKernelPackage("linux-image-6.1.0-*-cloud-amd64",
                          {"linux-image-6.1.0-9-cloud-amd64", "linux-image-6.1.0-10-cloud-amd64",
                           "linux-image-6.1.0-10-cloud-amd64-dbg"});
  ASSERT_TRUE(picked.ok());
  EXPECT_EQ(*picked, "linux-image-6.1.0-10-cloud-amd64");
}

TEST(KernelPackage, AnExactNameSelectsItselfAndAnUnknownOneIsAnError) {
  const auto available = Lines(Recorded("apt-cache-pkgnames-linux-image-6.1.0.txt"));
  auto exact = SelectKernelPackage("linux-image-6.1.0-50-cloud-amd64", available);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(*exact, "linux-image-6.1.0-50-cloud-amd64");
  auto unknown = SelectKernelPackage("linux-image-9.9.9-*", available);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message().find("linux-image-9.9.9-*"), std::string::npos);
}

TEST(KernelResolution, AMissingVmlinuzIsAnErrorNamingIt) {
  auto kernel =
      ResolveKernel(*ParseKernelSpec("/nonexistent/vmlinuz-1.2.3"), "/nonexistent", nullptr);
  ASSERT_FALSE(kernel.ok());
  EXPECT_NE(kernel.error().message().find("/nonexistent/vmlinuz-1.2.3"), std::string::npos);
}

TEST(KernelResolution, AnExtractedPackageFindsItsModulesBesideBoot) {
  TempDirectory root;
  fs::create_directories(root.path() / "boot");
  fs::create_directories(root.path() / "lib/modules/6.1.0-56-cloud-amd64/kernel");
  std::ofstream(root.path() / "boot/vmlinuz-6.1.0-56-cloud-amd64") << "not really a kernel";
  auto kernel = ResolveKernel(
      *ParseKernelSpec((root.path() / "boot/vmlinuz-6.1.0-56-cloud-amd64").string()), "", nullptr);
  ASSERT_TRUE(kernel.ok()) << kernel.error().message();
  EXPECT_EQ(kernel->release, "6.1.0-56-cloud-amd64");
  EXPECT_EQ(kernel->modules_dir, root.path() / "lib/modules/6.1.0-56-cloud-amd64");
  EXPECT_FALSE(kernel->host);
}

TEST(KernelResolution, SidsImageInsideItsModulesDirectoryNamesTheReleaseAndTheModules) {
  TempDirectory root;
  const fs::path modules = root.path() / "usr/lib/modules/7.2.13+deb14-cloud-amd64";
  fs::create_directories(modules / "kernel");
  std::ofstream(modules / "vmlinuz") << "not really a kernel";
  auto kernel = ResolveKernel(*ParseKernelSpec((modules / "vmlinuz").string()), "", nullptr);
  ASSERT_TRUE(kernel.ok()) << kernel.error().message();
  EXPECT_EQ(kernel->release, "7.2.13+deb14-cloud-amd64");
  EXPECT_EQ(kernel->modules_dir, modules);
}

TEST(KernelPackage, SidsEmptyImagePackageNamesItsBinaryAndModulesAmongItsDepends) {
  const std::vector<std::string> depends =
      stack::ParseDepends(Recorded("apt-cache-show-sid-linux-image-7.2.13-cloud-amd64.txt"));
  EXPECT_EQ(depends, (std::vector<std::string>{"dracut", "linux-base-7.2.13+deb14-cloud-amd64",
                                               "linux-binary-7.2.13+deb14-cloud-amd64",
                                               "linux-modules-7.2.13+deb14-cloud-amd64"}));
  EXPECT_TRUE(stack::ParseDepends("Package: busybox\nVersion: 1\n").empty());
}

TEST(KernelModules, NamesTreatDashAndUnderscoreAlike) {
  EXPECT_EQ(ModuleName("kernel/fs/fuse/fuse.ko"), "fuse");
  EXPECT_EQ(ModuleName("kernel/drivers/md/dm-cache-smq.ko.xz"), "dm_cache_smq");
}

TEST(KernelModules, ClosureFromModulesDepLoadsDependenciesFirst) {
  auto modules = ParseModulesDep(Recorded("modules.dep-6.1.0-56-cloud-amd64.excerpt"));
  auto lookup = [&](const std::string& name) -> std::optional<KernelModule> {
    auto found = modules.find(name);
    if (found == modules.end()) return std::nullopt;
    return found->second;
  };
  auto fuse = ModuleLoadOrder({"fuse"}, lookup);
  ASSERT_TRUE(fuse.ok());
  ASSERT_EQ(fuse->size(), 1u);
  EXPECT_EQ((*fuse)[0].path, "kernel/fs/fuse/fuse.ko");

  auto nat = ModuleLoadOrder({"nft_chain_nat"}, lookup);
  ASSERT_TRUE(nat.ok()) << nat.error().message();
  std::vector<std::string> names;
  for (const auto& module : *nat) names.push_back(module.name);
  auto position = [&](const std::string& name) {
    return std::find(names.begin(), names.end(), name) - names.begin();
  };
  EXPECT_EQ(names.size(), 8u);
  EXPECT_EQ(names.back(), "nft_chain_nat");
  EXPECT_LT(position("libcrc32c"), position("nf_conntrack"));
  EXPECT_LT(position("nf_defrag_ipv4"), position("nf_conntrack"));
  EXPECT_LT(position("nf_conntrack"), position("nf_nat"));
  EXPECT_LT(position("nfnetlink"), position("nf_tables"));
}

TEST(KernelModules, AMissingDependencyIsNamed) {
  auto order = ModuleLoadOrder({"a"}, [](const std::string& name) -> std::optional<KernelModule> {
    if (name == "a") return KernelModule{"a", "kernel/a.ko", {"b"}};
    return std::nullopt;
  });
  ASSERT_FALSE(order.ok());
  EXPECT_NE(order.error().message().find("a needs b"), std::string::npos);
}

TEST(KernelModules, BuiltinModulesAreNotLoaded) {
  EXPECT_EQ(ParseModulesBuiltin(Recorded("modules.builtin-6.12.117+deb12-cloud-amd64.excerpt")),
            (std::set<std::string>{"ext4", "fuse", "virtiofs"}));
  TempDirectory dir;
  fs::create_directories(dir.path() / "kernel/fs/fuse");
  std::ofstream(dir.path() / "modules.builtin")
      << Recorded("modules.builtin-6.12.117+deb12-cloud-amd64.excerpt");
  auto order = ModuleLoadOrder({"fuse"}, dir.path());
  ASSERT_TRUE(order.ok()) << order.error().message();
  EXPECT_TRUE(order->empty());
}

TEST(KernelModules, ModinfoDependsComesFromTheModuleItself) {
  EXPECT_EQ(ParseModinfoDepends(Recorded("nf_nat.ko.modinfo")),
            (std::vector<std::string>{"nf_conntrack", "libcrc32c"}));
  EXPECT_TRUE(ParseModinfoDepends(std::string("license=GPL\0depends=\0name=fuse\0", 31)).empty());
}

TEST(KernelModules, WithoutModulesDepTheClosureReadsEachModulesModinfo) {
  TempDirectory dir;
  fs::create_directories(dir.path() / "kernel/net");
  std::ofstream(dir.path() / "kernel/net/nf_nat.ko", std::ios::binary)
      << Recorded("nf_nat.ko.modinfo");
  std::ofstream(dir.path() / "kernel/net/nf_conntrack.ko", std::ios::binary)
      << std::string("\0depends=libcrc32c\0", 19);
  std::ofstream(dir.path() / "kernel/net/libcrc32c.ko", std::ios::binary)
      << std::string("\0depends=\0", 10);
  auto order = ModuleLoadOrder({"nf-nat"}, dir.path());
  ASSERT_TRUE(order.ok()) << order.error().message();
  std::vector<std::string> names;
  for (const auto& module : *order) names.push_back(module.name);
  EXPECT_EQ(names, (std::vector<std::string>{"libcrc32c", "nf_conntrack", "nf_nat"}));
}

TEST(Initramfs, CpioArchiveListsAndExtractsWithBusybox) {
  if (!fs::exists("/bin/busybox")) GTEST_SKIP() << "/bin/busybox (busybox-static) is missing";
  TempDirectory dir;
  const fs::path archive = dir.path() / "test.cpio";
  {
    auto writer = CpioWriter::Create(archive);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(writer->AddDirectory("bin", 0755).ok());
    ASSERT_TRUE(writer->AddFile("bin/hello", "#!/bin/sh\necho hi\n", 0755).ok());
    ASSERT_TRUE(writer->AddFile("odd", "abc", 0644).ok());  // 3 bytes: data padding
    ASSERT_TRUE(writer->AddSymlink("bin/sh", "busybox").ok());
    ASSERT_TRUE(writer->Finish().ok());
  }
  auto listing = sys::RunCommand(
      "sh", {"-c", "cd \"$1\" && /bin/busybox cpio -t < test.cpio", "sh", dir.path().string()});
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->exit_code, 0) << listing->output;
  for (const char* name : {"bin\n", "bin/hello\n", "odd\n", "bin/sh\n"}) {
    EXPECT_NE(listing->output.find(name), std::string::npos) << listing->output;
  }
  fs::create_directories(dir.path() / "out");
  auto extract = sys::RunCommand(
      "sh",
      {"-c", "cd \"$1\"/out && /bin/busybox cpio -i < ../test.cpio", "sh", dir.path().string()});
  ASSERT_TRUE(extract.ok());
  EXPECT_EQ(extract->exit_code, 0) << extract->output;
  EXPECT_EQ(*sys::ReadFile(dir.path() / "out/bin/hello"), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(*sys::ReadFile(dir.path() / "out/odd"), "abc");
  EXPECT_EQ(fs::read_symlink(dir.path() / "out/bin/sh"), "busybox");
  EXPECT_EQ(fs::status(dir.path() / "out/bin/hello").permissions() & fs::perms::owner_exec,
            fs::perms::owner_exec);
}

TEST(Initramfs, LddOutputGivesLibrariesAndTheInterpreterButNotTheVdso) {
  auto paths = ParseLddOutput(Recorded("ldd-wedge-fuse.txt"));
  EXPECT_EQ(paths.size(), 6u);
  EXPECT_NE(std::find(paths.begin(), paths.end(), "/lib64/ld-linux-x86-64.so.2"), paths.end());
  EXPECT_NE(std::find(paths.begin(), paths.end(), "/lib/x86_64-linux-gnu/libfuse3.so.3"),
            paths.end());
  for (const auto& path : paths) EXPECT_EQ(path.string().find("vdso"), std::string::npos);
}

TEST(Initramfs, InitLoadsModulesInOrderThenRunsWedgeAndSendsTheReport) {
  GuestContents contents;
  contents.scenario_files = {"/src/scenarios/fuse-flush-pidns-teardown.json"};
  contents.modules = {{"libcrc32c", "kernel/lib/libcrc32c.ko", {}},
                      {"fuse", "kernel/fs/fuse/fuse.ko", {}}};
  contents.wedge_arguments = {"--expect", "reproduced"};
  const std::string script = GuestInitScript(contents);
  EXPECT_EQ(script.rfind("#!/bin/sh\n", 0), 0u);
  EXPECT_LT(script.find("insmod '/modules/kernel/lib/libcrc32c.ko'"),
            script.find("insmod '/modules/kernel/fs/fuse/fuse.ko'"));
  EXPECT_NE(script.find("mount -t cgroup2 cgroup2 /sys/fs/cgroup"), std::string::npos);
  EXPECT_NE(script.find("/wedge/wedge run '/scenarios/fuse-flush-pidns-teardown.json' "
                        "'--expect' 'reproduced' --json /tmp/report.json"),
            std::string::npos);
  EXPECT_LT(script.find("cat /tmp/report.json > /dev/ttyS1"), script.find("poweroff -f"));
}

TEST(Initramfs, InitDecompressesXzModulesBeforeLoadingThem) {
  GuestContents contents;
  contents.modules = {{"vsock", "kernel/net/vmw_vsock/vsock.ko.xz", {}}};
  const std::string script = GuestInitScript(contents);
  EXPECT_NE(script.find("unxz -c '/modules/kernel/net/vmw_vsock/vsock.ko.xz' > '/tmp/vsock.ko' "
                        "&& insmod '/tmp/vsock.ko'"),
            std::string::npos)
      << script;
}

TEST(Initramfs, AStackGuestMovesToATmpfsRootMountsItsDiskAndExportsItsEnvironment) {
  GuestContents contents;
  contents.switch_root = true;
  contents.stack_root = "/var/cache/wedge/stacks/bullseye-331eff315905";
  contents.disk_image = "/var/cache/wedge/stacks/bullseye-331eff315905.ext4";
  contents.environment["WEDGE_STACK_CACHE"] = "/var/cache/wedge/stacks";
  contents.wedge_arguments = {"--stack", "bullseye"};
  const std::string script = GuestInitScript(contents);
  const size_t switched = script.find("exec switch_root /newroot /init");
  ASSERT_NE(switched, std::string::npos) << script;
  // The move comes first: everything after it runs on the tmpfs root.
  EXPECT_LT(switched, script.find("mount -t proc proc /proc"));
  const size_t mounted =
      script.find("mount -t ext4 -o ro /dev/vda '/var/cache/wedge/stacks/bullseye-331eff315905'");
  ASSERT_NE(mounted, std::string::npos) << script;
  const size_t exported = script.find("export WEDGE_STACK_CACHE='/var/cache/wedge/stacks'");
  ASSERT_NE(exported, std::string::npos) << script;
  const size_t run = script.find("/wedge/wedge run '--stack' 'bullseye'");
  ASSERT_NE(run, std::string::npos) << script;
  EXPECT_LT(mounted, run);
  EXPECT_LT(exported, run);
  // A process-scenario guest stays on its initramfs, as before.
  EXPECT_EQ(GuestInitScript(GuestContents{}).find("switch_root"), std::string::npos);
}

TEST(GuestStack, TheHostsStackGoesIntoTheInitramfsWithItsToolsAndItsEtc) {
  GuestContents contents;
  ASSERT_TRUE(AddStack(stack::Binaries::Defaults(), contents).ok());
  for (const char* program : {"/usr/sbin/dockerd", "/usr/bin/containerd", "/usr/sbin/runc",
                              "/usr/bin/docker", "/usr/bin/containerd-shim-runc-v2",
                              "/usr/bin/docker-init", "/usr/bin/tar", "/usr/bin/strace"}) {
    EXPECT_NE(std::find(contents.programs.begin(), contents.programs.end(), program),
              contents.programs.end())
        << program;
  }
  EXPECT_EQ(contents.files["/etc/group"], "root:x:0:\n");
  EXPECT_TRUE(contents.switch_root);
  EXPECT_TRUE(contents.stack_root.empty());
  EXPECT_EQ(StackModules(stack::Binaries::Defaults()), std::vector<std::string>{"overlay"});
}

TEST(GuestStack, AReleasesStackComesOnItsDiskWithItsManifestAndAMixIsRefused) {
  TempDirectory cache;
  const fs::path root = cache.path() / "bullseye-331eff315905";
  fs::create_directories(root);
  std::ofstream(root.string() + ".json") << "{\"release\": \"bullseye\"}\n";
  stack::Binaries binaries = stack::Binaries::Defaults();
  binaries.root = root;
  binaries.release = "bullseye";
  GuestContents contents;
  ASSERT_TRUE(AddStack(binaries, contents).ok());
  EXPECT_EQ(contents.stack_root, root);
  EXPECT_EQ(contents.files[root.string() + ".json"], "{\"release\": \"bullseye\"}\n");
  EXPECT_EQ(contents.environment["WEDGE_STACK_CACHE"], cache.path().string());
  EXPECT_EQ(contents.wedge_arguments, (std::vector<std::string>{"--stack", "bullseye"}));
  // Its daemons are the root's: none of the host's go into the initramfs.
  EXPECT_EQ(std::find(contents.programs.begin(), contents.programs.end(), "/usr/sbin/dockerd"),
            contents.programs.end());
  EXPECT_EQ(StackModules(binaries),
            (std::vector<std::string>{"overlay", "virtio_pci", "virtio_blk"}));

  fs::remove(root.string() + ".json");
  GuestContents without_manifest;
  EXPECT_FALSE(AddStack(binaries, without_manifest).ok());

  stack::Binaries mixed = stack::Binaries::Defaults();
  mixed.components["runc"] = {"bullseye", root, root / "usr/sbin/runc"};
  GuestContents refused;
  const Status status = AddStack(mixed, refused);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message().find("does not run in a guest"), std::string::npos);
}

TEST(GuestConsole, MarkersGiveBootTimeExitStatusAndEndTime) {
  auto console = ParseGuestConsole(
      "[    0.000000] Linux version 6.1.0\r\n"
      "wedge-guest: booted 1.21\r\n"
      "PASS   fuse-flush-pidns-teardown  reproduced\r\n"
      "wedge-guest: wedge exited 1 at 1.97\r\n"
      "[    2.064175] reboot: Power down\r\n");
  ASSERT_TRUE(console.booted_at_s.has_value());
  EXPECT_DOUBLE_EQ(*console.booted_at_s, 1.21);
  ASSERT_TRUE(console.wedge_exit.has_value());
  EXPECT_EQ(*console.wedge_exit, 1);
  ASSERT_TRUE(console.exited_at_s.has_value());
  EXPECT_DOUBLE_EQ(*console.exited_at_s, 1.97);
  auto silent = ParseGuestConsole("Kernel panic - not syncing: VFS\n");
  EXPECT_FALSE(silent.booted_at_s.has_value());
  EXPECT_FALSE(silent.wedge_exit.has_value());
}

TEST(Qemu, ArgumentsUseTcgAndTwoSerialPortsAndNeverKvm) {
  GuestOptions options;
  KernelImage kernel;
  kernel.vmlinuz = "/cache/boot/vmlinuz-6.1";
  auto argv = QemuArguments(options, kernel, "/run/i.cpio", "/run/console.log", "/run/r.json");
  std::string joined;
  for (const auto& arg : argv) joined += arg + " ";
  EXPECT_NE(joined.find("-accel tcg "), std::string::npos);
  EXPECT_EQ(joined.find("kvm"), std::string::npos);
  EXPECT_NE(joined.find("-no-reboot "), std::string::npos);
  EXPECT_NE(joined.find("-serial file:/run/console.log -serial file:/run/r.json"),
            std::string::npos);
  EXPECT_NE(joined.find("panic=-1"), std::string::npos);
  EXPECT_EQ(joined.find("-drive"), std::string::npos);
  auto with_disk = QemuArguments(options, kernel, "/run/i.cpio", "/run/console.log", "/run/r.json",
                                 "/cache/bullseye-1.ext4");
  joined.clear();
  for (const auto& arg : with_disk) joined += arg + " ";
  EXPECT_NE(joined.find("-drive file=/cache/bullseye-1.ext4,if=virtio,format=raw,readonly=on"),
            std::string::npos);
}

TEST(Matrix, RepeatedRunsMakeOneCellAndDisagreementIsFlaky) {
  auto run = [](const char* verdict, const char* hash) {
    return nlohmann::json{{"scenario", "s"},     {"verdict", verdict},     {"as_expected", true},
                          {"reason", "matched"}, {"signature_hash", hash}, {"error", nullptr}};
  };
  const nlohmann::json alike = {
      {"results",
       {run("reproduced", "d09c"), run("reproduced", "d09c"), run("reproduced", "d09c")}}};
  auto cells = CellsFromReport({"s"}, {"reproduced"}, "k", alike, "error", "");
  ASSERT_EQ(cells.size(), 1u);
  EXPECT_EQ(cells[0].verdict, "reproduced");
  EXPECT_TRUE(cells[0].as_expected);
  EXPECT_EQ(cells[0].detail, "3 runs alike: matched");

  const nlohmann::json other_hash = {
      {"results", {run("reproduced", "d09c"), run("reproduced", "5d5d")}}};
  cells = CellsFromReport({"s"}, {"reproduced"}, "k", other_hash, "error", "");
  EXPECT_EQ(cells[0].verdict, "flaky");
  EXPECT_FALSE(cells[0].as_expected);

  const nlohmann::json other_verdict = {
      {"results", {run("reproduced", "d09c"), run("not-reproduced", "8fb2")}}};
  cells = CellsFromReport({"s"}, {"reproduced"}, "k", other_verdict, "error", "");
  EXPECT_EQ(cells[0].verdict, "flaky");
  EXPECT_EQ(cells[0].detail, "2 runs disagree: not-reproduced 1 reproduced 1, 2 signature hashes");
}

TEST(Matrix, CellsComeFromEachKernelsReportAndAStuckGuestFillsItsColumn) {
  const nlohmann::json report = {{"results",
                                  {{{"scenario", "fuse-flush-pidns-teardown"},
                                    {"verdict", "reproduced"},
                                    {"as_expected", true},
                                    {"reason", "bug signature matched"},
                                    {"error", nullptr}}}}};
  Matrix matrix;
  matrix.scenarios = {"fuse-flush-pidns-teardown", "fuse-flush-pidns-teardown-no-holder"};
  const std::vector<std::string> expected = {"reproduced", "not-reproduced"};
  MatrixColumn host;
  host.kernel.label = "host";
  host.kernel.host = true;
  host.release = "6.18.44";
  MatrixColumn guest;
  guest.kernel.label = "linux-image-6.1.0-56-cloud-amd64";
  guest.release = "6.1.0-56-cloud-amd64";
  matrix.columns = {host, guest};
  matrix.cells = CellsFromReport(matrix.scenarios, expected, "host", report, "error", "");
  for (auto& cell : CellsFromReport(matrix.scenarios, expected, guest.kernel.label, nullptr,
                                    "guest-stuck", "no poweroff within 1000 ms; qemu killed")) {
    matrix.cells.push_back(cell);
  }
  ASSERT_EQ(matrix.cells.size(), 4u);
  EXPECT_EQ(matrix.cells[0].verdict, "reproduced");
  EXPECT_TRUE(matrix.cells[0].as_expected);
  EXPECT_EQ(matrix.cells[1].verdict, "missing");
  EXPECT_EQ(matrix.cells[2].verdict, "guest-stuck");
  EXPECT_FALSE(matrix.cells[2].as_expected);
  EXPECT_FALSE(matrix.AllAsExpected());

  const std::string table = RenderMatrix(matrix);
  const auto lines = Lines(table);
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines[0],
            "scenario                             host        linux-image-6.1.0-56-cloud-amd64");
  EXPECT_EQ(lines[1], "                                     (6.18.44)   (6.1.0-56-cloud-amd64)");
  EXPECT_EQ(lines[2], "fuse-flush-pidns-teardown            reproduced  guest-stuck !");
  EXPECT_NE(table.find("! fuse-flush-pidns-teardown on linux-image-6.1.0-56-cloud-amd64: "
                       "guest-stuck, expected reproduced: no poweroff within 1000 ms"),
            std::string::npos);

  const report::Report junit = JunitReport(matrix, report::HostInfo{});
  ASSERT_EQ(junit.results.size(), 4u);
  EXPECT_EQ(junit.results[0].scenario, "fuse-flush-pidns-teardown on host");
  EXPECT_FALSE(junit.results[0].error.has_value());
  EXPECT_EQ(junit.results[0].verdict, scenario::Verdict::kReproduced);
  ASSERT_TRUE(junit.results[2].error.has_value());
  EXPECT_EQ(junit.results[2].error->rfind("guest-stuck: no poweroff", 0), 0u);
  const std::string xml = report::ToJunitXml(junit);
  EXPECT_NE(xml.find("name=\"fuse-flush-pidns-teardown on linux-image-6.1.0-56-cloud-amd64\""),
            std::string::npos)
      << xml;

  const nlohmann::json json = ToJson(matrix);
  EXPECT_EQ(json["wedge_matrix"], 1);
  EXPECT_EQ(json["kernels"].size(), 2u);
  EXPECT_EQ(json["cells"].size(), 4u);
  EXPECT_FALSE(json["as_expected"].get<bool>());
}

TEST(MatrixColumn, IsLabelledByWhatVaries) {
  MatrixColumn column;
  column.kernel.label = "host";
  column.kernel.host = true;
  EXPECT_EQ(column.Label(), "host");
  column.stack = "bullseye";
  EXPECT_EQ(column.Label(), "bullseye");
  column.kernel.label = "linux-image-6.1.0-56-cloud-amd64";
  column.kernel.host = false;
  EXPECT_EQ(column.Label(), "linux-image-6.1.0-56-cloud-amd64+bullseye");
}

TEST(RenderMatrix, AReleaseMatrixHasAColumnPerStackAndItsCellsFollowThem) {
  Matrix matrix;
  matrix.scenarios = {"seccomp-resources-sigsys"};
  for (const char* release : {"bullseye", "bookworm"}) {
    MatrixColumn column;
    column.kernel.label = "host";
    column.kernel.host = true;
    column.stack = release;
    column.release = "6.18.44";
    matrix.columns.push_back(column);
  }
  const nlohmann::json bullseye = {{"results",
                                    {{{"scenario", "seccomp-resources-sigsys"},
                                      {"verdict", "not-reproduced"},
                                      {"signature_hash", "c8f609365e923e62"},
                                      {"as_expected", true},
                                      {"reason", "the healthy signature matched"},
                                      {"error", nullptr}}}}};
  const nlohmann::json bookworm = {{"results",
                                    {{{"scenario", "seccomp-resources-sigsys"},
                                      {"verdict", "reproduced"},
                                      {"signature_hash", "3450bee5f625f291"},
                                      {"as_expected", true},
                                      {"reason", "bug signature matched"},
                                      {"error", nullptr}}}}};
  matrix.cells =
      CellsFromReport(matrix.scenarios, {"not-reproduced"}, "bullseye", bullseye, "error", "");
  for (auto& cell :
       CellsFromReport(matrix.scenarios, {"reproduced"}, "bookworm", bookworm, "error", "")) {
    matrix.cells.push_back(cell);
  }
  EXPECT_TRUE(matrix.AllAsExpected());
  const auto lines = Lines(RenderMatrix(matrix));
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0], "scenario                  bullseye        bookworm");
  EXPECT_EQ(lines[2], "seccomp-resources-sigsys  not-reproduced  reproduced");
  const report::Report junit = JunitReport(matrix, report::HostInfo{});
  ASSERT_EQ(junit.results.size(), 2u);
  EXPECT_EQ(junit.results[0].scenario, "seccomp-resources-sigsys on bullseye");
  EXPECT_EQ(ToJson(matrix)["kernels"][1]["stack"], "bookworm");
}

}  // namespace
}  // namespace wedge::vm
