#include "worker/worker_flags.h"

#include <filesystem>
#include <limits>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/join_token.h"
#include "parallel/pipeline_stages.h"
#include "worker/backend/device_spec.h"

namespace strata {

namespace {

absl::Status Bad(absl::string_view flag, absl::string_view value, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(flag, " ", value, ": ", why));
}

template <typename T>
absl::Status ParseInt(absl::string_view flag, const std::string& value, int64_t lo, int64_t hi, T* out) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(value, &v)) return Bad(flag, value, "not an integer");
  if (v < lo || v > hi) return Bad(flag, value, absl::StrCat("must be in [", lo, ", ", hi, "]"));
  *out = static_cast<T>(v);
  return absl::OkStatus();
}

absl::Status CheckCoordinator(const std::string& address) {
  for (const char* scheme : {"unix:", "unix-abstract:", "dns:", "ipv4:", "ipv6:"}) {
    if (absl::StartsWith(address, scheme)) return absl::OkStatus();
  }
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 1 || port > 65535) {
    return Bad("--coordinator", address, "expected HOST:PORT (port 1..65535)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CollectiveTransport> ParseCollectiveTransport(absl::string_view name) {
  if (name == "auto") return CollectiveTransport::kAuto;
  if (name == "tcp") return CollectiveTransport::kTcp;
  if (name == "shm") return CollectiveTransport::kSharedMemory;
  if (name == "nccl") return CollectiveTransport::kNccl;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown collective transport '", name, "' (auto, tcp, shm or nccl)"));
}

const char* CollectiveTransportName(CollectiveTransport transport) {
  switch (transport) {
    case CollectiveTransport::kAuto:
      return "auto";
    case CollectiveTransport::kTcp:
      return "tcp";
    case CollectiveTransport::kSharedMemory:
      return "shm";
    case CollectiveTransport::kNccl:
      return "nccl";
  }
  return "?";
}

absl::StatusOr<CollectiveChoice> ChooseCollective(CollectiveTransport requested, const DeviceSpec& device) {
  CollectiveChoice choice;
  const bool cuda = device.kind == DeviceKind::kCuda;
  if (cuda) {
    if (requested != CollectiveTransport::kAuto && requested != CollectiveTransport::kNccl) {
      return Bad("--collective-transport", CollectiveTransportName(requested),
                 absl::StrCat("--device ", device.ToString(),
                              " keeps activations in GPU memory, which only NCCL reads; use nccl or auto"));
    }
    choice.nccl = true;
    choice.cuda_device = device.index;
    return choice;
  }
  switch (requested) {
    case CollectiveTransport::kNccl:
      return Bad("--collective-transport", "nccl",
                 absl::StrCat("needs a CUDA device (--device cuda:N); --device ", device.ToString(),
                              " uses auto, tcp or shm"));
    case CollectiveTransport::kTcp:
      choice.cpu = parallel::CpuTransport::kTcp;
      break;
    case CollectiveTransport::kSharedMemory:
      choice.cpu = parallel::CpuTransport::kSharedMemory;
      break;
    case CollectiveTransport::kAuto:
      choice.cpu = parallel::CpuTransport::kAuto;
      break;
  }
  return choice;
}

std::string WorkerUsage() {
  return absl::StrCat(
      "usage: strata-worker --coordinator HOST:PORT --model PATH [flags]\n"
      "  --coordinator HOST:PORT  coordinator's WorkerLink address (required)\n"
      "  --model PATH             GGUF file or Hugging Face checkpoint directory (required)\n"
      "  --model-name NAME        served model name (default: the file stem)\n"
      "  --replica R              replica index (default 0)\n"
      "  --device cpu|cuda:N      where the model runs (default cpu)\n"
      "  --threads N              compute threads (default 1)\n"
      "  --weight-dtype auto|fp8  auto (default): weights as the file stores them (quantised blocks\n"
      "                           stay quantised; cuda converts other types to bf16); fp8: layer\n"
      "                           matrices as FP8 E4M3 with per-row scales and FP8 GEMMs (cuda, sm_89+)\n"
      "  --cuda-graphs on|off     replay decode steps as CUDA graphs (default on; cuda only)\n"
      "  --kv-cache-mb M          KV cache budget in MiB (default on cpu ", kDefaultKvCacheMb,
      "; on cuda: sized from\n"
      "                           the device's free memory, see --gpu-memory-utilization)\n"
      "  --kv-blocks N            KV pool size in blocks incl. the null block (instead of --kv-cache-mb)\n"
      "  --gpu-memory-utilization F  share of the GPU's total memory this worker may use for\n"
      "                           weights, activations and KV when neither --kv-cache-mb nor\n"
      "                           --kv-blocks is given (cuda only; (0, 1], default 0.9)\n"
      "  --block-size N           tokens per KV block (default 16)\n"
      "  --kv-dtype f16|f32|bf16|fp8|fp8-unscaled|int8  KV cache element type (default f16;\n"
      "                           bf16 is 2 bytes like f16; fp8 = E4M3 and int8 with a scale\n"
      "                           per token and KV head: about half the bytes; fp8-unscaled =\n"
      "                           E4M3 with no scale, exactly half, saturates at +-448)\n"
      "  --max-context N          longest sequence accepted (default min(model context, 4096))\n"
      "  --tp-rank R --tp-size N  tensor-parallel rank and size (default 0 / 1)\n"
      "  --pp-stage S --pp-size N pipeline stage and number of stages (default 0 / 1)\n"
      "  --pp-layer-split A,B,..  layers per pipeline stage (default: even, earlier stages take the rest)\n"
      "  --peer-host HOST         address the replica's other ranks reach this worker at (TP/PP only;\n"
      "                           default: this machine's host name)\n"
      "  --collective-transport auto|tcp|shm|nccl  how a TP/PP group's ranks talk (default auto:\n"
      "                           NCCL with --device cuda:N; on cpu shared memory when every rank of\n"
      "                           the group is on this host and in this network namespace, Gloo over\n"
      "                           TCP otherwise; tcp/shm are cpu only, nccl is cuda only)\n"
      "  --collective-timeout-s S how long a rendezvous or one collective may wait for peers (default 60)\n"
      "  --connect-timeout-s S    how long to keep dialing an unreachable coordinator (default 120)\n"
      "  --join-token-file FILE   the coordinator's join token (FILE's first line, >= 16 bytes), sent on\n"
      "                           every call to its worker port (required when the coordinator has one)\n"
      "  --tls-ca PEM             TLS to the coordinator's worker port: the CA that signed its certificate\n"
      "  --tls-cert PEM --tls-key PEM  this worker's certificate for mutual TLS (the coordinator's\n"
      "                           --worker-tls-ca must have signed it)\n"
      "  --tls-server-name NAME   the name the coordinator's certificate carries, when --coordinator\n"
      "                           dials it by another (an IP, a different Service name)\n"
      "  --tls-reload-s S         re-read the certificate files every S seconds (default 60)\n"
      "  --max-step-s S           a step still running after S seconds ends the process with status 3\n"
      "                           (wedged in a hung device call; the supervisor restarts it; default 0:\n"
      "                           no bound). Keep it above the longest step and --collective-timeout-s\n"
      "Exit status: 0 after Shutdown or SIGTERM/SIGINT, 1 on a runtime failure, 2 on bad flags,\n"
      "3 after a step overran --max-step-s.\n");
}

absl::StatusOr<WorkerFlags> ParseWorkerFlags(const std::vector<std::string>& args) {
  static const char* const kValued[] = {
      "--coordinator", "--replica",   "--model",      "--model-name", "--device",
      "--threads",     "--kv-cache-mb", "--kv-blocks", "--block-size", "--kv-dtype",
      "--max-context", "--tp-rank",   "--tp-size",    "--pp-stage",   "--pp-size",
      "--connect-timeout-s", "--pp-layer-split", "--peer-host", "--collective-timeout-s",
      "--collective-transport", "--gpu-memory-utilization", "--weight-dtype", "--cuda-graphs", "--max-step-s",
      "--join-token-file", "--tls-ca", "--tls-cert", "--tls-key", "--tls-server-name", "--tls-reload-s"};
  std::map<std::string, std::string> values;
  WorkerFlags f;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::string value;
    bool has_value = false;
    if (name == "--help" || name == "-h") {
      f.help = true;
      continue;
    }
    if (!absl::StartsWith(name, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", name, "' (flags start with --)"));
    }
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    bool known = false;
    for (const char* v : kValued) known = known || name == v;
    if (!known) return absl::InvalidArgumentError(absl::StrCat("unknown flag ", name));
    if (!has_value) {
      if (i + 1 >= args.size()) return absl::InvalidArgumentError(absl::StrCat(name, " needs a value"));
      value = args[++i];
    }
    if (values.count(name)) return absl::InvalidArgumentError(absl::StrCat(name, " is given twice"));
    values[name] = value;
  }
  if (f.help) return f;

  auto get = [&](const char* name) -> const std::string* {
    auto it = values.find(name);
    return it == values.end() ? nullptr : &it->second;
  };
  // Required flags.
  if (const std::string* v = get("--coordinator"); v != nullptr && !v->empty()) {
    if (absl::Status s = CheckCoordinator(*v); !s.ok()) return s;
    f.coordinator = *v;
  } else {
    return absl::InvalidArgumentError("--coordinator HOST:PORT is required");
  }
  if (const std::string* v = get("--model"); v != nullptr && !v->empty()) {
    std::error_code ec;
    if (!std::filesystem::exists(*v, ec)) return Bad("--model", *v, "no such file or directory");
    f.model = *v;
  } else {
    return absl::InvalidArgumentError("--model PATH is required");
  }
  if (const std::string* v = get("--join-token-file")) {
    absl::StatusOr<std::string> token = ReadJoinTokenFile(*v);
    if (!token.ok()) return absl::InvalidArgumentError(absl::StrCat("--join-token-file: ", token.status().message()));
    f.join_token = *std::move(token);
  }
  {
    net::ChannelSecurity& sec = f.coordinator_security;
    if (const std::string* v = get("--tls-ca")) sec.files.ca = *v;
    if (const std::string* v = get("--tls-cert")) sec.files.cert = *v;
    if (const std::string* v = get("--tls-key")) sec.files.key = *v;
    if (const std::string* v = get("--tls-server-name")) sec.server_name = *v;
    if (sec.files.cert.empty() != sec.files.key.empty()) {
      return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
    }
    if (sec.tls() && sec.files.ca.empty()) {
      return absl::InvalidArgumentError("--tls-ca is needed to verify the coordinator's certificate");
    }
    if (!sec.tls() && !sec.server_name.empty()) {
      return absl::InvalidArgumentError("--tls-server-name needs --tls-ca");
    }
    if (const std::string* v = get("--tls-reload-s")) {
      int64_t seconds = 0;
      if (!absl::SimpleAtoi(*v, &seconds) || seconds < 1 || seconds > 86400) {
        return Bad("--tls-reload-s", *v, "not a whole number of seconds in [1, 86400]");
      }
      sec.reload_interval = absl::Seconds(seconds);
    }
  }
  if (const std::string* v = get("--model-name")) {
    if (v->empty()) return absl::InvalidArgumentError("--model-name must not be empty");
    f.model_name = *v;
  }
  constexpr int64_t kU32 = std::numeric_limits<uint32_t>::max();
  constexpr int64_t kI32 = std::numeric_limits<int32_t>::max();
  absl::Status s;
  auto parse = [&](const char* name, int64_t lo, int64_t hi, auto* out) {
    if (s.ok()) {
      if (const std::string* v = get(name)) s = ParseInt(name, *v, lo, hi, out);
    }
  };
  parse("--replica", 0, kU32, &f.replica);
  parse("--threads", 1, 1024, &f.threads);
  parse("--kv-cache-mb", 1, int64_t{1} << 40, &f.kv_cache_mb);
  parse("--kv-blocks", 2, kI32, &f.kv_blocks);
  parse("--block-size", 1, 1024, &f.block_size);
  parse("--max-context", 0, kI32, &f.max_context);
  parse("--tp-rank", 0, kU32, &f.tp_rank);
  parse("--tp-size", 1, kU32, &f.tp_size);
  parse("--pp-stage", 0, kU32, &f.pp_stage);
  parse("--pp-size", 1, kU32, &f.pp_size);
  if (!s.ok()) return s;
  if (get("--kv-cache-mb") && get("--kv-blocks")) {
    return absl::InvalidArgumentError("--kv-cache-mb and --kv-blocks are mutually exclusive");
  }
  if (const std::string* v = get("--kv-dtype")) {
    if (*v == "f16") {
      f.kv_dtype = KvDtype::kF16;
    } else if (*v == "f32") {
      f.kv_dtype = KvDtype::kF32;
    } else if (*v == "fp8") {
      f.kv_dtype = KvDtype::kFp8E4M3;
    } else if (*v == "int8") {
      f.kv_dtype = KvDtype::kInt8;
    } else if (*v == "bf16") {
      f.kv_dtype = KvDtype::kBF16;
    } else if (*v == "fp8-unscaled") {
      f.kv_dtype = KvDtype::kFp8E4M3Unscaled;
    } else {
      return Bad("--kv-dtype", *v, "expected f16, f32, bf16, fp8, fp8-unscaled or int8");
    }
  }
  if (const std::string* v = get("--max-step-s")) {
    if (!absl::SimpleAtod(*v, &f.max_step_s) || !(f.max_step_s >= 0) || f.max_step_s > 1e7) {
      return Bad("--max-step-s", *v, "expected seconds >= 0 (0: no bound)");
    }
  }
  if (const std::string* v = get("--connect-timeout-s")) {
    if (!absl::SimpleAtod(*v, &f.connect_timeout_s) || !(f.connect_timeout_s > 0) ||
        f.connect_timeout_s > 1e7) {
      return Bad("--connect-timeout-s", *v, "expected a positive number of seconds");
    }
  }
  DeviceSpec device;  // cpu unless --device says otherwise
  if (const std::string* v = get("--device")) {
    absl::StatusOr<DeviceSpec> spec = ParseDeviceSpec(*v);
    if (!spec.ok()) return Bad("--device", *v, "expected cpu, cuda or cuda:N");
    device = *spec;
    f.device = spec->ToString();
  }
  if (const std::string* v = get("--weight-dtype")) {
    if (*v == "fp8") {
      f.fp8_weights = true;
    } else if (*v != "auto") {
      return Bad("--weight-dtype", *v, "expected auto or fp8");
    }
    if (f.fp8_weights && device.kind != DeviceKind::kCuda) {
      return Bad("--weight-dtype", *v, "FP8 weights need --device cuda:N (sm_89 or newer)");
    }
  }
  if (const std::string* v = get("--cuda-graphs")) {
    if (*v == "on") {
      f.cuda_graphs = true;
    } else if (*v == "off") {
      f.cuda_graphs = false;
    } else {
      return Bad("--cuda-graphs", *v, "expected on or off");
    }
  }
  // No KV size given: a fixed budget on the CPU; on CUDA the step executor
  // sizes the pool from the device's memory (kv_cache_mb stays 0).
  if (!get("--kv-cache-mb") && !get("--kv-blocks") && device.kind != DeviceKind::kCuda) {
    f.kv_cache_mb = kDefaultKvCacheMb;
  }
  if (const std::string* v = get("--gpu-memory-utilization")) {
    if (!absl::SimpleAtod(*v, &f.gpu_memory_utilization) || !(f.gpu_memory_utilization > 0) ||
        f.gpu_memory_utilization > 1) {
      return Bad("--gpu-memory-utilization", *v, "expected a fraction in (0, 1], e.g. 0.9");
    }
  }
  if (const std::string* v = get("--pp-layer-split")) {
    absl::StatusOr<std::vector<int64_t>> split = parallel::ParseLayerSplit(*v);
    if (!split.ok()) return Bad("--pp-layer-split", *v, std::string(split.status().message()));
    if (static_cast<int64_t>(split->size()) != f.pp_size) {
      return Bad("--pp-layer-split", *v, absl::StrCat("needs one count per stage (--pp-size ", f.pp_size, ")"));
    }
    f.layer_split = *std::move(split);
  }
  if (const std::string* v = get("--peer-host")) {
    if (v->empty()) return Bad("--peer-host", *v, "must not be empty");
    f.peer_host = *v;
  }
  if (const std::string* v = get("--collective-timeout-s")) {
    if (!absl::SimpleAtod(*v, &f.collective_timeout_s) || !(f.collective_timeout_s > 0) ||
        f.collective_timeout_s > 1e6) {
      return Bad("--collective-timeout-s", *v, "expected a positive number of seconds");
    }
  }
  if (const std::string* v = get("--collective-transport")) {
    absl::StatusOr<CollectiveTransport> t = ParseCollectiveTransport(*v);
    if (!t.ok()) return Bad("--collective-transport", *v, "expected auto, tcp, shm or nccl");
    f.collective_transport = *t;
  }
  if (absl::StatusOr<CollectiveChoice> c = ChooseCollective(f.collective_transport, device); !c.ok()) {
    return c.status();
  }
  if (f.tp_rank >= f.tp_size) {
    return Bad("--tp-rank", absl::StrCat(f.tp_rank), absl::StrCat("must be < --tp-size ", f.tp_size));
  }
  if (f.pp_stage >= f.pp_size) {
    return Bad("--pp-stage", absl::StrCat(f.pp_stage), absl::StrCat("must be < --pp-size ", f.pp_size));
  }
  return f;
}

StepExecutorConfig ExecutorConfigFromFlags(const WorkerFlags& f) {
  StepExecutorConfig c;
  c.model_path = f.model;
  c.model_name = f.model_name;
  c.threads = f.threads;
  c.device = *ParseDeviceSpec(f.device);  // validated by ParseWorkerFlags
  c.backend.fp8_weights = f.fp8_weights;
  c.backend.cuda_graphs = f.cuda_graphs;
  c.max_context = f.max_context;
  c.block_size = f.block_size;
  c.kv_dtype = f.kv_dtype;
  c.kv_blocks = f.kv_blocks;
  c.kv_cache_bytes = f.kv_blocks > 0 ? 0 : f.kv_cache_mb << 20;
  c.gpu_memory_utilization = f.gpu_memory_utilization;
  c.topology.tp_rank = static_cast<int>(f.tp_rank);
  c.topology.tp_size = static_cast<int>(f.tp_size);
  c.topology.pp_stage = static_cast<int>(f.pp_stage);
  c.topology.pp_size = static_cast<int>(f.pp_size);
  c.layer_split = f.layer_split;
  c.collective_timeout = absl::Seconds(f.collective_timeout_s);
  return c;
}

CoordinatorLinkConfig LinkConfigFromFlags(const WorkerFlags& f) {
  CoordinatorLinkConfig c;
  c.coordinator_address = f.coordinator;
  c.replica = f.replica;
  c.pp_stage = f.pp_stage;
  c.pp_size = f.pp_size;
  c.tp_rank = f.tp_rank;
  c.tp_size = f.tp_size;
  c.device = f.device;
  c.peer_address = f.peer_host;
  c.connect_timeout = absl::Seconds(f.connect_timeout_s);
  c.join_token = f.join_token;
  c.log_prefix = absl::StrCat("[worker r", f.replica,
                              f.tp_size * f.pp_size > 1 ? absl::StrCat(" tp", f.tp_rank, " pp", f.pp_stage) : "", "]");
  return c;
}

std::string FlagForKvPlanError(absl::string_view message, const WorkerFlags& f) {
  if (absl::StartsWith(message, "gpu_memory_utilization")) return "--gpu-memory-utilization";
  if (absl::StartsWith(message, "max_context")) return "--max-context";
  if (absl::StartsWith(message, "block_size")) return "--block-size";
  if (absl::StartsWith(message, "kv_blocks") && f.kv_blocks > 0) return "--kv-blocks";
  if (absl::StartsWith(message, "kv_cache_bytes")) return "--kv-cache-mb";
  return f.kv_blocks > 0 ? "--kv-blocks" : "--kv-cache-mb";
}

}  // namespace strata
