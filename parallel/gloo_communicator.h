// The CPU Communicator: Gloo (Debian's libgloo, TCP transport) on host
// buffers, for ranks on one machine or across machines.
//
// Setup: every rank of the group calls CreateGlooCommunicator with the same
// store, prefix and size and its own rank; the ranks publish their TCP
// addresses under `prefix` and connect a full mesh. A rank that never joins
// fails everybody's Create with DEADLINE_EXCEEDED naming the missing key
// within `timeout`.
//
// Choices (measured; see docs/benchmarks.md "Collectives"):
//   - AllReduceSum uses Gloo's older algorithm classes (gloo::AllreduceRing,
//     gloo::AllreduceHalvingDoubling), which were several times faster than
//     gloo::allreduce() for small buffers on loopback. They bind buffer
//     pointers and TCP slots when constructed, so the communicator keeps one
//     instance per (count, type, algorithm) bound to its own staging buffer
//     (copy in, run, copy out) in a bounded LRU cache. The cache key does not
//     include the caller's pointer: every rank makes the same calls in the
//     same order, so every rank hits or misses (and evicts) identically and
//     the slots stay paired. ChooseGlooAllReduceAlgorithm says which
//     algorithm a size gets.
//   - AllGather, Broadcast and Barrier use gloo::allgather/broadcast/barrier;
//     Send/Recv use unbound buffers with one slot sequence per peer and
//     direction. All of them treat data as bytes, so any DataType works.
//   - AllReduceSum supports kF32 and kI32; other types are INVALID_ARGUMENT.
//   - Every operation is bounded by `timeout` (Gloo's per-operation timeout).
//     A failure (peer gone, timeout) is returned as a Status whose message
//     starts with Describe(); after it every call returns FAILED_PRECONDITION
//     (the communicator is unusable; build a new one under a new prefix).
//   - size == 1 never touches the network (no rendezvous, local copies).
//
// Threading: as Communicator: one thread at a time; Create blocks for the
// rendezvous. Gloo runs one event-loop thread per communicator.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "parallel/communicator.h"
#include "parallel/key_value_store.h"

namespace strata::parallel {

enum class GlooAllReduceAlgorithm {
  kAuto,             // ChooseGlooAllReduceAlgorithm by size
  kRing,             // gloo::AllreduceRing
  kHalvingDoubling,  // gloo::AllreduceHalvingDoubling
};

const char* GlooAllReduceAlgorithmName(GlooAllReduceAlgorithm algorithm);

// What kAuto runs for an all-reduce of `bytes` over `ranks` ranks.
GlooAllReduceAlgorithm ChooseGlooAllReduceAlgorithm(int64_t bytes, int ranks);

struct GlooCommunicatorConfig {
  KeyValueStore* store = nullptr;  // must outlive Create (not used afterwards)
  std::string prefix;              // keys under it; same on every rank of the group
  int rank = 0;
  int size = 1;
  // IP or host name the TCP device binds to and advertises to its peers;
  // empty: this machine's host name.
  std::string bind_address;
  absl::Duration timeout = absl::Seconds(60);  // rendezvous and per operation
  std::string label;                           // for Describe()
  GlooAllReduceAlgorithm allreduce_algorithm = GlooAllReduceAlgorithm::kAuto;
};

absl::StatusOr<std::unique_ptr<Communicator>> CreateGlooCommunicator(
    const GlooCommunicatorConfig& config);

}  // namespace strata::parallel
