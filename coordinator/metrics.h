// The coordinator's Prometheus metrics (prometheus-cpp), served over HTTP at
// /metrics. Names follow vLLM's where one exists (strata_ prefix):
//
//   strata_time_to_first_token_seconds        histogram
//   strata_inter_token_latency_seconds        histogram
//   strata_e2e_request_latency_seconds        histogram
//   strata_request_queue_time_seconds         histogram  submit -> first scheduled
//   strata_request_prompt_tokens_total        counter
//   strata_request_generation_tokens_total    counter
//   strata_request_prompt_tokens              histogram  per finished request
//   strata_request_generation_tokens          histogram  per finished request
//   strata_preemptions_total                  counter    sequences preempted (recomputed later)
//   strata_request_success_total{finish_reason}   counter
//   strata_request_failure_total{code}        counter    errors after admission and rejections
//   strata_num_requests_running{replica}      gauge
//   strata_num_requests_waiting{replica}      gauge
//   strata_kv_blocks_free{replica} / _used{replica} / _total{replica}   gauge
//   strata_replica_ready{replica}             gauge 0/1
//   strata_workers_left_total{replica}        counter    workers that left on purpose (WorkerLink Leave,
//                                                        e.g. SIGTERM), not counting streams that broke
//   strata_draining                           gauge 0/1  1 while a graceful shutdown drains requests
//   strata_prefix_cache_queries_total         counter    prompt tokens looked up in the prefix cache
//   strata_prefix_cache_hits_total            counter    of those, found cached (not computed)
//   strata_prefix_cache_blocks{replica}       gauge      blocks holding cached prefixes (used or free)
//   strata_step_batch_tokens                  histogram  tokens computed per step
//   strata_step_batch_sequences               histogram  sequences in a step
//   strata_step_duration_seconds              histogram  worker round trip per step
//   strata_step_overhead_seconds              histogram  round trip minus the worker's execute
//                                                        time (protocol + scheduling cost)
//
// Thread ownership: thread-safe (prometheus-cpp metrics are atomic; family
// lookups are guarded).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/generation.h"

namespace prometheus {
class Exposer;
class Registry;
}  // namespace prometheus

namespace strata::coordinator {

struct ReplicaGauges {
  int32_t running = 0;
  int32_t waiting = 0;
  int32_t kv_blocks_free = 0;
  int32_t kv_blocks_total = 0;
  int32_t prefix_cached_blocks = 0;
  bool ready = false;
};

class Metrics {
 public:
  // Decides an HTTP Basic scrape: (user name, password) -> allowed. Called
  // on the HTTP server's threads, concurrently.
  using BasicAuthCheck = std::function<bool(const std::string& user, const std::string& password)>;

  // `http_address` like "0.0.0.0:8002"; empty: metrics are kept but not served.
  // With `basic_auth` set, /metrics answers 401 (WWW-Authenticate: Basic)
  // unless the scrape's Authorization: Basic credentials pass it
  // (--metrics-auth on; the check is in place before /metrics serves anything).
  static absl::StatusOr<std::unique_ptr<Metrics>> Create(const std::string& http_address,
                                                         BasicAuthCheck basic_auth = nullptr);
  ~Metrics();

  void FirstToken(double seconds_since_submit);
  void InterToken(double seconds);
  void Queued(double seconds);
  void Finished(FinishReason reason, double e2e_seconds, int32_t prompt_tokens, int32_t generated_tokens);
  void Failed(absl::StatusCode code);
  void Step(int32_t batch_tokens, int32_t batch_sequences, double seconds, double overhead_seconds);
  void Preempted(int32_t n);
  void SetReplica(int32_t replica, const ReplicaGauges& gauges);
  void PrefixCache(int64_t query_tokens, int64_t hit_tokens);
  void WorkerLeft(int32_t replica);
  void SetDraining(bool draining);

  // The HTTP port /metrics is served on; 0 when not served.
  int port() const;

  // The text exposition (what /metrics returns), for tests and logs.
  std::string Render() const;

 private:
  struct Impl;
  explicit Metrics(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::coordinator
