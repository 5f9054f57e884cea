// The private docker stack in a guest kernel: what the guest needs to run scenarios that drive
// docker there exactly as `wedge run` runs them on the host.
//
// The host's stack (the installed binaries) goes into the initramfs at its own paths, with the
// libraries ldd finds for it and the /etc its daemons read (root's passwd and group entries). A
// release's stack comes on a read-only disk (vm/stack_image.h), mounted at the root's own path
// with its manifest beside it, so that the guest's `wedge run --stack RELEASE` finds it in the
// same cache (without an archive to ask: the guest has no network). Either way the guest gets
// the tools wedge runs beside the stack (GNU tar for the image, strace for the probes, ldd and
// bash for the fixture images, sha256sum, unshare, chroot), the kernel modules the stack needs
// (overlay; virtio_pci and virtio_blk for the disk), twice the memory, and a tmpfs root: its
// /init moves off the initramfs (switch_root) because pivot_root, which runc and a release
// root's sandbox use, refuses a namespace whose root is the initramfs.
#pragma once

#include <string>
#include <vector>

#include "wedge/base/result.h"
#include "wedge/scenario/scenario.h"
#include "wedge/stack/docker_stack.h"
#include "wedge/vm/initramfs.h"

namespace wedge::vm {

// Whether any of `scenarios` drives the private stack.
bool UsesStack(const std::vector<scenario::Scenario>& scenarios);

// The modules a guest running the stack of `binaries` needs beyond the scenarios' own.
std::vector<std::string> StackModules(const stack::Binaries& binaries);

// Adds to `contents` what the guest needs to run the stack of `binaries` (the host's, or one
// release's root); an error naming what is missing (a binary, a manifest). Components mixed in
// from another release (Binaries::components) are not supported in a guest.
Status AddStack(const stack::Binaries& binaries, GuestContents& contents);

}  // namespace wedge::vm
