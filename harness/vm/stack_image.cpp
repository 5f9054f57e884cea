#include "wedge/vm/stack_image.h"

#include <sys/stat.h>
#include <unistd.h>

#include <ostream>
#include <string>

#include "wedge/base/text.h"
#include "wedge/stack/release_archive.h"
#include "wedge/sys/command.h"
#include "wedge/sys/process.h"

namespace wedge::vm {
namespace {

namespace fs = std::filesystem;

std::uint64_t ApparentBytes(const fs::path& root) {
  std::uint64_t bytes = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0) {
      // Every inode costs at least a block of 4 KiB in the image.
      bytes += std::max<std::uint64_t>(static_cast<std::uint64_t>(st.st_size), 4096);
    }
  }
  return bytes;
}

// Trusted: a regular file of wedge's uid that no one else may write.
bool TrustedImage(const fs::path& image) {
  struct stat st {};
  return ::lstat(image.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == ::geteuid() &&
         (st.st_mode & 022) == 0;
}

}  // namespace

Result<fs::path> EnsureStackImage(const fs::path& root, sys::Journal& journal,
                                  std::ostream* progress) {
  const fs::path cache = root.parent_path();
  const std::string name = root.filename().string();
  const fs::path image = cache / (name + ".ext4");
  if (TrustedImage(image)) return image;
  const fs::path building =
      cache / (std::string(sys::kStackBuildPrefix) + journal.run_id() + "-" + name + "-image");
  WEDGE_ASSIGN_OR_RETURN(std::uint64_t seq, journal.Record(sys::DirectoryChange{building}));
  sys::JournalEntryOwner remove_building(journal, seq, false);
  if (::mkdir(building.c_str(), 0700) != 0) {
    return ErrnoError("mkdir('" + building.string() + "')");
  }
  const std::int64_t started = sys::MonotonicMillis();
  // Room for the files, a quarter more for ext4's own blocks, and 64 MiB to spare.
  const std::uint64_t mib = ApparentBytes(root) * 5 / 4 / (1024 * 1024) + 64;
  const fs::path partial = building / "root.ext4";
  WEDGE_ASSIGN_OR_RETURN(
      sys::CommandOutput made,
      sys::RunCommand("mke2fs",
                      {"-q", "-F", "-t", "ext4", "-O", "^has_journal", "-m", "0", "-i", "8192",
                       "-E", "root_owner=0:0", "-L", "wedge-stack", "-d", root.string(),
                       partial.string(), std::to_string(mib) + "M"},
                      std::chrono::minutes(5), stack::ArchiveToolEnvironment()));
  if (made.exit_code != 0) {
    return Error("mke2fs -d " + root.string() + " failed: " + Trim(made.output));
  }
  if (::chmod(partial.c_str(), 0644) != 0) return ErrnoError("chmod('" + partial.string() + "')");
  if (::rename(partial.c_str(), image.c_str()) != 0) {
    return ErrnoError("rename('" + partial.string() + "', '" + image.string() + "')");
  }
  if (progress != nullptr) {
    *progress << "stack image " << image.string() << ": " << mib << " MiB, built in "
              << sys::MonotonicMillis() - started << " ms\n";
  }
  return image;
}

}  // namespace wedge::vm
