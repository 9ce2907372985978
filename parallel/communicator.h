// One process group's collectives and point-to-point transfers, whatever the
// transport: NCCL on device buffers (nccl_communicator.h), Gloo over TCP on
// host buffers (gloo_communicator.h), shared memory between the ranks of one
// host (shared_memory_communicator.h; cpu_communicator.h picks it or Gloo).
//
// A model replica of TP x PP ranks uses two groups per rank (see
// parallel_groups.h): its pipeline stage's tensor-parallel group (all-reduce,
// all-gather) and its tensor-parallel lane across the stages (Send/Recv of
// hidden states between neighbouring stages).
//
// Semantics shared by every implementation:
//   - Collective calls (AllReduceSum, AllGather, Broadcast, Barrier) must be
//     issued by every rank of the group in the same order with the same count
//     and type. Send(peer) on one rank pairs with Recv(from) on the peer, in
//     order. A Send may wait until the peer's Recv has taken it (large
//     messages on any transport; one message in flight per pair on shared
//     memory), so ranks must not form a cycle of Sends waiting on each other.
//   - Buffers live where the implementation says (host memory for CPU
//     implementations, device memory for NCCL); calls return when the buffer
//     may be read or reused (NCCL: when the work is enqueued on the
//     communicator's stream, see nccl_communicator.h).
//   - A failure (peer gone, timeout, transport error) is a Status whose message
//     starts with Describe() (transport, host name, rank/size), never an
//     exception or a crash. After a failure the communicator is unusable; the
//     owner builds a new one (a new rendezvous generation).
//
// Threading: a communicator is used by one thread at a time (the worker's step
// thread). rank(), size() and Describe() are immutable and may be read from
// any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace strata::parallel {

enum class DataType { kF32, kF16, kBF16, kI32, kU8 };

size_t DataTypeSize(DataType type);
// This machine's host name for Describe() ("unknown-host" if it has none).
std::string HostName();
const char* DataTypeName(DataType type);

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "gloo/tcp rank 1 of 2 on host-a (tp group replica-0/gen-3/tp/stage0)";
  // every error message starts with it.
  virtual const std::string& Describe() const = 0;

  // buffer[i] = sum over ranks of buffer[i], i < count, in place.
  virtual absl::Status AllReduceSum(void* buffer, int64_t count, DataType type) = 0;
  // out = in of rank 0, then in of rank 1, ...: out holds size() * count elements.
  // `in` and `out` must not overlap.
  virtual absl::Status AllGather(const void* in, void* out, int64_t count, DataType type) = 0;
  // Every rank's buffer becomes root's.
  virtual absl::Status Broadcast(void* buffer, int64_t count, DataType type, int root) = 0;
  // Point to point; count and type must match the peer's Recv.
  virtual absl::Status Send(const void* buffer, int64_t count, DataType type, int peer) = 0;
  virtual absl::Status Recv(void* buffer, int64_t count, DataType type, int peer) = 0;
  virtual absl::Status Barrier() = 0;

  // Orders this communicator's work with a compute stream that produces and
  // consumes its buffers, so no host synchronisation is needed between them.
  // `stream` is a native device queue (a cudaStream_t as void*, see
  // Backend::native_stream()) or null.
  //
  // Contract, for a non-null stream bound to a device communicator (NCCL):
  //   - every later op (collective, Send/Recv, Barrier) starts only after all
  //     work enqueued on `stream` before the call (it reads what the compute
  //     kernels wrote, and does not overwrite what they still read);
  //   - work enqueued on `stream` after the op returns starts only after the
  //     op's transfer finished (the model's next kernels see the result);
  //   - neither side blocks the host; the ordering is device-side (events).
  //   - `stream` must stay valid until it is unbound (BindStream(nullptr)) or
  //     the communicator is destroyed; it must be a stream on the
  //     communicator's device.
  // A null stream unbinds: ops are then ordered only as the implementation's
  // own comment says (NCCL: on its own stream, the caller synchronises).
  //
  // Default (host-buffer communicators: Gloo, shared memory): null is OK (a
  // no-op: their ops complete on the host before returning); a non-null
  // stream is FAILED_PRECONDITION whose message starts with Describe(): such a
  // communicator cannot read device buffers, so binding it to a device stream
  // is a configuration error (use NCCL for device buffers).
  virtual absl::Status BindStream(void* stream);

  // For device communicators, whose work runs on a stream after the op
  // returned (a bound NCCL communicator's kernels in the model's stream):
  //   - AsyncError: an error reported asynchronously since (a peer gone, a
  //     network failure), or the communicator's earlier failure; OK while
  //     healthy.
  //   - Abort: ends the communicator's work still waiting on peers, so the
  //     stream drains; every later op fails naming `why`.
  // A waiter on the stream (CollectiveWatch, worker/backend/collective_watch.h)
  // calls them so that a dead peer fails the step instead of hanging it.
  // Default (host communicators, whose ops finish or time out before they
  // return): OK, and a no-op.
  virtual absl::Status AsyncError() { return absl::OkStatus(); }
  virtual void Abort(const absl::Status& why) { (void)why; }
};

}  // namespace strata::parallel
