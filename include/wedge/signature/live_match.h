// `wedge match PID`: which known bug signature a live process tree shows, and how closely.
//
// Signatures name processes by the labels a scenario gives them. A live tree carries no labels,
// so for a signature of wedge's sandbox its root (the process wedge was pointed at) is taken as
// "sandbox-init" and every other label the signature uses is tried on every other process of the
// tree; for any other signature (a container's) every label is tried on every process, the root
// included. The closest labelling is kept.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "wedge/probe/task.h"
#include "wedge/signature/signature.h"

namespace wedge::signature {

// A known bug signature, as a scenario describes it.
struct KnownSignature {
  std::string name;         // the scenario's name
  Signature bug;            // its bug signature
  bool expects_bug = true;  // the scenario expects to reproduce the bug (false for a control)
};

// How closely a live tree shows one known signature.
struct LiveMatch {
  std::size_t candidate = 0;  // index into the candidates given to MatchLiveTree
  std::string name;
  std::size_t satisfied = 0;  // task expectations met by the closest labelling
  std::size_t total = 0;      // task expectations of the signature
  MatchResult match;          // of the closest labelling; empty when no labelling was tried
  bool complete() const { return satisfied == total; }
};

// Matches `tree` (its root first, as probe::ListDescendants orders it; labels it carries are
// ignored) against each candidate
// whose bug signature expects tasks; only those can be seen in a live tree. A signature shared by
// several candidates (a control variant repeats its scenario's, same description) is listed once,
// under the first candidate that expects the bug, else the first. The closest labelling is the
// first, trying labels in order of first use, that satisfies the most task expectations; one that
// binds no task gives way to any later one. Labellings are tried only while the tree has at most
// 64 processes that may take a label and at least as many as there are labels. The result is sorted
// by satisfied/total, highest first; ties keep the candidates' order (those expecting the bug
// first).
//
// Among equal shares, the signatures of the tree's kind come first: a sandbox's ("sandbox-init")
// for a tree of processes, a container's for a container's tree under its shim. The same
// deadlock looks the same in both; which one a person has in front of them is what they asked.
enum class LiveTree { kProcesses, kContainer };
std::vector<LiveMatch> MatchLiveTree(const probe::TreeSnapshot& tree,
                                     const std::vector<KnownSignature>& candidates,
                                     LiveTree kind = LiveTree::kProcesses);

}  // namespace wedge::signature
