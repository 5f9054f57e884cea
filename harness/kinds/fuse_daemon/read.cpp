#include "wedge/kinds/fuse_daemon.h"
#include "wedge/scenario/read_context.h"

namespace wedge::kinds {

using scenario::Quote;
using scenario::reader::Node;
using scenario::reader::Optional;
using scenario::reader::ReadRelativePath;

scenario::FuseDaemonFixture ReadFuseDaemonFixture(const Node& entry,
                                                  scenario::ReadContext& context) {
  scenario::reader::CheckKeys(
      entry,
      {"kind", "mountpoint", "file", "holder_thread", "holder_open", "holder_closes", "flush"},
      "for a \"fuse-daemon\" fixture");
  scenario::FuseDaemonFixture daemon;
  if (auto mountpoint = Optional(entry, "mountpoint")) {
    daemon.mountpoint = ReadRelativePath(*mountpoint);
  }
  for (const scenario::Fixture& other : context.scenario.fixtures) {
    const auto* other_daemon = std::get_if<scenario::FuseDaemonFixture>(&other.kind);
    if (other_daemon == nullptr) continue;
    if (scenario::reader::PathsOverlap(daemon.mountpoint, other_daemon->mountpoint)) {
      scenario::reader::Fail(entry.pointer + (entry.Has("mountpoint") ? "/mountpoint" : ""),
                             "mountpoint " + Quote(daemon.mountpoint) +
                                 " overlaps the mountpoint " + Quote(other_daemon->mountpoint) +
                                 " of fixture " + Quote(other.name));
    }
  }
  if (auto file = Optional(entry, "file")) daemon.file = ReadRelativePath(*file);
  if (auto holder = Optional(entry, "holder_thread")) {
    daemon.holder_thread = scenario::reader::ReadBool(*holder);
  }
  using HolderOpen = scenario::FuseDaemonFixture::HolderOpen;
  if (auto open = Optional(entry, "holder_open")) {
    static const scenario::reader::NameTable<HolderOpen> kHolderOpen = {
        {"read", HolderOpen::kRead}, {"path", HolderOpen::kPath}};
    daemon.holder_open = scenario::reader::ReadChoice(*open, kHolderOpen);
  }
  if (auto closes = Optional(entry, "holder_closes")) {
    daemon.holder_closes = scenario::reader::ReadBool(*closes);
  }
  for (const char* knob : {"holder_open", "holder_closes"}) {
    if (!daemon.holder_thread && entry.Has(knob)) {
      scenario::reader::Fail(entry.pointer + "/" + knob,
                             std::string(knob) + " needs \"holder_thread\": true: without a " +
                                 "holder no file of the mount is open");
    }
  }
  if (daemon.holder_closes && daemon.holder_open == HolderOpen::kPath) {
    scenario::reader::Fail(entry.pointer + "/holder_closes",
                           "holder_closes needs \"holder_open\": \"read\": an O_PATH file sends "
                           "no FLUSH or RELEASE to answer");
  }
  if (auto flush = Optional(entry, "flush")) {
    using Flush = scenario::FuseDaemonFixture::Flush;
    static const scenario::reader::NameTable<Flush> kFlush = {{"reply", Flush::kReply},
                                                              {"never", Flush::kNever}};
    daemon.flush = scenario::reader::ReadChoice(*flush, kFlush);
  }
  return daemon;
}

}  // namespace wedge::kinds
