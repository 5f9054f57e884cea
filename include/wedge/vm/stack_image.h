// A release root (stack/release_root.h) as a disk a guest kernel mounts: the private stack in a
// guest runs that release's daemons from it, as the host does from the root itself.
//
// Why a disk: a release root is about 400 MiB, too much for the initramfs, which the guest holds
// in its memory twice while it unpacks; Debian's cloud kernels have no 9p (CONFIG_NET_9P is not
// set in 6.1's), and virtiofs needs a daemon on the host. A read-only virtio disk needs only
// virtio_blk and ext4 (built into every Debian kernel), and the image is built once per root.
#pragma once

#include <filesystem>

#include "wedge/base/result.h"
#include "wedge/sys/journal.h"

namespace wedge::vm {

// CACHE/NAME.ext4 beside the root CACHE/NAME: an ext4 image of it (mke2fs -d, the root's
// owners and modes kept, no journal), built once into CACHE/.build-RUN_ID-NAME-image (journaled:
// a killed build is removed by `wedge cleanup`) and renamed into place when complete; root's
// alone to write. Returns its path.
Result<std::filesystem::path> EnsureStackImage(const std::filesystem::path& root,
                                               sys::Journal& journal, std::ostream* progress);

}  // namespace wedge::vm
