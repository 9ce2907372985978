// strata-worker: one worker process of a replica. Loads the model, sizes the
// KV pool, dials the coordinator and executes its step plans until Shutdown,
// SIGTERM/SIGINT, or an unrecoverable error. Flags: worker/worker_flags.h.
//
// SIGTERM/SIGINT make the worker leave its replica cleanly: it tells the
// coordinator (WorkerLink Leave), which takes the replica out of service at
// once, and exits after the coordinator's answer, or after 5 s without one
// (plus the step it may be executing).
//
// Exit status: 0 after Shutdown or SIGTERM/SIGINT, 1 on a runtime failure
// (model load, coordinator unreachable or refusing the registration), 2 on bad
// flags, 3 when a step ran past --max-step-s (the process is wedged in the
// device: it ends at once, without unwinding, so its supervisor restarts it).
//
// Threads: main (load, then CoordinatorLink::Run as the step thread), a signal
// watcher (common/termination_signals.h; it runs CoordinatorLink::Leave), and
// the link's heartbeat thread, and with --max-step-s a step watchdog
// (worker/step_watchdog.h).
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/net/transport_security.h"
#include "common/termination_signals.h"
#include "parallel/coordinator_store_client.h"
#include "parallel/cpu_communicator.h"
#ifdef STRATA_WITH_NCCL
#include "parallel/nccl_communicator.h"
#endif
#include "worker/backend/backend_factory.h"
#include "worker/coordinator_link.h"
#include "worker/step_executor.h"
#include "worker/step_watchdog.h"
#include "worker/worker_flags.h"

namespace strata {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitBadFlags = 2;
constexpr int kExitWedged = 3;

std::string g_prefix = "[worker]";

void Log(absl::string_view message) {
  const std::string line = absl::StrCat(g_prefix, " ", message, "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<WorkerFlags> flags = ParseWorkerFlags(args);
  if (!flags.ok()) {
    std::fprintf(stderr, "strata-worker: %s\n(see strata-worker --help)\n",
                 std::string(flags.status().message()).c_str());
    return kExitBadFlags;
  }
  if (flags->help) {
    std::fputs(WorkerUsage().c_str(), stdout);
    return kExitOk;
  }
  g_prefix = absl::StrCat("[worker r", flags->replica, "]");
  TerminationSignals signals;
  signals.SetHandler([](const std::string& name, int) { Log(absl::StrCat(name, " received; leaving the replica")); });

  StepExecutorConfig exec_config = ExecutorConfigFromFlags(*flags);
  // Before the model is loaded: a worker asked for a GPU it does not have
  // says so at once.
  if (absl::Status device = CheckDevice(exec_config.device); !device.ok()) {
    // The message starts with the device ("cuda:0: no CUDA device is visible ...").
    std::fprintf(stderr, "strata-worker: --device %s\n", std::string(device.message()).c_str());
    return kExitBadFlags;
  }
  g_prefix = absl::StrCat("[worker r", flags->replica,
                          exec_config.topology.world_size() > 1
                              ? absl::StrCat(" tp", flags->tp_rank, " pp", flags->pp_stage)
                              : "",
                          "]");
  // TLS to the coordinator's worker port: the files are checked now (a bad
  // certificate is a flag error, before the model is loaded), then re-read
  // by gRPC's watcher every --tls-reload-s.
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> coordinator_credentials =
      net::MakeChannelCredentials(flags->coordinator_security, "--tls");
  if (!coordinator_credentials.ok()) {
    std::fprintf(stderr, "strata-worker: %s\n", std::string(coordinator_credentials.status().message()).c_str());
    return kExitBadFlags;
  }
  Log(absl::StrCat("loading ", exec_config.model_path));
  absl::StatusOr<std::unique_ptr<LoadedModel>> model = LoadModel(exec_config.model_path);
  if (!model.ok()) {
    Log(absl::StrCat("cannot load model ", exec_config.model_path, ": ", model.status().message()));
    return kExitFailure;
  }
  absl::StatusOr<ModelShard> shard =
      PlanModelShard((*model)->config, (*model)->weights, exec_config.topology, exec_config.layer_split);
  if (!shard.ok()) {
    const char* flag = absl::StrContains(shard.status().message(), "layer split") ? "--pp-layer-split"
                       : absl::StrContains(shard.status().message(), "pipeline") ? "--pp-size"
                                                                                  : "--tp-size";
    std::fprintf(stderr, "strata-worker: %s: %s\n", flag, std::string(shard.status().message()).c_str());
    return kExitBadFlags;
  }
  // TP/PP: the replica's ranks meet in the coordinator's rendezvous store and
  // talk over NCCL on the worker's GPU (--device cuda:N), or over shared
  // memory (same host) or Gloo over TCP on the CPU (--collective-transport).
  std::shared_ptr<parallel::KeyValueStore> store;
  // The store client learns its worker group's token from each Registered.
  std::shared_ptr<parallel::CoordinatorStoreClient> store_client;
  if (exec_config.topology.world_size() > 1) {
    absl::StatusOr<std::unique_ptr<parallel::CoordinatorStoreClient>> client =
        parallel::CoordinatorStoreClient::Create(flags->coordinator, flags->join_token, *coordinator_credentials,
                                                 flags->coordinator_security.server_name);
    if (!client.ok()) {
      Log(absl::StrCat("cannot reach the coordinator's rendezvous store: ", client.status().message()));
      return kExitFailure;
    }
    store_client = *std::move(client);
    store = store_client;
    // Checked by ParseWorkerFlags already.
    const CollectiveChoice choice = *ChooseCollective(flags->collective_transport, exec_config.device);
    const std::string peer_host = flags->peer_host;
    const absl::Duration timeout = absl::Seconds(flags->collective_timeout_s);
    if (choice.nccl) {
#ifdef STRATA_WITH_NCCL
      exec_config.make_communicator = [store, timeout, choice](const CommunicatorSpec& spec)
          -> absl::StatusOr<std::unique_ptr<parallel::Communicator>> {
        parallel::NcclCommunicatorConfig nc;
        nc.store = store.get();
        nc.prefix = absl::StrCat(spec.key_prefix, "/nccl");
        nc.rank = spec.rank;
        nc.size = spec.size;
        nc.device = choice.cuda_device;
        nc.timeout = timeout;
        nc.sync_timeout = timeout;
        nc.label = spec.label;
        absl::StatusOr<std::unique_ptr<parallel::NcclCommunicator>> comm = parallel::CreateNcclCommunicator(nc);
        if (!comm.ok()) return comm.status();
        Log(absl::StrCat("connected: ", (*comm)->Describe()));
        return std::unique_ptr<parallel::Communicator>(*std::move(comm));
      };
#else
      std::fprintf(stderr, "strata-worker: --collective-transport %s: this build has no NCCL (built without CUDA)\n",
                   CollectiveTransportName(flags->collective_transport));
      return kExitBadFlags;
#endif
    } else {
      const parallel::CpuTransport transport = choice.cpu;
      exec_config.make_communicator = [store, peer_host, timeout, transport](const CommunicatorSpec& spec)
          -> absl::StatusOr<std::unique_ptr<parallel::Communicator>> {
        parallel::CpuCommunicatorConfig cc;
        cc.store = store.get();
        cc.prefix = spec.key_prefix;
        cc.rank = spec.rank;
        cc.size = spec.size;
        cc.bind_address = peer_host;
        cc.timeout = timeout;
        cc.label = spec.label;
        cc.transport = transport;
        absl::StatusOr<std::unique_ptr<parallel::Communicator>> comm = parallel::CreateCpuCommunicator(cc);
        if (comm.ok()) Log(absl::StrCat("connected: ", (*comm)->Describe()));
        return comm;
      };
    }
  }
  // What can be checked before loading: the budget (or, for a pool sized from
  // the GPU's memory, only the block shape; the rest once the weights are up).
  const bool kv_from_device = SizesKvFromDevice(exec_config);
  absl::StatusOr<KvPlan> plan = kv_from_device ? PlanKvShape(exec_config, (*model)->config, *shard)
                                               : PlanKv(exec_config, (*model)->config, *shard);
  if (!plan.ok()) {
    const std::string flag = FlagForKvPlanError(plan.status().message(), *flags);
    std::string value;
    if (flag == "--max-context") value = absl::StrCat(" ", flags->max_context);
    if (flag == "--block-size") value = absl::StrCat(" ", flags->block_size);
    if (flag == "--kv-blocks") value = absl::StrCat(" ", flags->kv_blocks);
    if (flag == "--kv-cache-mb") value = absl::StrCat(" ", flags->kv_cache_mb);
    std::fprintf(stderr, "strata-worker: %s%s: %s\n", flag.c_str(), value.c_str(),
                 std::string(plan.status().message()).c_str());
    return kExitBadFlags;
  }
  absl::StatusOr<std::unique_ptr<StepExecutor>> executor =
      StepExecutor::Create(exec_config, *std::move(model));
  if (!executor.ok()) {
    // The GPU cannot hold weights, activations and one max-context sequence
    // at this utilization: a flag problem the operator can fix.
    if (absl::StartsWith(executor.status().message(), "gpu_memory_utilization")) {
      std::fprintf(stderr, "strata-worker: --gpu-memory-utilization: %s\n",
                   std::string(executor.status().message()).c_str());
      return kExitBadFlags;
    }
    Log(absl::StrCat("cannot set up the step executor: ", executor.status().message()));
    return kExitFailure;
  }
  const ModelIdentityInfo& id = (*executor)->model_identity();
  if (exec_config.topology.world_size() > 1) {
    Log(absl::StrCat(exec_config.topology.ToString(), ": layers [", shard->layers.begin, ", ", shard->layers.end,
                     "), ", shard->tp.ToString()));
  }
  Log(absl::StrCat("weights this rank reads: ",
                   absl::StrFormat("%.1f", WeightBytes((*executor)->weights()) / 1048576.0), " MiB"));
  Log(absl::StrCat("model ", id.name, " (", id.fingerprint, "), ", id.num_layers, " layers, vocab ",
                   id.vocab_size, ", context ", id.context_length, "; KV pool ",
                   (*executor)->kv_capacity_blocks(), " blocks of ", (*executor)->block_size(),
                   " tokens; ", flags->threads, " threads"));
  if (!(*executor)->kv_plan().device_breakdown.empty()) {
    Log(absl::StrCat("KV pool sized from the GPU (--gpu-memory-utilization ", flags->gpu_memory_utilization,
                     "): ", (*executor)->kv_plan().device_breakdown));
  }
  if (signals.count() > 0) return kExitOk;

  CoordinatorLinkConfig link_config = LinkConfigFromFlags(*flags);
  link_config.credentials = *coordinator_credentials;
  link_config.tls_server_name = flags->coordinator_security.server_name;
  if (store_client != nullptr) {
    link_config.store_token_changed = [store_client](const std::string& token) { store_client->set_store_token(token); };
  }
  CoordinatorLink link(std::move(link_config), executor->get());
  // Blocks the watcher until the coordinator answered (bounded by the link's
  // leave_timeout); a repeated signal is a no-op. A signal that came since
  // the check above runs this at once.
  signals.SetHandler([&link](const std::string& name, int) {
    Log(absl::StrCat(name, " received; leaving the replica"));
    link.Leave(absl::StrCat(name, " received"));
  });
  std::unique_ptr<StepWatchdog> watchdog;
  if (flags->max_step_s > 0) {
    StepWatchdogParams w;
    w.running_for = [&link] { return link.StepRunningFor(); };
    w.bound = absl::Seconds(flags->max_step_s);
    w.on_overrun = [](absl::Duration ran) {
      Log(absl::StrCat("a step has been running for ", absl::FormatDuration(ran),
                       ", past --max-step-s: wedged in the device; exiting with status 3"));
      // The step thread is stuck inside the device: no unwinding (destructors
      // would wait on it), just end the process.
      std::fflush(stderr);
      std::_Exit(kExitWedged);
    };
    watchdog = std::make_unique<StepWatchdog>(std::move(w));
  }
  const absl::Status status = link.Run();
  watchdog.reset();
  signals.SetHandler(nullptr);
  if (!status.ok()) {
    Log(absl::StrCat("exiting: ", status.ToString()));
    return kExitFailure;
  }
  Log("exiting cleanly");
  return kExitOk;
}

}  // namespace
}  // namespace strata

int main(int argc, char** argv) { return strata::Main(argc, argv); }
