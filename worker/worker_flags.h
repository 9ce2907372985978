// Command-line flags of strata-worker: parsing ("--name value" or
// "--name=value"; unknown flags are errors) and checks that name the bad flag.
// main() turns an error here into exit code 2.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "parallel/cpu_communicator.h"
#include "worker/coordinator_link.h"
#include "worker/step_executor.h"

namespace strata {

struct WorkerFlags {
  std::string coordinator;        // --coordinator HOST:PORT (required)
  uint32_t replica = 0;           // --replica
  std::string model;              // --model PATH (required)
  std::string model_name;         // --model-name (default: file stem)
  std::string device = "cpu";     // --device
  int threads = 1;                // --threads
  int64_t kv_cache_mb = 0;        // --kv-cache-mb (0: not given)
  int32_t kv_blocks = 0;          // --kv-blocks (0: not given)
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
  parallel::CpuTransport collective_transport = parallel::CpuTransport::kAuto;  // --collective-transport
  double connect_timeout_s = 120; // --connect-timeout-s
  bool help = false;              // --help
};

// KV budget when neither --kv-cache-mb nor --kv-blocks is given.
inline constexpr int64_t kDefaultKvCacheMb = 512;

// args excludes argv[0]. INVALID_ARGUMENT with a message that starts with
// the flag. `--device cuda:N` parses here; whether the device exists is
// checked when the backend is created (worker_main exits with that error).
absl::StatusOr<WorkerFlags> ParseWorkerFlags(const std::vector<std::string>& args);

std::string WorkerUsage();

StepExecutorConfig ExecutorConfigFromFlags(const WorkerFlags& flags);
CoordinatorLinkConfig LinkConfigFromFlags(const WorkerFlags& flags);

// The flag a PlanKv error is about ("--max-context", "--kv-blocks", ...), for
// main's message.
std::string FlagForKvPlanError(absl::string_view message, const WorkerFlags& flags);

}  // namespace strata
