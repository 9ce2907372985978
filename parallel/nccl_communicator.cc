#include "parallel/nccl_communicator.h"

#include <unistd.h>

#include <cstring>
#include <limits>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"

namespace strata::parallel {
namespace {

// How long a poll loop spins (yielding) before it starts sleeping: collectives
// of a decode step finish in microseconds, so the first waits must not sleep.
constexpr int kSpinsBeforeSleep = 2000;
constexpr absl::Duration kPollSleep = absl::Microseconds(50);
constexpr absl::Duration kInitPollSleep = absl::Milliseconds(1);

std::string CudaErrorText(cudaError_t error) {
  return absl::StrCat(cudaGetErrorName(error), ": ", cudaGetErrorString(error));
}

void PollPause(int spins) {
  if (spins < kSpinsBeforeSleep) {
    std::this_thread::yield();
  } else {
    absl::SleepFor(kPollSleep);
  }
}

}  // namespace

// ---- Host logic ----

std::string NcclUniqueIdKey(absl::string_view prefix) {
  return absl::StrCat(prefix, "/nccl_unique_id");
}

ncclDataType_t ToNcclDataType(DataType type) {
  switch (type) {
    case DataType::kF32:
      return ncclFloat32;
    case DataType::kF16:
      return ncclFloat16;
    case DataType::kBF16:
      return ncclBfloat16;
    case DataType::kI32:
      return ncclInt32;
    case DataType::kU8:
      return ncclUint8;
  }
  return ncclUint8;  // unreachable for a valid enum value
}

absl::StatusOr<size_t> NcclByteCount(int64_t count, DataType type) {
  if (count < 0) {
    return absl::InvalidArgumentError(absl::StrCat("negative element count ", count));
  }
  const size_t element = DataTypeSize(type);
  if (element == 0) {
    return absl::InvalidArgumentError("unknown data type");
  }
  if (static_cast<uint64_t>(count) > std::numeric_limits<size_t>::max() / element) {
    return absl::InvalidArgumentError(
        absl::StrCat(count, " elements of ", DataTypeName(type), " overflow a byte count"));
  }
  return static_cast<size_t>(count) * element;
}

absl::Status ValidateNcclConfig(const NcclCommunicatorConfig& config) {
  if (config.store == nullptr) {
    return absl::InvalidArgumentError("NcclCommunicatorConfig.store is null");
  }
  if (config.prefix.empty()) {
    return absl::InvalidArgumentError(
        "NcclCommunicatorConfig.prefix is empty (use one per replica generation)");
  }
  if (config.size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("NcclCommunicatorConfig.size ", config.size, " is not positive"));
  }
  if (config.rank < 0 || config.rank >= config.size) {
    return absl::InvalidArgumentError(absl::StrCat("NcclCommunicatorConfig.rank ", config.rank,
                                                   " is outside [0, ", config.size, ")"));
  }
  if (config.device < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("NcclCommunicatorConfig.device ", config.device, " is negative"));
  }
  if (config.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("NcclCommunicatorConfig.timeout is not positive");
  }
  if (config.sync_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("NcclCommunicatorConfig.sync_timeout is not positive");
  }
  return absl::OkStatus();
}

absl::Status ValidateNcclPeer(const char* what, int peer, int rank, int size, bool self_ok) {
  if (peer < 0 || peer >= size) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", peer, " is outside [0, ", size, ")"));
  }
  if (!self_ok && peer == rank) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", peer, " is this rank itself; send/recv need two ranks"));
  }
  return absl::OkStatus();
}

std::string FormatNcclDescription(int rank, int size, absl::string_view host, int device,
                                  absl::string_view label) {
  std::string text = absl::StrCat("nccl rank ", rank, " of ", size, " on ", host, " cuda:", device);
  if (!label.empty()) absl::StrAppend(&text, " (", label, ")");
  return text;
}

absl::StatusCode NcclResultToStatusCode(ncclResult_t result) {
  switch (result) {
    case ncclSuccess:
      return absl::StatusCode::kOk;
    case ncclSystemError:
    case ncclRemoteError:
      return absl::StatusCode::kUnavailable;
    case ncclInvalidArgument:
      return absl::StatusCode::kInvalidArgument;
    case ncclInvalidUsage:
      return absl::StatusCode::kFailedPrecondition;
    case ncclInProgress:
      return absl::StatusCode::kDeadlineExceeded;
    default:  // ncclUnhandledCudaError, ncclInternalError, anything newer
      return absl::StatusCode::kInternal;
  }
}

std::string SerializeNcclUniqueId(const ncclUniqueId& id) {
  return std::string(id.internal, sizeof(id.internal));
}

absl::StatusOr<ncclUniqueId> ParseNcclUniqueId(absl::string_view bytes) {
  ncclUniqueId id;
  if (bytes.size() != sizeof(id.internal)) {
    return absl::DataLossError(absl::StrCat("NCCL unique id has ", bytes.size(),
                                            " bytes, expected ", sizeof(id.internal)));
  }
  std::memcpy(id.internal, bytes.data(), sizeof(id.internal));
  return id;
}

std::string NcclHostName() { return HostName(); }

// ---- NcclCommunicator ----

NcclCommunicator::NcclCommunicator(int rank, int size, int device, std::string description,
                                   std::string label, absl::Duration sync_timeout)
    : rank_(rank),
      size_(size),
      device_(device),
      description_(std::move(description)),
      label_(std::move(label)),
      sync_timeout_(sync_timeout) {}

NcclCommunicator::~NcclCommunicator() {
  cudaSetDevice(device_);
  if (comm_ != nullptr) {
    // Orderly shutdown when healthy (finalize flushes what was issued), bounded
    // so that a dead peer cannot hang the destructor; abort otherwise.
    bool finalized = false;
    if (failure_.ok()) {
      ncclResult_t result = ncclCommFinalize(comm_);
      if (result == ncclSuccess || result == ncclInProgress) {
        const absl::Time deadline = absl::Now() + sync_timeout_;
        ncclResult_t state = ncclInProgress;
        for (int spins = 0;; ++spins) {
          if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) break;
          if (state != ncclInProgress || absl::Now() > deadline) break;
          PollPause(spins);
        }
        finalized = state == ncclSuccess;
      }
    }
    if (finalized) {
      ncclCommDestroy(comm_);
    } else {
      ncclCommAbort(comm_);
    }
    comm_ = nullptr;
  }
  if (scratch_ != nullptr) cudaFree(scratch_);
  // Waits already enqueued on the bound stream keep their record; CUDA
  // releases an event's resources once it completes.
  if (compute_ready_ != nullptr) cudaEventDestroy(compute_ready_);
  if (comm_done_ != nullptr) cudaEventDestroy(comm_done_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

absl::Status NcclCommunicator::NcclError(const char* op, ncclResult_t result) const {
  std::string message = absl::StrCat(description_, ": ", op, ": ", ncclGetErrorString(result));
  const char* last = ncclGetLastError(comm_);
  if (last != nullptr && last[0] != '\0') absl::StrAppend(&message, " (", last, ")");
  return absl::Status(NcclResultToStatusCode(result), message);
}

absl::Status NcclCommunicator::Fail(absl::Status status) {
  if (failure_.ok()) failure_ = status;
  if (comm_ != nullptr) {
    ncclCommAbort(comm_);
    comm_ = nullptr;
  }
  return status;
}

absl::Status NcclCommunicator::BeginOp(const char* op) {
  if (!failure_.ok() || comm_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(description_, ": ", op,
                     ": communicator unusable after an earlier error: ", failure_.message()));
  }
  if (cudaError_t error = cudaSetDevice(device_); error != cudaSuccess) {
    return Fail(absl::InternalError(
        absl::StrCat(description_, ": ", op, ": cudaSetDevice: ", CudaErrorText(error))));
  }
  return absl::OkStatus();
}

absl::Status NcclCommunicator::FinishOp(const char* op, ncclResult_t result) {
  if (result == ncclSuccess) return absl::OkStatus();
  if (result != ncclInProgress) return Fail(NcclError(op, result));
  // Non-blocking communicator: the call may still be connecting to peers.
  const absl::Time deadline = absl::Now() + sync_timeout_;
  for (int spins = 0;; ++spins) {
    ncclResult_t state = ncclInProgress;
    if (ncclResult_t r = ncclCommGetAsyncError(comm_, &state); r != ncclSuccess) {
      return Fail(NcclError("ncclCommGetAsyncError", r));
    }
    if (state == ncclSuccess) return absl::OkStatus();
    if (state != ncclInProgress) return Fail(NcclError(op, state));
    if (absl::Now() > deadline) {
      return Fail(absl::DeadlineExceededError(
          absl::StrCat(description_, ": ", op, " was still in progress after ",
                       absl::FormatDuration(sync_timeout_), " (a peer missing?)")));
    }
    PollPause(spins);
  }
}

absl::Status NcclCommunicator::WaitForCompute(const char* op) {
  if (bound_stream_ == nullptr) return absl::OkStatus();
  if (cudaError_t e = cudaEventRecord(compute_ready_, bound_stream_); e != cudaSuccess) {
    return Fail(absl::InternalError(absl::StrCat(description_, ": ", op,
                                                 ": cudaEventRecord (compute stream): ", CudaErrorText(e))));
  }
  if (cudaError_t e = cudaStreamWaitEvent(stream_, compute_ready_, 0); e != cudaSuccess) {
    return Fail(absl::InternalError(
        absl::StrCat(description_, ": ", op, ": cudaStreamWaitEvent (collective stream): ", CudaErrorText(e))));
  }
  return absl::OkStatus();
}

absl::Status NcclCommunicator::ReleaseToCompute(const char* op) {
  if (bound_stream_ == nullptr) return absl::OkStatus();
  if (cudaError_t e = cudaEventRecord(comm_done_, stream_); e != cudaSuccess) {
    return Fail(absl::InternalError(absl::StrCat(description_, ": ", op,
                                                 ": cudaEventRecord (collective stream): ", CudaErrorText(e))));
  }
  if (cudaError_t e = cudaStreamWaitEvent(bound_stream_, comm_done_, 0); e != cudaSuccess) {
    return Fail(absl::InternalError(
        absl::StrCat(description_, ": ", op, ": cudaStreamWaitEvent (compute stream): ", CudaErrorText(e))));
  }
  return absl::OkStatus();
}

template <typename Enqueue>
absl::Status NcclCommunicator::Ordered(const char* op, const char* nccl_call, Enqueue enqueue) {
  RETURN_IF_ERROR(WaitForCompute(op));
  RETURN_IF_ERROR(FinishOp(nccl_call, enqueue()));
  return ReleaseToCompute(op);
}

namespace {

// "<description>: <op>: <reason>" for a rejected argument.
absl::Status ArgumentError(const std::string& description, const char* op,
                           const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(description, ": ", op, ": ", status.message()));
}

}  // namespace

absl::Status NcclCommunicator::AllReduceSum(void* buffer, int64_t count, DataType type) {
  constexpr const char* kOp = "AllReduceSum";
  if (absl::StatusOr<size_t> bytes = NcclByteCount(count, type); !bytes.ok()) {
    return ArgumentError(description_, kOp, bytes.status());
  }
  if (count > 0 && buffer == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(description_, ": ", kOp, ": null buffer"));
  }
  RETURN_IF_ERROR(BeginOp(kOp));
  if (count == 0) return absl::OkStatus();
  return Ordered(kOp, "ncclAllReduce", [&] { return ncclAllReduce(buffer, buffer, static_cast<size_t>(count),
                                                 ToNcclDataType(type), ncclSum, comm_, stream_); });
}

absl::Status NcclCommunicator::AllGather(const void* in, void* out, int64_t count, DataType type) {
  constexpr const char* kOp = "AllGather";
  absl::StatusOr<size_t> in_bytes = NcclByteCount(count, type);
  if (!in_bytes.ok()) return ArgumentError(description_, kOp, in_bytes.status());
  if (count > std::numeric_limits<int64_t>::max() / size_) {
    return absl::InvalidArgumentError(absl::StrCat(description_, ": ", kOp, ": ", count,
                                                   " elements times ", size_, " ranks overflow"));
  }
  absl::StatusOr<size_t> out_bytes = NcclByteCount(count * size_, type);
  if (!out_bytes.ok()) return ArgumentError(description_, kOp, out_bytes.status());
  if (count > 0 && (in == nullptr || out == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat(description_, ": ", kOp, ": null buffer"));
  }
  if (count > 0) {
    const auto in_begin = reinterpret_cast<uintptr_t>(in);
    const auto out_begin = reinterpret_cast<uintptr_t>(out);
    if (in_begin < out_begin + *out_bytes && out_begin < in_begin + *in_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(description_, ": ", kOp, ": `in` and `out` overlap"));
    }
  }
  RETURN_IF_ERROR(BeginOp(kOp));
  if (count == 0) return absl::OkStatus();
  return Ordered(kOp, "ncclAllGather", [&] { return ncclAllGather(in, out, static_cast<size_t>(count),
                                                 ToNcclDataType(type), comm_, stream_); });
}

absl::Status NcclCommunicator::Broadcast(void* buffer, int64_t count, DataType type, int root) {
  constexpr const char* kOp = "Broadcast";
  if (absl::StatusOr<size_t> bytes = NcclByteCount(count, type); !bytes.ok()) {
    return ArgumentError(description_, kOp, bytes.status());
  }
  if (absl::Status root_ok = ValidateNcclPeer("root", root, rank_, size_, true); !root_ok.ok()) {
    return ArgumentError(description_, kOp, root_ok);
  }
  if (count > 0 && buffer == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(description_, ": ", kOp, ": null buffer"));
  }
  RETURN_IF_ERROR(BeginOp(kOp));
  if (count == 0) return absl::OkStatus();
  return Ordered(kOp, "ncclBroadcast", [&] { return ncclBroadcast(buffer, buffer, static_cast<size_t>(count),
                                                 ToNcclDataType(type), root, comm_, stream_); });
}

absl::Status NcclCommunicator::Send(const void* buffer, int64_t count, DataType type, int peer) {
  constexpr const char* kOp = "Send";
  if (absl::StatusOr<size_t> bytes = NcclByteCount(count, type); !bytes.ok()) {
    return ArgumentError(description_, kOp, bytes.status());
  }
  if (absl::Status peer_ok = ValidateNcclPeer("peer", peer, rank_, size_, false); !peer_ok.ok()) {
    return ArgumentError(description_, kOp, peer_ok);
  }
  if (count > 0 && buffer == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(description_, ": ", kOp, ": null buffer"));
  }
  RETURN_IF_ERROR(BeginOp(kOp));
  if (count == 0) return absl::OkStatus();
  return Ordered(kOp, "ncclSend", [&] { return ncclSend(buffer, static_cast<size_t>(count), ToNcclDataType(type),
                                       peer, comm_, stream_); });
}

absl::Status NcclCommunicator::Recv(void* buffer, int64_t count, DataType type, int peer) {
  constexpr const char* kOp = "Recv";
  if (absl::StatusOr<size_t> bytes = NcclByteCount(count, type); !bytes.ok()) {
    return ArgumentError(description_, kOp, bytes.status());
  }
  if (absl::Status peer_ok = ValidateNcclPeer("peer", peer, rank_, size_, false); !peer_ok.ok()) {
    return ArgumentError(description_, kOp, peer_ok);
  }
  if (count > 0 && buffer == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(description_, ": ", kOp, ": null buffer"));
  }
  RETURN_IF_ERROR(BeginOp(kOp));
  if (count == 0) return absl::OkStatus();
  return Ordered(kOp, "ncclRecv", [&] { return ncclRecv(buffer, static_cast<size_t>(count), ToNcclDataType(type),
                                       peer, comm_, stream_); });
}

absl::Status NcclCommunicator::Barrier() {
  constexpr const char* kOp = "Barrier";
  RETURN_IF_ERROR(BeginOp(kOp));
  RETURN_IF_ERROR(Ordered(kOp, "ncclAllReduce (barrier)", [&] {
    return ncclAllReduce(scratch_, scratch_, 1, ncclInt32, ncclSum, comm_, stream_);
  }));
  return Synchronize();
}

absl::Status NcclCommunicator::BindStream(void* stream) {
  constexpr const char* kOp = "BindStream";
  RETURN_IF_ERROR(BeginOp(kOp));
  if (stream == nullptr) {
    bound_stream_ = nullptr;
    return absl::OkStatus();
  }
  for (cudaEvent_t* event : {&compute_ready_, &comm_done_}) {
    if (*event != nullptr) continue;
    if (cudaError_t e = cudaEventCreateWithFlags(event, cudaEventDisableTiming); e != cudaSuccess) {
      *event = nullptr;
      return Fail(absl::InternalError(
          absl::StrCat(description_, ": ", kOp, ": cudaEventCreateWithFlags: ", CudaErrorText(e))));
    }
  }
  // Recording on the stream checks it: an event of one device cannot be
  // recorded on another device's stream.
  auto* candidate = static_cast<cudaStream_t>(stream);
  if (cudaError_t e = cudaEventRecord(compute_ready_, candidate); e != cudaSuccess) {
    cudaGetLastError();  // not sticky; clear it so later calls are not confused
    return absl::InvalidArgumentError(absl::StrCat(
        description_, ": ", kOp, ": cannot record an event on the given stream (", CudaErrorText(e),
        "); it must be a live stream on cuda:", device_));
  }
  bound_stream_ = candidate;
  return absl::OkStatus();
}


absl::Status NcclCommunicator::AsyncError() {
  if (!failure_.ok()) return failure_;
  if (comm_ == nullptr) return absl::OkStatus();
  ncclResult_t state = ncclSuccess;
  if (ncclResult_t r = ncclCommGetAsyncError(comm_, &state); r != ncclSuccess) {
    return Fail(NcclError("ncclCommGetAsyncError", r));
  }
  if (state != ncclSuccess && state != ncclInProgress) {
    return Fail(NcclError("asynchronous NCCL error (a peer gone or a network failure)", state));
  }
  return absl::OkStatus();
}

void NcclCommunicator::Abort(const absl::Status& why) {
  Fail(absl::Status(why.code(), absl::StrCat(description_, ": aborted: ", why.message()))).IgnoreError();
}

absl::Status NcclCommunicator::Synchronize() {
  RETURN_IF_ERROR(BeginOp("Synchronize"));
  const absl::Time deadline = absl::Now() + sync_timeout_;
  for (int spins = 0;; ++spins) {
    const cudaError_t error = cudaStreamQuery(stream_);
    if (error == cudaSuccess) break;
    if (error != cudaErrorNotReady) {
      return Fail(absl::InternalError(
          absl::StrCat(description_, ": Synchronize: cudaStreamQuery: ", CudaErrorText(error))));
    }
    RETURN_IF_ERROR(AsyncError());
    if (absl::Now() > deadline) {
      return Fail(absl::DeadlineExceededError(absl::StrCat(
          description_, ": Synchronize: stream work unfinished after ",
          absl::FormatDuration(sync_timeout_),
          " (a peer that never joined the collective, or died in it); communicator aborted")));
    }
    PollPause(spins);
  }
  return AsyncError();
}

// ---- Creation ----

absl::StatusOr<std::unique_ptr<NcclCommunicator>> CreateNcclCommunicator(
    const NcclCommunicatorConfig& config) {
  const std::string description =
      FormatNcclDescription(config.rank, config.size, NcclHostName(), config.device, config.label);
  auto error = [&](absl::StatusCode code, absl::string_view what) {
    return absl::Status(code, absl::StrCat(description, ": ", what));
  };
  if (absl::Status valid = ValidateNcclConfig(config); !valid.ok()) {
    return error(valid.code(), valid.message());
  }

  // A machine without a GPU (or without a driver) answers here, before any
  // rendezvous, so the peers see a missing key rather than a crash.
  int device_count = 0;
  if (cudaError_t e = cudaGetDeviceCount(&device_count); e != cudaSuccess) {
    cudaGetLastError();  // clear the error so later runtime calls are not confused
    return error(absl::StatusCode::kFailedPrecondition,
                 absl::StrCat("no CUDA device: ", CudaErrorText(e), " (cuda:", config.device,
                              " requested)"));
  }
  if (device_count == 0) {
    return error(absl::StatusCode::kFailedPrecondition,
                 absl::StrCat("no CUDA device: cudaGetDeviceCount found 0 devices (cuda:",
                              config.device, " requested)"));
  }
  if (config.device >= device_count) {
    return error(absl::StatusCode::kFailedPrecondition,
                 absl::StrCat("cuda:", config.device, " requested but only ", device_count,
                              " CUDA device(s) are visible (check CUDA_VISIBLE_DEVICES)"));
  }
  if (cudaError_t e = cudaSetDevice(config.device); e != cudaSuccess) {
    return error(absl::StatusCode::kFailedPrecondition,
                 absl::StrCat("cudaSetDevice(", config.device, "): ", CudaErrorText(e)));
  }

  // From here on the object owns what is created; its destructor cleans up.
  std::unique_ptr<NcclCommunicator> comm(new NcclCommunicator(
      config.rank, config.size, config.device, description, config.label, config.sync_timeout));
  if (cudaError_t e = cudaStreamCreateWithFlags(&comm->stream_, cudaStreamNonBlocking);
      e != cudaSuccess) {
    comm->stream_ = nullptr;
    return error(absl::StatusCode::kInternal,
                 absl::StrCat("cudaStreamCreateWithFlags: ", CudaErrorText(e)));
  }
  if (cudaError_t e = cudaMalloc(&comm->scratch_, sizeof(int32_t)); e != cudaSuccess) {
    comm->scratch_ = nullptr;
    return error(absl::StatusCode::kResourceExhausted,
                 absl::StrCat("cudaMalloc (barrier scratch): ", CudaErrorText(e)));
  }
  if (cudaError_t e = cudaMemset(comm->scratch_, 0, sizeof(int32_t)); e != cudaSuccess) {
    return error(absl::StatusCode::kInternal, absl::StrCat("cudaMemset: ", CudaErrorText(e)));
  }

  // Unique id: rank 0 creates it, the others wait for it in the store.
  const std::string key = NcclUniqueIdKey(config.prefix);
  ncclUniqueId id;
  if (config.rank == 0) {
    if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) {
      return comm->NcclError("ncclGetUniqueId", r);
    }
    if (absl::Status set = config.store->Set(key, SerializeNcclUniqueId(id)); !set.ok()) {
      return error(set.code(), absl::StrCat("publishing the NCCL unique id under '", key,
                                            "': ", set.message()));
    }
  } else {
    absl::StatusOr<std::string> bytes = config.store->Get(key, config.timeout);
    if (!bytes.ok()) {
      return error(bytes.status().code(),
                   absl::StrCat("waiting for rank 0's NCCL unique id: ", bytes.status().message()));
    }
    absl::StatusOr<ncclUniqueId> parsed = ParseNcclUniqueId(*bytes);
    if (!parsed.ok()) {
      return error(parsed.status().code(),
                   absl::StrCat("key '", key, "': ", parsed.status().message()));
    }
    id = *parsed;
  }

  // Non-blocking init, polled against the deadline: a rank that never joins
  // must not hang the others forever.
  ncclConfig_t nccl_config = NCCL_CONFIG_INITIALIZER;
  nccl_config.blocking = 0;
  if (!comm->label_.empty()) nccl_config.commName = comm->label_.c_str();
  ncclResult_t result =
      ncclCommInitRankConfig(&comm->comm_, config.size, id, config.rank, &nccl_config);
  if (result != ncclSuccess && result != ncclInProgress) {
    absl::Status status = comm->NcclError("ncclCommInitRankConfig", result);
    return comm->Fail(status);
  }
  const absl::Time deadline = absl::Now() + config.timeout;
  while (true) {
    ncclResult_t state = ncclInProgress;
    if (ncclResult_t r = ncclCommGetAsyncError(comm->comm_, &state); r != ncclSuccess) {
      return comm->Fail(comm->NcclError("ncclCommGetAsyncError (init)", r));
    }
    if (state == ncclSuccess) break;
    if (state != ncclInProgress) {
      return comm->Fail(comm->NcclError("ncclCommInitRankConfig", state));
    }
    if (absl::Now() > deadline) {
      return comm->Fail(
          error(absl::StatusCode::kDeadlineExceeded,
                absl::StrCat("NCCL communicator initialisation did not finish within ",
                             absl::FormatDuration(config.timeout), " (rank ", config.rank, " of ",
                             config.size, " on ", NcclHostName(),
                             " waited; are all ranks up and reachable? NCCL_DEBUG=INFO shows "
                             "where it stopped); communicator aborted")));
    }
    absl::SleepFor(kInitPollSleep);
  }
  return comm;
}

}  // namespace strata::parallel
