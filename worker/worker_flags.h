// Command-line flags of strata-worker: parsing ("--name value" or
// "--name=value"; unknown flags are errors) and checks that name the bad flag.
// main() turns an error here into exit code 2.
#pragma once

#include "common/net/transport_security.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "parallel/cpu_communicator.h"
#include "worker/backend/device_spec.h"
#include "worker/coordinator_link.h"
#include "worker/step_executor.h"

namespace strata {

// --collective-transport: how a TP/PP group's ranks talk.
enum class CollectiveTransport {
  kAuto,          // NCCL on a CUDA device; on the CPU shared memory or Gloo/TCP (CpuTransport::kAuto)
  kTcp,           // Gloo over TCP (CPU only)
  kSharedMemory,  // shared memory between the ranks of one host (CPU only)
  kNccl,          // NCCL on the worker's CUDA device (CUDA only)
};
// "auto", "tcp", "shm", "nccl"; INVALID_ARGUMENT otherwise.
absl::StatusOr<CollectiveTransport> ParseCollectiveTransport(absl::string_view name);
const char* CollectiveTransportName(CollectiveTransport transport);

// What a worker's communicators are built on: NCCL on a CUDA ordinal, or a
// CPU transport (host buffers).
struct CollectiveChoice {
  bool nccl = false;
  int cuda_device = 0;                                         // nccl only
  parallel::CpuTransport cpu = parallel::CpuTransport::kAuto;  // !nccl only
};
// The transport for `requested` on `device`. Buffers the model hands to the
// communicators live where the backend keeps them, so a CUDA device needs
// NCCL (auto picks it) and a CPU device needs a CPU transport (auto lets the
// rendezvous pick shm or tcp). A mismatch (tcp/shm with cuda, nccl with cpu)
// is INVALID_ARGUMENT starting with "--collective-transport <name>".
absl::StatusOr<CollectiveChoice> ChooseCollective(CollectiveTransport requested, const DeviceSpec& device);

struct WorkerFlags {
  std::string coordinator;        // --coordinator HOST:PORT (required)
  uint32_t replica = 0;           // --replica
  std::string model;              // --model PATH (required)
  std::string model_name;         // --model-name (default: file stem)
  std::string device = "cpu";     // --device
  bool fp8_weights = false;       // --weight-dtype auto|fp8 (fp8: cuda only)
  bool cuda_graphs = true;        // --cuda-graphs on|off (cuda only)
  int threads = 1;                // --threads
  // --kv-cache-mb. Neither it nor --kv-blocks given: kDefaultKvCacheMb on
  // the CPU, 0 on CUDA (the pool is then sized from device memory with
  // --gpu-memory-utilization).
  int64_t kv_cache_mb = 0;
  int32_t kv_blocks = 0;          // --kv-blocks (0: not given)
  double gpu_memory_utilization = 0.9;  // --gpu-memory-utilization, (0, 1]
  int32_t block_size = 16;        // --block-size
  KvDtype kv_dtype = KvDtype::kF16;  // --kv-dtype f16|f32|bf16|fp8|fp8-unscaled|int8
  int64_t max_context = 0;        // --max-context (0: min(model ctx, 4096))
  uint32_t tp_rank = 0;           // --tp-rank
  uint32_t tp_size = 1;           // --tp-size
  uint32_t pp_stage = 0;          // --pp-stage
  uint32_t pp_size = 1;           // --pp-size
  std::vector<int64_t> layer_split;  // --pp-layer-split (empty: even)
  std::string peer_host;          // --peer-host (empty: the host name)
  double collective_timeout_s = 60;  // --collective-timeout-s
  CollectiveTransport collective_transport = CollectiveTransport::kAuto;  // --collective-transport
  double connect_timeout_s = 120; // --connect-timeout-s
  double max_step_s = 0;          // --max-step-s (0: no bound)
  // --join-token-file FILE: the token (FILE's first line, trimmed, >= 16
  // bytes) sent on every call to the coordinator's worker port. Read at
  // parse time; never logged.
  std::string join_token;
  // --tls-ca/--tls-cert/--tls-key/--tls-server-name/--tls-reload-s: TLS to
  // the coordinator's worker port; with cert and key, mutual TLS (the
  // worker's identity). Files are checked when the credentials are made.
  net::ChannelSecurity coordinator_security;
  bool help = false;              // --help
};

// KV budget when neither --kv-cache-mb nor --kv-blocks is given on the CPU.
inline constexpr int64_t kDefaultKvCacheMb = 512;

// args excludes argv[0]. INVALID_ARGUMENT with a message that starts with
// the flag. `--device cuda:N` parses here; whether the device exists is
// checked when the backend is created (worker_main exits with that error).
absl::StatusOr<WorkerFlags> ParseWorkerFlags(const std::vector<std::string>& args);

std::string WorkerUsage();

StepExecutorConfig ExecutorConfigFromFlags(const WorkerFlags& flags);
CoordinatorLinkConfig LinkConfigFromFlags(const WorkerFlags& flags);

// The flag a PlanKv / PlanKvFromDevice error is about ("--max-context",
// "--kv-blocks", "--gpu-memory-utilization", ...), for main's message.
std::string FlagForKvPlanError(absl::string_view message, const WorkerFlags& flags);

}  // namespace strata
