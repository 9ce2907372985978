// A Communicator over NCCL on one CUDA device: one process (or, in tests, one
// thread) per GPU, every buffer in device memory on that GPU.
//
// Rendezvous: rank 0 calls ncclGetUniqueId and stores the 128-byte id under
// `prefix + "/nccl_unique_id"` in the replica's KeyValueStore (the coordinator
// serves it); the other ranks Get it, waiting up to `timeout`. Then every rank
// runs ncclCommInitRankConfig in non-blocking mode (config.blocking = 0) and
// polls ncclCommGetAsyncError, so a peer that never shows up ends in
// DEADLINE_EXCEEDED (after ncclCommAbort) instead of a hang.
//
// Streams: every op enqueues on the communicator's own non-blocking CUDA
// stream (stream()) and returns once NCCL has accepted the work; the buffers
// must not be read or reused by the host, or by other streams, until the
// caller has synchronised: Synchronize() (bounded wait, also watches NCCL's
// asynchronous errors), or a CUDA event recorded on stream() that the
// consumer's stream waits on. Barrier() synchronises itself.
//
// Bound compute stream (BindStream, communicator.h): with a stream S bound,
// every op first records an event on S and makes stream() wait on it, then
// enqueues the NCCL call on stream(), then records an event on stream() and
// makes S wait on it:
//
//   S:        kernels ─► [record ready] ······························► [wait done] ─► kernels
//   stream(): ························ [wait ready] ─► ncclAllReduce ─► [record done]
//
// so the collective reads what S's earlier kernels wrote and S's later
// kernels read its result, without a host synchronisation. The two events
// are created by BindStream (cudaEventDisableTiming) and re-recorded by each
// op (a wait captures the record made before it, so reuse is safe).
//
// Threading: one thread at a time uses a communicator (the worker's step
// thread); it may move between threads, each op sets the calling thread's
// current device to device(). rank(), size(), device(), stream() and
// Describe() are immutable and may be read from any thread. The destructor
// must not race an op.
//
// Errors never throw or exit: a failed NCCL or CUDA call is a Status whose
// message starts with Describe() and carries ncclGetErrorString plus
// ncclGetLastError(comm). After a failure (or a timed-out Synchronize) the
// communicator is aborted and every later op answers FAILED_PRECONDITION.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "parallel/communicator.h"
#include "parallel/key_value_store.h"

namespace strata::parallel {

struct NcclCommunicatorConfig {
  KeyValueStore* store = nullptr;  // not owned; must outlive Create only
  std::string prefix;              // one per replica generation, e.g. "replica-0/gen-3/tp/stage0"
  int rank = 0;
  int size = 1;
  int device = 0;  // CUDA ordinal as this process sees it (after CUDA_VISIBLE_DEVICES)
  // Rendezvous (waiting for the unique id) and communicator initialisation,
  // each bounded by this.
  absl::Duration timeout = absl::Seconds(60);
  // Bound of Synchronize()/Barrier() and of the orderly shutdown in the
  // destructor: a peer that died mid-collective turns into DEADLINE_EXCEEDED.
  absl::Duration sync_timeout = absl::Minutes(5);
  std::string label;  // "tp group replica-0/gen-3/tp/stage0", shown in Describe()
};

class NcclCommunicator : public Communicator {
 public:
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int device() const { return device_; }
  // "nccl rank 1 of 2 on host-a cuda:1 (tp group replica-0/gen-3/tp/stage0)".
  const std::string& Describe() const override { return description_; }
  // The stream every op is enqueued on (owned by the communicator).
  cudaStream_t stream() const { return stream_; }

  // Device buffers on device(). Each enqueues on stream() and returns; see the
  // file comment for when the buffers may be touched again. Send to or Recv
  // from this rank itself is INVALID_ARGUMENT (NCCL would need both in one
  // group call). Two ranks that exchange in both directions must order the
  // calls so every Send meets an already-issued or next Recv on the peer
  // (e.g. even stages send first, odd stages receive first).
  absl::Status AllReduceSum(void* buffer, int64_t count, DataType type) override;
  absl::Status AllGather(const void* in, void* out, int64_t count, DataType type) override;
  absl::Status Broadcast(void* buffer, int64_t count, DataType type, int root) override;
  absl::Status Send(const void* buffer, int64_t count, DataType type, int peer) override;
  absl::Status Recv(void* buffer, int64_t count, DataType type, int peer) override;
  // All-reduce of one int on a device scratch word, then Synchronize().
  absl::Status Barrier() override;
  // See communicator.h and the file comment. `stream` is a cudaStream_t on
  // device() (or null to unbind). Checks the stream by recording an event on
  // it: a stream CUDA refuses (e.g. another device's) is INVALID_ARGUMENT
  // starting with Describe() and the communicator stays usable; one that
  // failed earlier answers FAILED_PRECONDITION.
  absl::Status BindStream(void* stream) override;
  // The bound compute stream, null when none.
  cudaStream_t bound_stream() const { return bound_stream_; }
  // communicator.h: ncclCommGetAsyncError (an error state fails the
  // communicator); Abort is ncclCommAbort, recording `why` as the failure.
  absl::Status AsyncError() override;
  void Abort(const absl::Status& why) override;

  // Waits (bounded by sync_timeout) until everything enqueued on stream() has
  // finished, watching NCCL's asynchronous errors meanwhile.
  absl::Status Synchronize();

 private:
  friend absl::StatusOr<std::unique_ptr<NcclCommunicator>> CreateNcclCommunicator(
      const NcclCommunicatorConfig& config);
  NcclCommunicator(int rank, int size, int device, std::string description, std::string label,
                   absl::Duration sync_timeout);

  // Checks the state before an op: not failed, device current.
  absl::Status BeginOp(const char* op);
  // Turns the result of an enqueue into a Status; in non-blocking mode waits
  // for ncclInProgress to settle (bounded by sync_timeout).
  absl::Status FinishOp(const char* op, ncclResult_t result);
  // Records the first failure, aborts the communicator and returns `status`.
  absl::Status Fail(absl::Status status);
  absl::Status NcclError(const char* op, ncclResult_t result) const;
  // With a bound stream: stream() waits for the work enqueued on it so far.
  absl::Status WaitForCompute(const char* op);
  // With a bound stream: it waits for the work enqueued on stream() so far.
  absl::Status ReleaseToCompute(const char* op);
  // Enqueue wrapper: WaitForCompute, `enqueue` (an NCCL call on stream()),
  // FinishOp, ReleaseToCompute.
  template <typename Enqueue>
  absl::Status Ordered(const char* op, const char* nccl_call, Enqueue enqueue);

  const int rank_;
  const int size_;
  const int device_;
  const std::string description_;
  const std::string label_;  // NCCL's commName (NCCL_DEBUG logs) points into it
  const absl::Duration sync_timeout_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int32_t* scratch_ = nullptr;  // one device int for Barrier
  cudaStream_t bound_stream_ = nullptr;  // BindStream's compute stream (not owned)
  cudaEvent_t compute_ready_ = nullptr;  // recorded on bound_stream_ before each op
  cudaEvent_t comm_done_ = nullptr;      // recorded on stream_ after each op
  absl::Status failure_;        // the first error; ok while healthy
};

// Validates the config, checks for a CUDA device, rendezvous and initialises.
// FAILED_PRECONDITION "no CUDA device: ..." on a machine without a GPU;
// DEADLINE_EXCEEDED when the id or the peers do not arrive within timeout.
absl::StatusOr<std::unique_ptr<NcclCommunicator>> CreateNcclCommunicator(
    const NcclCommunicatorConfig& config);

// ---- Host logic, callable (and tested) without a GPU. ----

// The key the unique id is stored under.
std::string NcclUniqueIdKey(absl::string_view prefix);
ncclDataType_t ToNcclDataType(DataType type);
// count * DataTypeSize(type); INVALID_ARGUMENT for a negative count or an
// overflow of size_t.
absl::StatusOr<size_t> NcclByteCount(int64_t count, DataType type);
// rank/size/device/store/prefix/timeouts; INVALID_ARGUMENT naming the field.
absl::Status ValidateNcclConfig(const NcclCommunicatorConfig& config);
// `peer` (or a Broadcast root when self_ok) must be in [0, size); Send/Recv
// peers must differ from `rank`.
absl::Status ValidateNcclPeer(const char* what, int peer, int rank, int size, bool self_ok);
// "nccl rank R of N on <host> cuda:<dev> (<label>)"; no parenthesis when the
// label is empty.
std::string FormatNcclDescription(int rank, int size, absl::string_view host, int device,
                                  absl::string_view label);
// The status code an NCCL result maps to (network/peer failures UNAVAILABLE,
// misuse INVALID_ARGUMENT/FAILED_PRECONDITION, the rest INTERNAL).
absl::StatusCode NcclResultToStatusCode(ncclResult_t result);
// The stored bytes back into an id; DATA_LOSS when the length is wrong.
absl::StatusOr<ncclUniqueId> ParseNcclUniqueId(absl::string_view bytes);
std::string SerializeNcclUniqueId(const ncclUniqueId& id);
// This machine's host name (gethostname), "unknown-host" if that fails.
std::string NcclHostName();

}  // namespace strata::parallel
