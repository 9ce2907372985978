#include "coordinator/coordinator_flags.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tools/cli_flags.h"

namespace strata::coordinator {

namespace {

const std::set<std::string>& ValuedFlags() {
  static const std::set<std::string> flags = {
      "max-request-bytes", "api-keys-file", "auth-health", "metrics-auth",
      "config",          "model",           "model-name",        "replicas",       "host",
      "port",            "worker-port",     "metrics-port",      "max-queue",      "max-num-seqs",
      "max-batched-tokens", "block-size",   "max-context",       "max-prompt-tokens", "max-tokens",
      "long-prefill-chunk", "watermark-blocks", "worker-liveness-s", "port-file",
      "prefix-caching",  "tensor-parallel-size", "pipeline-parallel-size", "shutdown-grace-s",
      "step-timeout-s",
      "tls-cert",        "tls-key",         "tls-client-ca",     "worker-tls-cert", "worker-tls-key",
      "worker-tls-ca",   "tls-reload-s", "health-port",
      "join-token-file", "model-fingerprint"};
  return flags;
}

// Flags without a value.
const std::set<std::string>& BoolFlags() {
  static const std::set<std::string> flags = {"plaintext"};
  return flags;
}

// The config file's keys become "--key value" arguments placed before the
// command line's, so later (command-line) values win.
absl::StatusOr<std::vector<std::string>> ConfigArgs(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--config: cannot read '", path, "'"));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("--config: '", path, "' is not a JSON object"));
  }
  std::vector<std::string> args;
  for (auto& [key, value] : j.items()) {
    std::string flag = key;
    for (char& c : flag) c = c == '_' ? '-' : c;
    if (flag == "config" || ValuedFlags().count(flag) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--config ", path, ": unknown key '", key, "'"));
    }
    std::string v;
    if (value.is_string()) {
      v = value.get<std::string>();
    } else if (value.is_number_integer() || value.is_number_float()) {
      v = value.dump();
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--config ", path, ": key '", key, "' must be a string or a number"));
    }
    args.push_back("--" + flag);
    args.push_back(v);
  }
  return args;
}

absl::StatusOr<int32_t> Int(const CliFlags& f, const std::string& name, int64_t fallback, int64_t lo, int64_t hi) {
  ASSIGN_OR_RETURN(int64_t v, f.GetInt(name, fallback));
  if (v < lo || v > hi) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, ": ", v, " is outside [", lo, ", ", hi, "]"));
  }
  return static_cast<int32_t>(v);
}

// "on" or "off" (`fallback` when absent).
absl::StatusOr<bool> OnOff(const CliFlags& f, const std::string& name, bool fallback) {
  const std::string v = f.Get(name, fallback ? "on" : "off");
  if (v != "on" && v != "off") {
    return absl::InvalidArgumentError(absl::StrCat("--", name, ": '", v, "' is not on or off"));
  }
  return v == "on";
}

// --tls-*: the client port; --worker-tls-*: the worker port (mutual TLS, all
// three files). Files are checked when the credentials are made (main).
absl::Status ParseTransportSecurity(const CliFlags& f, CoordinatorOptions* o) {
  ASSIGN_OR_RETURN(int32_t reload, Int(f, "tls-reload-s", 60, 1, 86400));
  o->client_security.files = {f.Get("tls-cert", ""), f.Get("tls-key", ""), f.Get("tls-client-ca", "")};
  o->client_security.require_client_cert = f.Has("tls-client-ca");
  o->client_security.reload_interval = absl::Seconds(reload);
  if (o->client_security.files.cert.empty() != o->client_security.files.key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (f.Has("tls-client-ca") && !o->client_security.tls()) {
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
  }
  const bool any_worker_tls = f.Has("worker-tls-cert") || f.Has("worker-tls-key") || f.Has("worker-tls-ca");
  if (any_worker_tls) {
    if (!f.Has("worker-tls-cert") || !f.Has("worker-tls-key") || !f.Has("worker-tls-ca")) {
      return absl::InvalidArgumentError(
          "--worker-tls-cert, --worker-tls-key and --worker-tls-ca go together (the worker port is mutual TLS: "
          "workers are admitted with a certificate the --worker-tls-ca signed)");
    }
    o->worker_security.files = {f.Get("worker-tls-cert", ""), f.Get("worker-tls-key", ""),
                                f.Get("worker-tls-ca", "")};
    o->worker_security.require_client_cert = true;
    o->worker_security.reload_interval = absl::Seconds(reload);
  }
  o->plaintext = f.Has("plaintext");
  if (!o->plaintext && !net::IsLoopbackHost(o->host) &&
      (!o->client_security.tls() || !o->worker_security.tls())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--host ", o->host, " is reachable from the network but the ",
        !o->client_security.tls() ? "client port (--tls-cert/--tls-key)" : "worker port (--worker-tls-*)",
        " has no TLS; configure TLS or pass --plaintext to serve plaintext on purpose"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string CoordinatorUsage() {
  return "usage: strata-coordinator --model PATH [--model-name NAME] [--replicas N]\n"
         "  [--tensor-parallel-size 1] [--pipeline-parallel-size 1] (worker processes per replica: TP x PP)\n"
         "  [--host 127.0.0.1] [--port 8001] [--worker-port 8003] [--metrics-port 8002 (0: off)]\n"
         "  [--max-queue 256] [--max-num-seqs 64] [--max-batched-tokens 256] [--block-size 16]\n"
         "  [--max-context N] [--max-prompt-tokens N] [--max-tokens N] [--long-prefill-chunk N]\n"
         "  [--watermark-blocks N] [--prefix-caching on|off] [--worker-liveness-s 10] [--port-file FILE]\n"
         "  [--step-timeout-s 300] [--shutdown-grace-s 25] [--config FILE.json]\n"
         "  [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]] [--worker-tls-cert PEM --worker-tls-key PEM\n"
         "   --worker-tls-ca PEM] [--tls-reload-s 60] [--plaintext] [--health-port N (0: off)]\n"
         "  [--max-request-bytes N] [--api-keys-file FILE [--auth-health on|off] [--metrics-auth on|off]]\n"
         "\n"
         "SIGTERM/SIGINT drain the server: health turns NOT_SERVING and new requests get UNAVAILABLE at\n"
         "once; in-flight requests keep generating for up to --shutdown-grace-s seconds (0: cancel at\n"
         "once), then whatever is left ends with UNAVAILABLE; the workers are told to shut down and the\n"
         "process exits 0. A second signal cancels the remaining requests right away.\n"
         "--worker-liveness-s: a worker heard from neither heartbeat nor result for this long is dropped;\n"
         "--step-timeout-s: so is one whose step result is this late while its heartbeats keep coming (a\n"
         "wedged device or collective); its replica's requests are retried elsewhere or failed, never held.\n"
         "--config FILE.json: the flags as JSON keys ({\"replicas\": 2, \"shutdown-grace-s\": 10});\n"
         "flags on the command line win.\n"
         "--max-request-bytes N (default 8 MiB): the client port's gRPC receive limit and the cap of every\n"
         "request field; a text prompt may take 16 bytes per token of --max-prompt-tokens (at least 16 KiB).\n"
         "--api-keys-file FILE: clients must send 'authorization: Bearer <key>' (or 'x-api-key: <key>') with\n"
         "a key from FILE (one per line, 'key' or 'name:key', # comments); FILE is re-read when it changes.\n"
         "--auth-health on|off (default off): on, grpc.health.v1 on the client port needs a key as well\n"
         "(--health-port stays open, for probes). --metrics-auth on|off (default off): on, /metrics needs\n"
         "HTTP Basic auth whose password is a key from FILE (any user name). Both need --api-keys-file.\n"
         "--join-token-file FILE: workers must present the token in FILE's first line (>= 16 bytes) on every\n"
         "worker-port call (strata-worker --join-token-file); without it the worker port admits anyone who\n"
         "reaches it (a warning is logged). --model-fingerprint auto|off|VALUE (default auto): a worker must\n"
         "report the fingerprint of the coordinator's --model file (auto; it samples 2 MiB per file, a few ms\n"
         "whatever the model's size, so --model must be the workers' very file), VALUE, or anything (off:\n"
         "weaker, only the ranks of a replica must agree).\n"
         "--host: loopback by default; a non-loopback address needs TLS on both ports (--tls-* for clients,\n"
         "mutual TLS --worker-tls-* for workers) or --plaintext to serve unencrypted on purpose. Certificates\n"
         "are re-read every --tls-reload-s seconds (rotated Kubernetes Secrets apply without a restart).\n"
         "--health-port: grpc.health.v1 alone in plaintext and without keys, for probes that speak neither\n"
         "TLS nor API keys.\n";
}

absl::StatusOr<CoordinatorOptions> ParseCoordinatorFlags(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(CliFlags cli, CliFlags::Parse(args, ValuedFlags(), BoolFlags()));
  std::vector<std::string> all;
  if (cli.Has("config")) {
    ASSIGN_OR_RETURN(all, ConfigArgs(cli.Get("config", "")));
  }
  all.insert(all.end(), args.begin(), args.end());
  ASSIGN_OR_RETURN(CliFlags f, CliFlags::Parse(all, ValuedFlags(), BoolFlags()));

  CoordinatorOptions o;
  if (!f.Has("model")) return absl::InvalidArgumentError("--model is required (a GGUF file or HF directory)");
  ClusterConfig::Model m;
  m.path = ResolveModelPath(f.Get("model", ""));
  m.name = f.Get("model-name", "");
  ASSIGN_OR_RETURN(m.replicas, Int(f, "replicas", 1, 1, 1024));
  o.cluster.models.push_back(m);
  ASSIGN_OR_RETURN(o.cluster.tp_size, Int(f, "tensor-parallel-size", 1, 1, 64));
  ASSIGN_OR_RETURN(o.cluster.pp_size, Int(f, "pipeline-parallel-size", 1, 1, 64));
  o.host = f.Get("host", o.host);
  ASSIGN_OR_RETURN(o.port, Int(f, "port", o.port, 0, 65535));
  ASSIGN_OR_RETURN(o.worker_port, Int(f, "worker-port", o.worker_port, 0, 65535));
  ASSIGN_OR_RETURN(o.metrics_port, Int(f, "metrics-port", o.metrics_port, 0, 65535));
  ASSIGN_OR_RETURN(o.health_port, Int(f, "health-port", o.health_port, 0, 65535));
  ASSIGN_OR_RETURN(o.cluster.max_queue, Int(f, "max-queue", o.cluster.max_queue, 1, 1 << 20));
  SchedulerConfig& s = o.cluster.scheduler;
  s.max_num_seqs = 64;
  // Chunked prefill: a step computes at most this many tokens, so a long prompt
  // is prefilled over several steps and running streams keep decoding between
  // them (a 2048-token step stalls every stream for ~3 s on 2 CPU cores;
  // docs/benchmarks.md measures the trade-off).
  s.max_batched_tokens = 256;
  ASSIGN_OR_RETURN(s.max_num_seqs, Int(f, "max-num-seqs", s.max_num_seqs, 1, 1 << 16));
  ASSIGN_OR_RETURN(s.max_batched_tokens, Int(f, "max-batched-tokens", s.max_batched_tokens, 1, 1 << 20));
  ASSIGN_OR_RETURN(s.block_size, Int(f, "block-size", s.block_size, 1, 1024));
  ASSIGN_OR_RETURN(s.long_prefill_chunk, Int(f, "long-prefill-chunk", s.long_prefill_chunk, 0, 1 << 20));
  ASSIGN_OR_RETURN(s.watermark_blocks, Int(f, "watermark-blocks", s.watermark_blocks, 0, 1 << 24));
  ASSIGN_OR_RETURN(o.cluster.max_context, Int(f, "max-context", 0, 0, 1 << 24));
  ASSIGN_OR_RETURN(o.cluster.max_prompt_tokens, Int(f, "max-prompt-tokens", 0, 0, 1 << 24));
  ASSIGN_OR_RETURN(o.cluster.max_tokens, Int(f, "max-tokens", 0, 0, 1 << 24));
  ASSIGN_OR_RETURN(int32_t liveness, Int(f, "worker-liveness-s", 10, 1, 3600));
  o.worker_timeouts.liveness = absl::Seconds(liveness);
  ASSIGN_OR_RETURN(int32_t step_timeout, Int(f, "step-timeout-s", 300, 1, 86400));
  o.worker_timeouts.step = absl::Seconds(step_timeout);
  ASSIGN_OR_RETURN(int32_t grace, Int(f, "shutdown-grace-s", 25, 0, 3600));
  o.shutdown_grace = absl::Seconds(grace);
  o.port_file = f.Get("port-file", "");
  // Worker admission: the join token file is read (and checked) in main, so
  // the token itself never passes through flag error messages.
  o.join_token_file = f.Get("join-token-file", "");
  o.cluster.models[0].fingerprint = f.Get("model-fingerprint", "auto");
  if (o.cluster.models[0].fingerprint.empty()) {
    return absl::InvalidArgumentError("--model-fingerprint: empty (auto, off or the expected value)");
  }
  // Client limits and API keys (coordinator/frontend/request_limits.h,
  // api_key_auth.h); the keys file is read in main, never echoed here.
  ASSIGN_OR_RETURN(o.max_request_bytes, Int(f, "max-request-bytes", o.max_request_bytes, 64 << 10, 1 << 30));
  o.api_keys_file = f.Get("api-keys-file", "");
  ASSIGN_OR_RETURN(o.auth_health, OnOff(f, "auth-health", false));
  ASSIGN_OR_RETURN(o.metrics_auth, OnOff(f, "metrics-auth", false));
  if (o.api_keys_file.empty() && (o.auth_health || o.metrics_auth)) {
    return absl::InvalidArgumentError(absl::StrCat(o.auth_health ? "--auth-health" : "--metrics-auth",
                                                   " on needs --api-keys-file (the keys it checks)"));
  }
  RETURN_IF_ERROR(ParseTransportSecurity(f, &o));
  const std::string caching = f.Get("prefix-caching", "on");
  if (caching != "on" && caching != "off") {
    return absl::InvalidArgumentError(absl::StrCat("--prefix-caching: '", caching, "' is not on or off"));
  }
  s.enable_prefix_caching = caching == "on";
  return o;
}

}  // namespace strata::coordinator
