#include "wedge/report/report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace wedge::report {
namespace {

using nlohmann::json;
using scenario::Verdict;

constexpr std::uint64_t kSigkillMask = 0x100;  // bit 8 = signal 9

// The stuck daemon thread of FINDINGS.md, seed 001, as the signature component binds it.
signature::ObservedTask StuckThread() {
  signature::ObservedTask task;
  task.process = "daemon";
  task.pid = 1235;
  task.tid = 1237;
  task.comm = "fuse-holder";
  task.state = 'D';
  task.stack = {"request_wait_answer", "__fuse_simple_request", "fuse_flush", "filp_flush",
                "filp_close",          "put_files_struct",      "do_exit",    "do_group_exit",
                "get_signal"};
  task.shd_pending = {"SIGKILL"};
  task.task_flags = {"PF_EXITING"};
  task.wchan = "request_wait_answer";
  return task;
}

scenario::Scenario FuseFlushScenario() {
  scenario::Scenario s;
  s.name = "fuse-flush-killed-daemon";
  s.file = "scenarios/fuse-flush-killed-daemon.json";
  signature::TaskExpectation stuck;
  stuck.role = "stuck-thread";
  stuck.select.process = "daemon";
  stuck.select.thread = signature::TaskSelector::Thread::kNonLeader;
  stuck.states = {'D'};
  stuck.stack = {"request_wait_answer", "fuse_flush", "filp_close", "do_exit"};
  stuck.shd_pending = {"SIGKILL"};
  stuck.task_flags = {"PF_EXITING"};
  s.bug.description = "daemon thread waits for its own FLUSH";
  s.bug.tasks = {stuck};
  s.healthy.description = "everything exits";
  s.healthy.all_exited = true;
  return s;
}

probe::TreeSnapshot Seed001Evidence() {
  probe::TaskSnapshot thread;
  thread.tid = 1237;
  thread.status.name = "fuse-holder";
  thread.status.state = 'D';
  thread.status.state_text = "D (disk sleep)";
  thread.status.tgid = 1235;
  thread.status.pid = 1237;
  thread.status.ppid = 1234;
  thread.status.ns_pids = {1237, 3};
  thread.status.threads = 2;
  thread.status.shd_pnd = probe::SignalSet(kSigkillMask);
  thread.status.sig_blk = probe::SignalSet(0x4000);  // SIGTERM
  thread.stat.comm = "fuse-holder";
  thread.stat.state = 'D';
  thread.stat.flags = 0x00400044;  // PF_EXITING | PF_FORKNOEXEC | PF_RANDOMIZE
  thread.wchan = "request_wait_answer";
  thread.stack_text =
      "[<0>] request_wait_answer+0x13d/0x220 [fuse]\n"
      "[<0>] fuse_flush+0x155/0x190 [fuse]\n";
  thread.stack = {{"request_wait_answer", "0x13d/0x220", "fuse", "[<0>] request_wait_answer"},
                  {"fuse_flush", "0x155/0x190", "fuse", "[<0>] fuse_flush+0x155/0x190 [fuse]"}};
  probe::SyscallState syscall;
  syscall.kind = probe::SyscallState::Kind::kNotInSyscall;
  thread.syscall = syscall;
  thread.syscall_text = "-1 0x7ffd 0x7f00\n";

  probe::ProcessSnapshot daemon;
  daemon.pid = 1235;
  daemon.label = "daemon";
  daemon.tasks = {thread};
  probe::FileDescriptor pipe_fd;
  pipe_fd.fd = 1;
  pipe_fd.target = "pipe:[4242]";
  pipe_fd.pipe_inode = 4242;
  pipe_fd.flags = 01;
  pipe_fd.pipe_unread_bytes = 65536;
  probe::FileDescriptor held;
  held.fd = 5;
  held.target = "/run/wedge/mnt/held";
  held.pos = 12;
  held.flags = 0100002;
  daemon.fds = {pipe_fd, held};
  daemon.children = {1240};

  probe::TreeSnapshot snapshot;
  snapshot.processes = {daemon};
  snapshot.captured_at_ms = 987654;
  return snapshot;
}

RunResult ReproducedRun() {
  RunResult result;
  result.scenario = "fuse-flush-killed-daemon";
  result.file = "scenarios/fuse-flush-killed-daemon.json";
  result.verdict = Verdict::kReproduced;
  result.expected = Verdict::kReproduced;
  result.reason = "bug signature matched: stuck-thread in D with SIGKILL pending";
  result.signature_hash = "3f2a9c0d11e4b7a8";
  result.bug_match.matched = true;
  result.bug_match.bound = {{"stuck-thread", StuckThread()}};
  result.healthy_match.mismatches = {{"", "all_exited", "true", "false"}};
  result.observation.tasks = {StuckThread()};
  result.evidence = Seed001Evidence();
  result.phases = {{"setup", 40}, {"trigger", 3}, {"stall", 120}, {"recover", 9}};
  result.duration_ms = 1234;
  result.stall_detected_after_ms = 118;
  result.recovery = {"aborted FUSE connection 42"};
  result.host_clean = true;
  return result;
}

RunResult UnexplainedRun() {
  RunResult result = ReproducedRun();
  result.verdict = Verdict::kUnexplained;
  result.reason = "neither signature matched";
  result.signature_hash = "";
  result.bug_match.matched = false;
  signature::ObservedTask sleeping = StuckThread();
  sleeping.state = 'S';
  sleeping.stack = {"fuse_dev_do_read", "fuse_dev_read", "vfs_read"};
  sleeping.shd_pending = {};
  result.bug_match.bound = {{"stuck-thread", sleeping}};
  result.bug_match.mismatches = {{"stuck-thread", "state", "D", "S"},
                                 {"stuck-thread", "stack", "request_wait_answer <- fuse_flush",
                                  "fuse_dev_do_read <- fuse_dev_read <- vfs_read"}};
  return result;
}

Report TwoRunReport() {
  Report report;
  report.host.kernel_release = "6.18.44";
  report.host.kernel_version = "#1 SMP PREEMPT_DYNAMIC";
  report.host.machine = "x86_64";
  report.host.cgroup_mode = "v2";
  report.host.sysctls = {{"fs.pipe-user-pages-soft", "16384"}};
  report.host.rlimits = {{"RLIMIT_NOFILE", "20000:20000"}};
  report.host.binaries = {
      {"wedge-fuse", "/opt/wedge/bin/wedge-fuse", "wedge-fuse 0.1.0", "", "", ""},
      {"runc", "/var/cache/wedge/stacks/bullseye-0123456789ab/usr/sbin/runc",
       "runc version 1.0.0~rc93+ds1", "runc 1.0.0~rc93+ds1-5+deb11u5", "go1.15.15", "bullseye"}};
  report.host.wedge_version = "0.1.0";
  report.results = {ReproducedRun(), UnexplainedRun()};
  return report;
}

std::filesystem::path TempDir(const std::string& name) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("wedge-report-test-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string ReadAll(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::size_t Count(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

TEST(ReportJson, TopLevelHasVersionHostAndOneEntryPerRun) {
  json j = ToJson(TwoRunReport());
  EXPECT_EQ(j["wedge_report"], 1);
  ASSERT_TRUE(j["host"].is_object());
  ASSERT_TRUE(j["results"].is_array());
  EXPECT_EQ(j["results"].size(), 2u);
}

TEST(ReportJson, HostRecordsKernelCgroupsSysctlsRlimitsAndBinaries) {
  json host = ToJson(TwoRunReport().host);
  EXPECT_EQ(host["kernel"]["release"], "6.18.44");
  EXPECT_EQ(host["kernel"]["version"], "#1 SMP PREEMPT_DYNAMIC");
  EXPECT_EQ(host["kernel"]["machine"], "x86_64");
  EXPECT_EQ(host["cgroup_mode"], "v2");
  EXPECT_EQ(host["sysctls"]["fs.pipe-user-pages-soft"], "16384");
  EXPECT_EQ(host["rlimits"]["RLIMIT_NOFILE"], "20000:20000");
  ASSERT_EQ(host["binaries"].size(), 2u);
  EXPECT_EQ(host["binaries"][0]["name"], "wedge-fuse");
  EXPECT_EQ(host["binaries"][0]["path"], "/opt/wedge/bin/wedge-fuse");
  EXPECT_EQ(host["binaries"][0]["version"], "wedge-fuse 0.1.0");
  EXPECT_FALSE(host["binaries"][0].contains("package"));
  // A release stack's binary: its package, the Go that built it and its release.
  EXPECT_EQ(host["binaries"][1]["package"], "runc 1.0.0~rc93+ds1-5+deb11u5");
  EXPECT_EQ(host["binaries"][1]["go_version"], "go1.15.15");
  EXPECT_EQ(host["binaries"][1]["release"], "bullseye");
  EXPECT_EQ(host["wedge_version"], "0.1.0");
}

TEST(ReportJson, ResultCarriesVerdictsTimingsRecoveryAndHostState) {
  json r = ToJson(ReproducedRun());
  EXPECT_EQ(r["scenario"], "fuse-flush-killed-daemon");
  EXPECT_EQ(r["file"], "scenarios/fuse-flush-killed-daemon.json");
  EXPECT_EQ(r["verdict"], "reproduced");
  EXPECT_EQ(r["expected"], "reproduced");
  EXPECT_EQ(r["as_expected"], true);
  EXPECT_EQ(r["reason"], "bug signature matched: stuck-thread in D with SIGKILL pending");
  EXPECT_EQ(r["signature_hash"], "3f2a9c0d11e4b7a8");
  ASSERT_EQ(r["phases"].size(), 4u);
  EXPECT_EQ(r["phases"][2], (json{{"phase", "stall"}, {"duration_ms", 120}}));
  EXPECT_EQ(r["duration_ms"], 1234);
  EXPECT_EQ(r["stall_detected_after_ms"], 118);
  EXPECT_EQ(r["recovery"], (json{"aborted FUSE connection 42"}));
  EXPECT_EQ(r["host_clean"], true);
  EXPECT_EQ(r["host_leftovers"], json::array());
  EXPECT_TRUE(r["error"].is_null());
}

TEST(ReportJson, SignatureMapsEachRoleToTheTaskItWasBoundTo) {
  json signature = ToJson(ReproducedRun())["signature"];
  ASSERT_TRUE(signature.contains("stuck-thread"));
  json task = signature["stuck-thread"];
  EXPECT_EQ(task["pid"], 1235);
  EXPECT_EQ(task["tid"], 1237);
  EXPECT_EQ(task["comm"], "fuse-holder");
  EXPECT_EQ(task["state"], "D");
  ASSERT_TRUE(task["stack"].is_array());
  EXPECT_EQ(task["stack"][0], "request_wait_answer");
  EXPECT_EQ(task["shd_pending"], (json{"SIGKILL"}));
  EXPECT_EQ(task["sig_pending"], json::array());
  EXPECT_EQ(task["task_flags"], (json{"PF_EXITING"}));
  EXPECT_EQ(task["wchan"], "request_wait_answer");
}

TEST(ReportJson, DiffListsTheMismatchesOfBothSignatures) {
  json r = ToJson(UnexplainedRun());
  EXPECT_EQ(r["verdict"], "unexplained");
  EXPECT_EQ(r["as_expected"], false);
  ASSERT_EQ(r["diff"]["bug"].size(), 2u);
  EXPECT_EQ(
      r["diff"]["bug"][0],
      (json{{"role", "stuck-thread"}, {"field", "state"}, {"expected", "D"}, {"observed", "S"}}));
  ASSERT_EQ(r["diff"]["healthy"].size(), 1u);
  EXPECT_EQ(r["diff"]["healthy"][0]["field"], "all_exited");
  // An unexplained run still shows the tasks its expected signature bound.
  EXPECT_EQ(r["signature"]["stuck-thread"]["state"], "S");
}

TEST(ReportJson, EvidenceKeepsSignalMasksAsHexAndNames) {
  json task = ToJson(ReproducedRun())["evidence"]["processes"][0]["tasks"][0];
  EXPECT_EQ(task["tid"], 1237);
  EXPECT_EQ(task["comm"], "fuse-holder");
  EXPECT_EQ(task["state_text"], "D (disk sleep)");
  EXPECT_EQ(task["signals"]["ShdPnd"]["mask"], "0000000000000100");
  EXPECT_EQ(task["signals"]["ShdPnd"]["names"], (json{"SIGKILL"}));
  EXPECT_EQ(task["signals"]["SigPnd"]["mask"], "0000000000000000");
  EXPECT_EQ(task["signals"]["SigPnd"]["names"], json::array());
  EXPECT_EQ(task["signals"]["SigBlk"]["names"], (json{"SIGTERM"}));
  EXPECT_EQ(task["signals"]["SigIgn"]["mask"], "0000000000000000");
  EXPECT_EQ(task["ns_pids"], (json{1237, 3}));
  EXPECT_EQ(task["flags"]["mask"], "0x00400044");
  EXPECT_EQ(task["flags"]["names"], (json{"PF_EXITING", "PF_FORKNOEXEC", "PF_RANDOMIZE"}));
  EXPECT_EQ(task["wchan"], "request_wait_answer");
  EXPECT_NE(task["stack_text"].get<std::string>().find("fuse_flush+0x155/0x190 [fuse]"),
            std::string::npos);
  EXPECT_EQ(task["stack"][1]["offset"], "0x155/0x190");
  EXPECT_EQ(task["syscall_text"], "-1 0x7ffd 0x7f00\n");
  EXPECT_EQ(task["syscall"]["kind"], "not-in-syscall");
}

TEST(ReportJson, EvidenceListsProcessesWithChildrenAndFds) {
  json process = ToJson(ReproducedRun())["evidence"]["processes"][0];
  EXPECT_EQ(process["label"], "daemon");
  EXPECT_EQ(process["pid"], 1235);
  EXPECT_EQ(process["children"], (json{1240}));
  ASSERT_EQ(process["fds"].size(), 2u);
  json pipe = process["fds"][0];
  EXPECT_EQ(pipe["fd"], 1);
  EXPECT_EQ(pipe["target"], "pipe:[4242]");
  EXPECT_EQ(pipe["pipe_inode"], 4242);
  EXPECT_EQ(pipe["pipe_unread_bytes"], 65536);
  json held = process["fds"][1];
  EXPECT_TRUE(held["pipe_inode"].is_null());
  EXPECT_TRUE(held["pipe_unread_bytes"].is_null());
  EXPECT_EQ(held["pos"], 12);
  EXPECT_EQ(held["flags"], "0100002");
}

TEST(ReportJson, SnapshotJsonHasTheEvidenceShape) {
  RunResult result = ReproducedRun();
  EXPECT_EQ(ToJson(result.evidence), ToJson(result)["evidence"]);
  EXPECT_EQ(ToJson(result.evidence)["captured_at_ms"], 987654);
}

TEST(ReportJson, AbsentStallAndErrorAreNull) {
  RunResult result = ReproducedRun();
  result.stall_detected_after_ms = -1;
  result.error = "capture failed: open('/proc/1237/stack'): EACCES (Permission denied)";
  json r = ToJson(result);
  EXPECT_TRUE(r["stall_detected_after_ms"].is_null());
  EXPECT_EQ(r["error"], *result.error);
  EXPECT_EQ(r["as_expected"], false);
}

TEST(ReportJson, AHeldRunSaysHowLongItWasHeldAndWhatReleasedIt) {
  RunResult result = ReproducedRun();
  EXPECT_TRUE(ToJson(result)["held"].is_null());
  result.held = RunResult::Held{61234, "SIGTERM", "wedge match 1234"};
  const json held = ToJson(result)["held"];
  EXPECT_EQ(held["duration_ms"], 61234);
  EXPECT_EQ(held["released_by"], "SIGTERM");
  EXPECT_EQ(held["match_command"], "wedge match 1234");
}

TEST(WriteJson, WritesParseablePrettyJsonAndNoTemporaryFile) {
  std::filesystem::path dir = TempDir("json");
  std::filesystem::path file = dir / "report.json";
  Report report = TwoRunReport();
  Status status = WriteJson(report, file);
  ASSERT_TRUE(status.ok()) << status.error().message();
  std::string text = ReadAll(file);
  EXPECT_EQ(json::parse(text), ToJson(report));
  // Pretty-printed with two spaces; keys are sorted, so "determinism" comes first.
  EXPECT_EQ(text.rfind("{\n  \"determinism\"", 0), 0u) << text.substr(0, 40);
  int entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    ++entries;
    EXPECT_EQ(entry.path().filename(), "report.json");
  }
  EXPECT_EQ(entries, 1);
  std::filesystem::remove_all(dir);
}

TEST(WriteJson, ReplacesAnExistingFile) {
  std::filesystem::path dir = TempDir("replace");
  std::filesystem::path file = dir / "report.json";
  std::ofstream(file) << "stale, not json";
  ASSERT_TRUE(WriteJson(TwoRunReport(), file).ok());
  EXPECT_EQ(json::parse(ReadAll(file))["wedge_report"], 1);
  std::filesystem::remove_all(dir);
}

TEST(WriteJson, InvalidUtf8FromProcIsReplacedNotThrown) {
  std::filesystem::path dir = TempDir("utf8");
  Report report = TwoRunReport();
  report.results[0].evidence.processes[0].tasks[0].stat.comm = "bad\xff\xfe";
  ASSERT_TRUE(WriteJson(report, dir / "report.json").ok());
  json parsed = json::parse(ReadAll(dir / "report.json"));
  EXPECT_EQ(parsed["results"][0]["evidence"]["processes"][0]["tasks"][0]["comm"],
            "bad\xEF\xBF\xBD\xEF\xBF\xBD");
  std::filesystem::remove_all(dir);
}

TEST(WriteJson, NamesTheFailingCallWhenTheDirectoryIsMissing) {
  Status status = WriteJson(TwoRunReport(), "/nonexistent-wedge-dir/report.json");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message().find("writing the JSON report: mkstemp("), std::string::npos)
      << status.error().message();
  EXPECT_NE(status.error().message().find("ENOENT"), std::string::npos);
}

TEST(Junit, CountsFailuresAndErrorsSeparately) {
  Report report = TwoRunReport();
  RunResult errored = ReproducedRun();
  errored.scenario = "pipe-fill";
  errored.error = "setup: clone3(): EPERM (Operation not permitted)";
  report.results.push_back(errored);
  std::string xml = ToJunitXml(report);
  EXPECT_EQ(xml.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites", 0), 0u);
  EXPECT_NE(xml.find("<testsuite name=\"wedge\" tests=\"3\" failures=\"1\" errors=\"1\""),
            std::string::npos)
      << xml;
  EXPECT_EQ(Count(xml, "<testcase classname=\"wedge.scenarios\""), 3u);
  EXPECT_EQ(Count(xml, "<failure "), 1u);
  EXPECT_EQ(Count(xml, "<error "), 1u);
  EXPECT_NE(xml.find("<error message=\"setup: clone3(): EPERM (Operation not permitted)\""),
            std::string::npos);
  EXPECT_NE(xml.find("</testsuite>\n</testsuites>\n"), std::string::npos);
}

TEST(Junit, FailureMessageNamesBothVerdictsAndHoldsTheDiff) {
  Report report;
  report.results = {UnexplainedRun()};
  std::string xml = ToJunitXml(report);
  EXPECT_NE(xml.find("<failure message=\"expected reproduced, got unexplained\""),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("stuck-thread.state: expected D; observed S"), std::string::npos) << xml;
  EXPECT_NE(xml.find("all_exited: expected true; observed false"), std::string::npos);
  EXPECT_NE(xml.find("fuse_dev_do_read &lt;- fuse_dev_read"), std::string::npos);
}

TEST(Junit, PassingRunHasNoFailureAndReportsTimeInSeconds) {
  Report report;
  report.results = {ReproducedRun()};
  std::string xml = ToJunitXml(report);
  EXPECT_NE(xml.find("<testcase classname=\"wedge.scenarios\" name=\"fuse-flush-killed-daemon\" "
                     "time=\"1.234\">"),
            std::string::npos)
      << xml;
  EXPECT_EQ(xml.find("<failure"), std::string::npos);
  EXPECT_NE(xml.find("failures=\"0\" errors=\"0\" time=\"1.234\""), std::string::npos);
}

TEST(Junit, AHeldRunSaysSoInItsOutput) {
  Report report;
  report.results = {ReproducedRun()};
  EXPECT_EQ(ToJunitXml(report).find("held for"), std::string::npos);
  report.results[0].held = RunResult::Held{61234, "SIGTERM", "wedge match 1234"};
  const std::string xml = ToJunitXml(report);
  EXPECT_NE(xml.find("held for 61.234 s, released by SIGTERM; the hold printed `wedge match "
                     "1234`\n</system-out>"),
            std::string::npos)
      << xml;
}

TEST(Junit, HostNotCleanIsAFailureEvenWithTheExpectedVerdict) {
  Report report;
  report.results = {ReproducedRun()};
  report.results[0].host_clean = false;
  report.results[0].host_leftovers = {"mount /run/wedge/1/mnt (fuse.wedge-fuse)"};
  std::string xml = ToJunitXml(report);
  EXPECT_NE(xml.find("<failure message=\"host not clean after teardown\""), std::string::npos)
      << xml;
  EXPECT_NE(xml.find("mount /run/wedge/1/mnt (fuse.wedge-fuse)"), std::string::npos);
}

TEST(Junit, SystemOutHoldsTheReasonAndTheSignatureHash) {
  Report report;
  report.results = {ReproducedRun()};
  std::string xml = ToJunitXml(report);
  EXPECT_NE(xml.find("<system-out>bug signature matched: stuck-thread in D with SIGKILL pending\n"
                     "signature hash: 3f2a9c0d11e4b7a8\n</system-out>"),
            std::string::npos)
      << xml;
}

TEST(Junit, EscapesMarkupAndStripsControlCharacters) {
  Report report;
  report.results = {UnexplainedRun()};
  report.results[0].scenario = "a&b<c>\"d'e\x01\x1b[0m";
  report.results[0].reason = "saw <D> & \"S\"\x07 with bad\xff byte";
  std::string xml = ToJunitXml(report);
  EXPECT_NE(xml.find("name=\"a&amp;b&lt;c&gt;&quot;d&apos;e[0m\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("saw &lt;D&gt; &amp; &quot;S&quot; with bad\xEF\xBF\xBD byte"),
            std::string::npos)
      << xml;
  EXPECT_EQ(xml.find('\x01'), std::string::npos);
  EXPECT_EQ(xml.find('\x07'), std::string::npos);
  EXPECT_EQ(xml.find('\x1b'), std::string::npos);
}

TEST(Junit, MultiLineErrorStaysOneAttributeValue) {
  Report report;
  report.results = {ReproducedRun()};
  report.results[0].error = "first line\nsecond line";
  std::string xml = ToJunitXml(report);
  EXPECT_NE(xml.find("<error message=\"first line&#10;second line\""), std::string::npos) << xml;
}

TEST(WriteJunit, WritesTheXmlAtomically) {
  std::filesystem::path dir = TempDir("junit");
  Report report = TwoRunReport();
  ASSERT_TRUE(WriteJunit(report, dir / "junit.xml").ok());
  EXPECT_EQ(ReadAll(dir / "junit.xml"), ToJunitXml(report));
  std::filesystem::remove_all(dir);
}

TEST(PrintSummary, EndsWithThePassedFailedLineTheCiParses) {
  Report report = TwoRunReport();
  RunResult errored = ReproducedRun();
  errored.error = "boom";
  report.results.push_back(errored);
  std::ostringstream out;
  PrintSummary(out, report);
  std::string text = out.str();
  ASSERT_GE(text.size(), 2u);
  std::string last = text.substr(text.rfind('\n', text.size() - 2) + 1);
  EXPECT_EQ(last, "1 passed, 2 failed\n");
  EXPECT_EQ(Count(text, "\n"), 4u);
  EXPECT_NE(text.find("PASS"), std::string::npos);
  EXPECT_NE(text.find("FAIL"), std::string::npos);
  EXPECT_NE(text.find("ERROR"), std::string::npos);
}

TEST(PrintSummary, EmptyReportSaysZeroAndZero) {
  std::ostringstream out;
  PrintSummary(out, Report{});
  EXPECT_EQ(out.str(), "0 passed, 0 failed\n");
}

TEST(PrintResult, ShowsTheVerdictLineAndReason) {
  std::ostringstream out;
  PrintResult(out, FuseFlushScenario(), ReproducedRun());
  std::string text = out.str();
  EXPECT_EQ(text.rfind("scenario fuse-flush-killed-daemon: reproduced (expected reproduced)\n", 0),
            0u)
      << text;
  EXPECT_NE(text.find("reason: bug signature matched"), std::string::npos);
}

TEST(PrintResult, ShowsExpectedAndObservedSideBySidePerRole) {
  std::ostringstream out;
  PrintResult(out, FuseFlushScenario(), ReproducedRun());
  std::string text = out.str();
  EXPECT_NE(text.find("role stuck-thread: daemon pid 1235 tid 1237 comm fuse-holder"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("expected"), std::string::npos);
  EXPECT_NE(text.find("observed"), std::string::npos);
  EXPECT_NE(text.find("state        D"), std::string::npos) << text;
  EXPECT_NE(text.find("ShdPnd       SIGKILL"), std::string::npos) << text;
  EXPECT_NE(text.find("flags        PF_EXITING"), std::string::npos) << text;
  // Only the signature of the expected verdict when the verdict is as expected.
  EXPECT_EQ(text.find("healthy signature"), std::string::npos) << text;
}

TEST(PrintResult, MarksMatchedFramesAndLinesThemUpWithTheExpectedOnes) {
  std::ostringstream out;
  PrintResult(out, FuseFlushScenario(), ReproducedRun());
  std::string text = out.str();
  // One observed frame per line; frames of the signature are marked '*' with the expected frame
  // on the same line, frames the signature skips (filp_flush) are not.
  EXPECT_NE(text.find("stack        request_wait_answer  * request_wait_answer\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("fuse_flush           * fuse_flush\n"), std::string::npos) << text;
  EXPECT_NE(text.find("                                     filp_flush\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("  __fuse_simple_request\n"), std::string::npos);
  EXPECT_EQ(text.find("* __fuse_simple_request"), std::string::npos);
}

TEST(PrintResult, ShowsTheDiffAndBothSignaturesWhenTheVerdictIsUnexpected) {
  std::ostringstream out;
  PrintResult(out, FuseFlushScenario(), UnexplainedRun());
  std::string text = out.str();
  EXPECT_EQ(text.rfind("scenario fuse-flush-killed-daemon: unexplained (expected reproduced)\n", 0),
            0u);
  EXPECT_NE(text.find("bug signature (daemon thread waits for its own FLUSH): 2 mismatches"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("mismatch stuck-thread.state: expected D; observed S"), std::string::npos);
  EXPECT_NE(text.find("healthy signature (everything exits): 1 mismatch"), std::string::npos);
  EXPECT_NE(text.find("every process exited: expected yes, observed no (1 task left)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("request_wait_answer    (not found)"), std::string::npos) << text;
  EXPECT_NE(text.find("signature hash: (none)"), std::string::npos);
}

TEST(PrintResult, AMissingFrameDoesNotHideTheFramesThatMatched) {
  RunResult result = UnexplainedRun();
  signature::ObservedTask task = StuckThread();
  task.stack = {"fuse_simple_request", "fuse_flush", "filp_close", "do_exit"};
  result.bug_match.bound = {{"stuck-thread", task}};
  std::ostringstream out;
  PrintResult(out, FuseFlushScenario(), result);
  std::string text = out.str();
  EXPECT_NE(text.find("request_wait_answer    (not found)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("fuse_flush           * fuse_flush\n"), std::string::npos) << text;
  EXPECT_NE(text.find("do_exit              * do_exit\n"), std::string::npos) << text;
}

TEST(PrintResult, SaysWhenARoleFoundNoTask) {
  RunResult result = UnexplainedRun();
  result.bug_match.bound.clear();
  result.bug_match.mismatches = {{"stuck-thread", "task", "a task of daemon", "none"}};
  std::ostringstream out;
  PrintResult(out, FuseFlushScenario(), result);
  EXPECT_NE(out.str().find("role stuck-thread: no task bound (wanted process daemon, non-leader)"),
            std::string::npos)
      << out.str();
}

TEST(PrintResult, ShowsHashRecoveryHostStateAndPhasesOnOneLine) {
  std::ostringstream out;
  PrintResult(out, FuseFlushScenario(), ReproducedRun());
  std::string text = out.str();
  EXPECT_NE(text.find("signature hash: 3f2a9c0d11e4b7a8\n"), std::string::npos);
  EXPECT_NE(text.find("aborted FUSE connection 42"), std::string::npos);
  EXPECT_NE(text.find("host clean: yes\n"), std::string::npos);
  EXPECT_NE(text.find("phases: setup 40 ms, trigger 3 ms, stall 120 ms, recover 9 ms; total 1234 "
                      "ms; stall detected after 118 ms\n"),
            std::string::npos)
      << text;
}

TEST(PrintResult, ListsLeftoversWhenTheHostIsNotClean) {
  RunResult result = ReproducedRun();
  result.host_clean = false;
  result.host_leftovers = {"sysctl fs.pipe-user-pages-soft = 1 (was 16384)"};
  std::ostringstream out;
  PrintResult(out, FuseFlushScenario(), result);
  EXPECT_NE(out.str().find("host clean: no\n"), std::string::npos);
  EXPECT_NE(out.str().find("sysctl fs.pipe-user-pages-soft = 1 (was 16384)"), std::string::npos);
}

TEST(PrintSnapshot, PrintsEveryTaskWithStateSignalsFlagsWchanAndStack) {
  std::ostringstream out;
  PrintSnapshot(out, Seed001Evidence());
  std::string text = out.str();
  EXPECT_NE(text.find("process daemon pid 1235, children 1240\n"), std::string::npos) << text;
  EXPECT_NE(text.find("task 1237 fuse-holder D (disk sleep)\n"), std::string::npos);
  EXPECT_NE(text.find("ShdPnd: SIGKILL  SigPnd: (none)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("flags: 0x00400044 PF_EXITING PF_FORKNOEXEC PF_RANDOMIZE\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("wchan: request_wait_answer\n"), std::string::npos);
  EXPECT_NE(text.find("      request_wait_answer+0x13d/0x220 [fuse]\n"), std::string::npos);
  EXPECT_NE(text.find("      fuse_flush+0x155/0x190 [fuse]\n"), std::string::npos);
  EXPECT_NE(text.find("fd 1 -> pipe:[4242] (65536 bytes unread)"), std::string::npos);
}

}  // namespace
}  // namespace wedge::report

namespace wedge::report {
namespace {

RunResult RunOf(const std::string& scenario, scenario::Verdict verdict, const std::string& hash,
                std::int64_t ms) {
  RunResult result;
  result.scenario = scenario;
  result.verdict = verdict;
  result.signature_hash = hash;
  result.duration_ms = ms;
  return result;
}

TEST(Determinism, RunsThatAgreeAreStableWithTheirDurations) {
  Report report;
  for (std::int64_t ms : {130, 120, 140}) {
    report.results.push_back(RunOf("fuse", scenario::Verdict::kReproduced, "5d5d", ms));
  }
  std::vector<Determinism> summary = SummarizeDeterminism(report);
  ASSERT_EQ(summary.size(), 1u);
  EXPECT_FALSE(summary[0].flaky());
  EXPECT_EQ(summary[0].runs, 3);
  EXPECT_EQ(summary[0].min_ms, 120);
  EXPECT_EQ(summary[0].median_ms, 130);
  EXPECT_EQ(summary[0].max_ms, 140);
}

TEST(Determinism, ADifferentVerdictOrHashMakesAScenarioFlaky) {
  Report verdicts;
  verdicts.results.push_back(RunOf("a", scenario::Verdict::kReproduced, "h", 1));
  verdicts.results.push_back(RunOf("a", scenario::Verdict::kUnexplained, "h", 1));
  EXPECT_TRUE(SummarizeDeterminism(verdicts)[0].flaky());
  Report hashes;
  hashes.results.push_back(RunOf("b", scenario::Verdict::kReproduced, "h1", 1));
  hashes.results.push_back(RunOf("b", scenario::Verdict::kReproduced, "h2", 1));
  EXPECT_TRUE(SummarizeDeterminism(hashes)[0].flaky());
  std::ostringstream out;
  PrintDeterminism(out, SummarizeDeterminism(hashes));
  EXPECT_NE(out.str().find("FLAKY b: 2 runs, reproduced x2; 2 signature hashes"), std::string::npos)
      << out.str();
}

}  // namespace
}  // namespace wedge::report
