#include "wedge/kinds/fuse_daemon.h"
#include "wedge/scenario/read_context.h"

namespace wedge::kinds {

using scenario::Quote;
using scenario::reader::Node;
using scenario::reader::Optional;
using scenario::reader::ReadRelativePath;

scenario::FuseDaemonFixture ReadFuseDaemonFixture(const Node& entry,
                                                  scenario::ReadContext& context) {
  scenario::reader::CheckKeys(entry, {"kind", "mountpoint", "file", "holder_thread", "flush"},
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
  if (auto flush = Optional(entry, "flush")) {
    using Flush = scenario::FuseDaemonFixture::Flush;
    static const scenario::reader::NameTable<Flush> kFlush = {{"reply", Flush::kReply},
                                                              {"never", Flush::kNever}};
    daemon.flush = scenario::reader::ReadChoice(*flush, kFlush);
  }
  return daemon;
}

}  // namespace wedge::kinds
