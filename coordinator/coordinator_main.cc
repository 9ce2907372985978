// strata-coordinator: the cluster's front door. Serves clients (KServe v2,
// strata.v1, grpc.health.v1, reflection) on --port, workers (WorkerLink) on
// --worker-port and Prometheus metrics on --metrics-port. grpc.health.v1 is
// ours (frontend/health_service.h), on the client port and on --health-port.
//
// SIGTERM/SIGINT drain it (coordinator/drain.h): health NOT_SERVING and new
// requests refused at once, in-flight ones get --shutdown-grace-s to finish,
// the rest are cancelled with UNAVAILABLE; then the workers are told to shut
// down, the servers stop and the process exits 0. A second signal cuts the
// grace period short.
//
// Threads: main (setup, then waits for the first signal and runs the drain),
// a signal watcher (common/termination_signals.h), and
// gRPC's and the replicas' threads.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/net/transport_security.h"
#include "common/termination_signals.h"
#include "coordinator/cluster.h"
#include "coordinator/coordinator_flags.h"
#include "coordinator/drain.h"
#include "coordinator/frontend/api_key_auth.h"
#include "coordinator/frontend/health_service.h"
#include "coordinator/frontend/kserve_service.h"
#include "coordinator/frontend/request_parse_errors.h"
#include "coordinator/frontend/strata_service.h"
#include "coordinator/metrics.h"
#include "coordinator/rendezvous_service.h"
#include "coordinator/worker_admission.h"
#include "coordinator/worker_link_service.h"
#include "coordinator/worker_server_options.h"
#include "common/join_token.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"

namespace {

void Log(const std::string& line) {
  const std::string out = absl::StrCat("[coordinator] ", line, "\n");
  std::fwrite(out.data(), 1, out.size(), stderr);
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "strata-coordinator: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace strata::coordinator;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::fputs(CoordinatorUsage().c_str(), stdout);
    return 0;
  }
  auto options = ParseCoordinatorFlags(args);
  if (!options.ok()) {
    std::fprintf(stderr, "strata-coordinator: %s\n%s", std::string(options.status().message()).c_str(),
                 CoordinatorUsage().c_str());
    return 2;
  }
  strata::TerminationSignals signals;
  using strata::coordinator::frontend::ApiKeys;
  using strata::coordinator::frontend::HealthService;

  // API keys (coordinator/frontend/api_key_auth.h): every client RPC, and with
  // --auth-health / --metrics-auth also health on the client port and /metrics.
  std::unique_ptr<ApiKeys> api_keys;
  if (!options->api_keys_file.empty()) {
    ApiKeys::Options key_options;
    key_options.log = Log;
    auto loaded = ApiKeys::Load(options->api_keys_file, key_options);
    if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
    api_keys = std::move(*loaded);
    Log(absl::StrCat("API keys required on the client port: ", api_keys->names().size(), " key(s) from ",
                     options->api_keys_file, "; health on the client port ",
                     options->auth_health ? "needs a key too" : "stays open", ", /metrics ",
                     options->metrics_auth ? "needs HTTP Basic auth with a key as the password" : "stays open"));
  }

  Metrics::BasicAuthCheck metrics_auth;
  if (options->metrics_auth) {
    ApiKeys* keys = api_keys.get();
    metrics_auth = [keys](const std::string& /*user*/, const std::string& password) {
      return keys->Accepts(password);
    };
  }
  const std::string metrics_addr =
      options->metrics_port > 0 || !options->port_file.empty()
          ? absl::StrCat(options->host, ":", options->metrics_port)
          : "";
  auto metrics = Metrics::Create(metrics_addr, std::move(metrics_auth));
  if (!metrics.ok()) return Fail(std::string(metrics.status().message()));
  // The rendezvous store TP/PP ranks meet through (served on the worker port);
  // a replica's old worker-group keys are dropped when the group ends.
  // Who may use the worker port: the join token's holders (--join-token-file).
  WorkerAdmission admission = WorkerAdmission::Open();
  if (!options->join_token_file.empty()) {
    auto token = strata::ReadJoinTokenFile(options->join_token_file);
    if (!token.ok()) return Fail(absl::StrCat("--join-token-file: ", token.status().message()));
    admission = WorkerAdmission::WithJoinToken(*std::move(token));
  } else {
    Log("WARNING: the worker port is unauthenticated (no --join-token-file): unless mutual TLS "
        "(--worker-tls-*) admits workers by certificate, anything that reaches it can register as a worker, "
        "receive prompts and answer them");
  }
  // Each worker group's keys are served only to its ranks (the group's store
  // token) and die with the group.
  RendezvousService rendezvous(&admission);
  options->cluster.rendezvous_opened = [&rendezvous](const std::string& prefix, const std::string& token,
                                                     int32_t ranks) { rendezvous.OpenGroup(prefix, token, ranks); };
  options->cluster.rendezvous_retired = [&rendezvous](const std::string& prefix) {
    rendezvous.CloseGroup(prefix);
  };
  // Health is ours (keys when --auth-health on), not gRPC's built-in service.
  // One per server: the client port's, and --health-port's, always open.
  // Made before the cluster, whose readiness callback switches them.
  grpc::EnableDefaultHealthCheckService(false);
  HealthService::Options health_options;
  health_options.services = {"inference.GRPCInferenceService", "strata.v1.Strata"};
  HealthService probe_health(health_options);
  health_options.api_keys = options->auth_health ? api_keys.get() : nullptr;
  HealthService client_health(health_options);
  auto cluster = Cluster::Create(options->cluster, metrics->get());
  if (!cluster.ok()) return Fail(std::string(cluster.status().message()));

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  // Transport security of both ports (files checked here, re-read every
  // --tls-reload-s by gRPC's certificate watcher).
  auto client_credentials = strata::net::MakeServerCredentials(options->client_security, "--tls");
  if (!client_credentials.ok()) return Fail(std::string(client_credentials.status().message()));
  auto worker_credentials = strata::net::MakeServerCredentials(options->worker_security, "--worker-tls");
  if (!worker_credentials.ok()) return Fail(std::string(worker_credentials.status().message()));

  // Client limits and API keys (coordinator/frontend/request_limits.h, api_key_auth.h).
  KServeServiceOptions kserve_options;
  kserve_options.limits.max_request_bytes = options->max_request_bytes;
  kserve_options.api_keys = api_keys.get();
  StrataServiceOptions native_options;
  native_options.limits.max_request_bytes = options->max_request_bytes;
  native_options.api_keys = api_keys.get();
  KServeService kserve(cluster->get(), kserve_options);
  StrataService native(cluster->get(), native_options);
  int client_port = 0;
  grpc::ServerBuilder client_builder;
  client_builder.AddListeningPort(absl::StrCat(options->host, ":", options->port), *client_credentials,
                                  &client_port);
  client_builder.RegisterService(&kserve);
  client_builder.RegisterService(&native);
  client_builder.RegisterService(&client_health);
  client_builder.SetMaxReceiveMessageSize(options->max_request_bytes);
  {
    // Requests that do not parse (invalid UTF-8 in a string field) get
    // INVALID_ARGUMENT saying so instead of gRPC's empty INTERNAL.
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
    interceptors.push_back(strata::coordinator::frontend::MakeRequestParseErrorInterceptorFactory());
    client_builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  std::unique_ptr<grpc::Server> client_server = client_builder.BuildAndStart();
  if (!client_server || client_port == 0) {
    return Fail(absl::StrCat("cannot listen for clients on ", options->host, ":", options->port));
  }

  WorkerLinkService link(cluster->get(), options->worker_timeouts, &admission);
  int worker_port = 0;
  grpc::ServerBuilder worker_builder;
  worker_builder.AddListeningPort(absl::StrCat(options->host, ":", options->worker_port), *worker_credentials,
                                  &worker_port);
  worker_builder.RegisterService(&link);
  worker_builder.RegisterService(&rendezvous);
  // Reflection stays on the client port: the worker port describes nothing.
  worker_builder.SetOption(WithoutReflection());
  worker_builder.SetMaxReceiveMessageSize(kWorkerPortMaxMessageBytes);
  std::unique_ptr<grpc::Server> worker_server = worker_builder.BuildAndStart();
  if (!worker_server || worker_port == 0) {
    return Fail(absl::StrCat("cannot listen for workers on ", options->host, ":", options->worker_port));
  }

  // --health-port: grpc.health.v1 alone, in plaintext and without keys
  // (whatever --auth-health says), for probes that cannot speak TLS or send
  // API keys (Kubernetes' grpc probes). It tells only SERVING or NOT_SERVING.
  std::unique_ptr<grpc::Server> health_server;
  if (options->health_port > 0) {
    grpc::ServerBuilder health_builder;
    int health_port = 0;
    health_builder.AddListeningPort(absl::StrCat(options->host, ":", options->health_port),
                                    grpc::InsecureServerCredentials(), &health_port);
    health_builder.SetOption(WithoutReflection());
    health_builder.RegisterService(&probe_health);
    health_server = health_builder.BuildAndStart();
    if (!health_server || health_port == 0) {
      return Fail(absl::StrCat("cannot listen for health checks on ", options->host, ":", options->health_port));
    }
  }

  // Health: SERVING only while a replica is ready ("" = the whole server).
  auto set_health = [&client_health, &probe_health](bool ready) {
    client_health.SetServing(ready);
    probe_health.SetServing(ready);
  };
  set_health(false);
  (*cluster)->set_on_readiness_change(set_health);

  const int metrics_port = (*metrics)->port();
  std::fprintf(stderr,
               "[coordinator] serving model %s: clients on %s:%d (%s; KServe v2, strata.v1, health, reflection), "
               "workers on %s:%d (%s), metrics on %s\n",
               options->cluster.models[0].path.c_str(), options->host.c_str(), client_port,
               strata::net::Describe(options->client_security).c_str(), options->host.c_str(), worker_port,
               strata::net::Describe(options->worker_security).c_str(),
               metrics_port > 0 ? absl::StrCat(":", metrics_port, "/metrics").c_str() : "off");
  if (!options->port_file.empty()) {
    std::ofstream out(options->port_file + ".tmp");
    out << client_port << " " << worker_port << " " << metrics_port << "\n";
    out.close();
    std::rename((options->port_file + ".tmp").c_str(), options->port_file.c_str());
  }

  const std::string signal_name = signals.WaitForFirst();
  Log(absl::StrCat(signal_name, " received: shutting down (health NOT_SERVING, new requests refused)"));
  set_health(false);
  DrainOptions drain_options;
  drain_options.grace = options->shutdown_grace;
  drain_options.log = Log;
  Drain drain(cluster->get(), drain_options);
  // A second SIGTERM/SIGINT cuts the drain short.
  signals.SetHandler([&drain](const std::string& name, int count) {
    if (count < 2) return;
    Log(absl::StrCat(name, " again: cancelling the remaining requests now"));
    drain.CutShort();
  });
  const DrainReport report = drain.Run();
  signals.SetHandler(nullptr);
  Log(absl::StrCat("drained in ", absl::StrFormat("%.1f s", absl::ToDoubleSeconds(report.elapsed)), ": ",
                   report.in_flight_at_start - report.cancelled, " of ", report.in_flight_at_start,
                   " in-flight requests ended on their own, ", report.cancelled,
                   " cancelled; KV blocks still in use: ", report.kv_blocks_used));
  (*cluster)->Shutdown();  // stops the engine loops; workers get Shutdown
  // Handlers still open (a client's idle ModelStreamInfer stream, workers
  // closing their streams) get 2 s, then are cancelled.
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(2);
  // Health Watch streams end now (NOT_SERVING, then UNAVAILABLE) instead of
  // holding the servers until the deadline.
  client_health.Shutdown();
  probe_health.Shutdown();
  client_server->Shutdown(deadline);
  worker_server->Shutdown(deadline);
  if (health_server) health_server->Shutdown(deadline);
  Log("exiting");
  return 0;
}
