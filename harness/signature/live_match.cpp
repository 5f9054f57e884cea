#include "wedge/signature/live_match.h"

#include <algorithm>
#include <functional>

namespace wedge::signature {
namespace {

constexpr const char* kRootLabel = "sandbox-init";
constexpr std::size_t kMaxLabelledProcesses = 64;

// The labels `signature` gives processes other than the root, in order of first use.
std::vector<std::string> OtherLabels(const Signature& signature) {
  std::vector<std::string> labels;
  for (const auto& expectation : signature.tasks) {
    const std::string& label = expectation.select.process;
    if (!label.empty() && label != kRootLabel &&
        std::find(labels.begin(), labels.end(), label) == labels.end()) {
      labels.push_back(label);
    }
  }
  return labels;
}

std::size_t SatisfiedExpectations(const Signature& signature, const MatchResult& match) {
  return std::count_if(signature.tasks.begin(), signature.tasks.end(), [&](const auto& task) {
    return std::none_of(match.mismatches.begin(), match.mismatches.end(),
                        [&](const Mismatch& m) { return m.role == task.role; });
  });
}

bool UsesRootLabel(const Signature& signature) {
  return std::any_of(signature.tasks.begin(), signature.tasks.end(),
                     [](const auto& task) { return task.select.process == kRootLabel; });
}

// Tries `signature`'s labels on the tree's processes in every assignment (trees are small; the
// search is bounded by the number of processes and labels) and keeps the closest. A signature of
// wedge's sandbox has its root as "sandbox-init"; any other (a container's, whose processes a
// spawn step names) may label the root too.
void MatchClosestLabelling(const probe::TreeSnapshot& tree, const Signature& signature,
                           LiveMatch& best) {
  const std::vector<std::string> labels = OtherLabels(signature);
  const bool rooted = UsesRootLabel(signature);
  std::vector<std::size_t> others;
  for (std::size_t i = rooted ? 1 : 0; i < tree.processes.size(); ++i) others.push_back(i);
  if (labels.size() > others.size() || others.size() > kMaxLabelledProcesses) return;

  probe::TreeSnapshot labelled = tree;
  for (auto& process : labelled.processes) process.label.clear();
  if (rooted && !labelled.processes.empty()) labelled.processes[0].label = kRootLabel;
  std::function<void(std::size_t)> assign = [&](std::size_t next) {
    if (next == labels.size()) {
      MatchResult match = Match(signature, Observe(labelled, /*all_exited=*/false));
      // A live tree shows tasks only: the commands and rates a scenario observes are not there.
      std::erase_if(match.mismatches, [&](const Mismatch& mismatch) {
        return std::none_of(signature.tasks.begin(), signature.tasks.end(),
                            [&](const auto& task) { return task.role == mismatch.role; });
      });
      const std::size_t satisfied = SatisfiedExpectations(signature, match);
      if (best.match.bound.empty() || satisfied > best.satisfied) {
        best.satisfied = satisfied;
        best.match = std::move(match);
      }
      return;
    }
    for (std::size_t index : others) {
      if (!labelled.processes[index].label.empty()) continue;
      labelled.processes[index].label = labels[next];
      assign(next + 1);
      labelled.processes[index].label.clear();
    }
  };
  assign(0);
}

}  // namespace

std::vector<LiveMatch> MatchLiveTree(const probe::TreeSnapshot& tree,
                                     const std::vector<KnownSignature>& candidates, LiveTree kind) {
  std::vector<std::size_t> order(candidates.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return candidates[a].expects_bug > candidates[b].expects_bug;
  });

  std::vector<LiveMatch> matches;
  std::vector<std::string> seen_descriptions;
  for (std::size_t index : order) {
    const KnownSignature& candidate = candidates[index];
    if (candidate.bug.tasks.empty()) continue;
    if (std::find(seen_descriptions.begin(), seen_descriptions.end(), candidate.bug.description) !=
        seen_descriptions.end()) {
      continue;
    }
    seen_descriptions.push_back(candidate.bug.description);
    LiveMatch best;
    best.candidate = index;
    best.name = candidate.name;
    best.total = candidate.bug.tasks.size();
    MatchClosestLabelling(tree, candidate.bug, best);
    matches.push_back(std::move(best));
  }
  auto fits = [&](const LiveMatch& match) {
    return UsesRootLabel(candidates[match.candidate].bug) == (kind == LiveTree::kProcesses);
  };
  std::stable_sort(matches.begin(), matches.end(), [&](const LiveMatch& a, const LiveMatch& b) {
    const std::size_t share_a = a.satisfied * b.total;
    const std::size_t share_b = b.satisfied * a.total;
    if (share_a != share_b) return share_a > share_b;
    return fits(a) && !fits(b);
  });
  return matches;
}

}  // namespace wedge::signature
