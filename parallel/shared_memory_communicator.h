// A Communicator for ranks on one host: collectives and point-to-point
// transfers through one POSIX shared-memory segment, with futex wake-ups.
// Gloo's TCP transport pays a loopback round trip and an event-loop hand-off
// per message (tens of microseconds); a decode step of a TP replica does two
// all-reduces per layer, so on one host that latency, not bandwidth, is what
// the step waits for. Measured: docs/benchmarks.md "Collectives".
//
// Segment (rank 0 creates it, publishes its name under `<prefix>/shm`, and
// unlinks it once every rank has mapped it, so nothing is left in /dev/shm
// when the processes go away):
//   header | per-rank control words | per-pair channel words |
//   collective slots: 2 per rank of `collective_slot_bytes` |
//   point-to-point slots: 1 per ordered pair of `p2p_slot_bytes`
//
// Collectives (AllReduceSum, AllGather, Broadcast, Barrier) share one
// sequence: for op k every rank copies its input into its slot k % 2, posts
// arrived = k + 1, waits until every rank has posted k + 1 and reads the
// slots it needs. Two slots per rank make a second barrier unnecessary: a
// rank writes slot k % 2 only after every rank posted k, i.e. finished
// reading op k - 2. AllReduceSum sums the slots in rank order, so every rank
// gets bitwise the same result. Messages larger than a slot run in chunks.
// Send/Recv: one single-slot channel per ordered pair; Send copies into the
// slot once the receiver has taken the previous message.
//
// Waiting spins briefly, then sleeps on a futex (the segment's words are
// shared between processes). Failures: a wait past `timeout`
// (DEADLINE_EXCEEDED), a peer process that exited (UNAVAILABLE, noticed
// within ~50 ms), or a peer that failed and marked the group aborted
// (UNAVAILABLE). Messages start with Describe(); afterwards every call
// returns FAILED_PRECONDITION, as for the other communicators.
//
// Only for ranks that share /dev/shm and a PID namespace: see
// cpu_communicator.h for how the worker decides.
//
// Threading: as Communicator: one thread at a time; Create blocks for the
// rendezvous.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "parallel/communicator.h"
#include "parallel/key_value_store.h"

namespace strata::parallel {

struct SharedMemoryCommunicatorConfig {
  KeyValueStore* store = nullptr;  // must outlive Create (not used afterwards)
  std::string prefix;              // keys under it; same on every rank of the group
  int rank = 0;
  int size = 1;
  absl::Duration timeout = absl::Seconds(60);  // rendezvous and per wait
  std::string label;                           // for Describe()
  // Segment size: size * 2 * collective_slot_bytes + size^2 * p2p_slot_bytes
  // (+ a few KiB). Defaults: 12 MiB for 4 ranks.
  int64_t collective_slot_bytes = int64_t{1} << 20;
  int64_t p2p_slot_bytes = int64_t{256} << 10;
};

absl::StatusOr<std::unique_ptr<Communicator>> CreateSharedMemoryCommunicator(
    const SharedMemoryCommunicatorConfig& config);

}  // namespace strata::parallel
