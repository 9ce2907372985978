#include "coordinator/metrics.h"

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace strata::coordinator {

namespace {

prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
          0.75,  1.0,    2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0};
}

prometheus::Histogram::BucketBoundaries TokenBuckets() {
  return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768};
}

const char* FinishName(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kNone: break;
  }
  return "none";
}

}  // namespace

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<prometheus::Exposer> exposer;
  prometheus::Family<prometheus::Histogram>* ttft;
  prometheus::Family<prometheus::Histogram>* itl;
  prometheus::Family<prometheus::Histogram>* e2e;
  prometheus::Family<prometheus::Histogram>* queue;
  prometheus::Family<prometheus::Histogram>* step_tokens;
  prometheus::Family<prometheus::Histogram>* step_seqs;
  prometheus::Family<prometheus::Histogram>* prompt_hist;
  prometheus::Family<prometheus::Histogram>* gen_hist;
  prometheus::Counter* preemptions;
  prometheus::Family<prometheus::Gauge>* kv_used;
  prometheus::Family<prometheus::Histogram>* step_seconds;
  prometheus::Family<prometheus::Histogram>* step_overhead;
  prometheus::Counter* prompt_tokens;
  prometheus::Counter* generation_tokens;
  prometheus::Family<prometheus::Counter>* success;
  prometheus::Family<prometheus::Counter>* failure;
  prometheus::Family<prometheus::Gauge>* running;
  prometheus::Family<prometheus::Gauge>* waiting;
  prometheus::Family<prometheus::Gauge>* kv_free;
  prometheus::Family<prometheus::Gauge>* kv_total;
  prometheus::Family<prometheus::Gauge>* ready;
  prometheus::Family<prometheus::Gauge>* cached_blocks;
  prometheus::Family<prometheus::Counter>* workers_left;
  prometheus::Gauge* draining;
  prometheus::Counter* prefix_queries;
  prometheus::Counter* prefix_hits;
  absl::Mutex mu;  // guards family Add() from several threads
};

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Create(const std::string& http_address,
                                                         BasicAuthCheck basic_auth) {
  auto impl = std::make_unique<Impl>();
  auto& r = *impl->registry;
  auto hist = [&](const char* name, const char* help) {
    return &prometheus::BuildHistogram().Name(name).Help(help).Register(r);
  };
  impl->ttft = hist("strata_time_to_first_token_seconds", "Time from submit to the first generated token.");
  impl->itl = hist("strata_inter_token_latency_seconds", "Time between consecutive tokens of a request.");
  impl->e2e = hist("strata_e2e_request_latency_seconds", "Time from submit to the last token.");
  impl->queue = hist("strata_request_queue_time_seconds", "Time from submit to first being scheduled.");
  impl->step_tokens = hist("strata_step_batch_tokens", "Tokens computed per engine step.");
  impl->step_seqs = hist("strata_step_batch_sequences", "Sequences computed in an engine step.");
  impl->prompt_hist = hist("strata_request_prompt_tokens", "Prompt tokens per finished request.");
  impl->gen_hist = hist("strata_request_generation_tokens", "Generated tokens per finished request.");
  impl->preemptions = &prometheus::BuildCounter()
                           .Name("strata_preemptions_total")
                           .Help("Sequences preempted by recompute when KV blocks ran out.")
                           .Register(r)
                           .Add({});
  impl->step_seconds = hist("strata_step_duration_seconds", "Worker round trip of one engine step.");
  impl->step_overhead = hist("strata_step_overhead_seconds",
                             "Step round trip minus the worker's execute time (protocol and scheduling).");
  impl->prompt_tokens = &prometheus::BuildCounter()
                             .Name("strata_request_prompt_tokens_total")
                             .Help("Prompt tokens of finished requests.")
                             .Register(r)
                             .Add({});
  impl->generation_tokens = &prometheus::BuildCounter()
                                 .Name("strata_request_generation_tokens_total")
                                 .Help("Generated tokens of finished requests.")
                                 .Register(r)
                                 .Add({});
  impl->success = &prometheus::BuildCounter().Name("strata_request_success_total")
                       .Help("Requests that finished, by finish reason.").Register(r);
  impl->failure = &prometheus::BuildCounter().Name("strata_request_failure_total")
                       .Help("Requests rejected or ended by an error, by gRPC status code.").Register(r);
  auto gauge = [&](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(r);
  };
  impl->running = gauge("strata_num_requests_running", "Sequences in the running batch.");
  impl->waiting = gauge("strata_num_requests_waiting", "Requests waiting to be scheduled.");
  impl->kv_free = gauge("strata_kv_blocks_free", "KV blocks free (including cached, evictable ones).");
  impl->kv_total = gauge("strata_kv_blocks_total", "Usable KV blocks of the replica.");
  impl->kv_used = gauge("strata_kv_blocks_used", "KV blocks referenced by sequences.");
  impl->ready = gauge("strata_replica_ready", "1 when the replica's workers are attached and ready.");
  impl->cached_blocks = gauge("strata_prefix_cache_blocks", "KV blocks holding cached prefixes (used or free).");
  impl->workers_left = &prometheus::BuildCounter()
                            .Name("strata_workers_left_total")
                            .Help("Workers that left their replica on purpose (Leave, e.g. on SIGTERM).")
                            .Register(r);
  impl->draining = &gauge("strata_draining", "1 while a graceful shutdown drains in-flight requests.")->Add({});
  impl->prefix_queries = &prometheus::BuildCounter()
                              .Name("strata_prefix_cache_queries_total")
                              .Help("Prompt tokens looked up in the prefix cache at admission.")
                              .Register(r)
                              .Add({});
  impl->prefix_hits = &prometheus::BuildCounter()
                           .Name("strata_prefix_cache_hits_total")
                           .Help("Prompt tokens found in the prefix cache (their KV reused, not computed).")
                           .Register(r)
                           .Add({});
  if (!http_address.empty()) {
    try {
      impl->exposer = std::make_unique<prometheus::Exposer>(http_address);
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat("metrics: cannot listen on ", http_address, ": ", e.what()));
    }
    // Auth first: until the registry is registered /metrics has nothing to serve.
    if (basic_auth) impl->exposer->RegisterAuth(std::move(basic_auth), "strata metrics");
    impl->exposer->RegisterCollectable(impl->registry);
  }
  return std::unique_ptr<Metrics>(new Metrics(std::move(impl)));
}

Metrics::Metrics(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Metrics::~Metrics() = default;

void Metrics::FirstToken(double s) {
  absl::MutexLock lock(&impl_->mu);
  impl_->ttft->Add({}, LatencyBuckets()).Observe(s);
}

void Metrics::InterToken(double s) {
  absl::MutexLock lock(&impl_->mu);
  impl_->itl->Add({}, LatencyBuckets()).Observe(s);
}

void Metrics::Queued(double s) {
  absl::MutexLock lock(&impl_->mu);
  impl_->queue->Add({}, LatencyBuckets()).Observe(s);
}

void Metrics::Finished(FinishReason reason, double e2e, int32_t prompt, int32_t generated) {
  absl::MutexLock lock(&impl_->mu);
  impl_->e2e->Add({}, LatencyBuckets()).Observe(e2e);
  impl_->prompt_tokens->Increment(prompt);
  impl_->generation_tokens->Increment(generated);
  impl_->success->Add({{"finish_reason", FinishName(reason)}}).Increment();
  impl_->prompt_hist->Add({}, TokenBuckets()).Observe(prompt);
  impl_->gen_hist->Add({}, TokenBuckets()).Observe(generated);
}

void Metrics::Failed(absl::StatusCode code) {
  absl::MutexLock lock(&impl_->mu);
  impl_->failure->Add({{"code", absl::StatusCodeToString(code)}}).Increment();
}

void Metrics::Step(int32_t batch_tokens, int32_t batch_sequences, double seconds, double overhead_seconds) {
  absl::MutexLock lock(&impl_->mu);
  impl_->step_tokens->Add({}, TokenBuckets()).Observe(batch_tokens);
  impl_->step_seqs->Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256})
      .Observe(batch_sequences);
  impl_->step_seconds->Add({}, LatencyBuckets()).Observe(seconds);
  impl_->step_overhead
      ->Add({}, prometheus::Histogram::BucketBoundaries{0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002,
                                                        0.005, 0.01, 0.05})
      .Observe(overhead_seconds);
}

void Metrics::Preempted(int32_t n) {
  absl::MutexLock lock(&impl_->mu);
  impl_->preemptions->Increment(n);
}

void Metrics::SetReplica(int32_t replica, const ReplicaGauges& g) {
  absl::MutexLock lock(&impl_->mu);
  const prometheus::Labels labels{{"replica", absl::StrCat(replica)}};
  impl_->running->Add(labels).Set(g.running);
  impl_->waiting->Add(labels).Set(g.waiting);
  impl_->kv_free->Add(labels).Set(g.kv_blocks_free);
  impl_->kv_total->Add(labels).Set(g.kv_blocks_total);
  impl_->kv_used->Add(labels).Set(g.kv_blocks_total - g.kv_blocks_free);
  impl_->ready->Add(labels).Set(g.ready ? 1 : 0);
  impl_->cached_blocks->Add(labels).Set(g.prefix_cached_blocks);
}

void Metrics::PrefixCache(int64_t query_tokens, int64_t hit_tokens) {
  absl::MutexLock lock(&impl_->mu);
  impl_->prefix_queries->Increment(static_cast<double>(query_tokens));
  impl_->prefix_hits->Increment(static_cast<double>(hit_tokens));
}

void Metrics::WorkerLeft(int32_t replica) {
  absl::MutexLock lock(&impl_->mu);
  impl_->workers_left->Add({{"replica", absl::StrCat(replica)}}).Increment();
}

void Metrics::SetDraining(bool draining) {
  absl::MutexLock lock(&impl_->mu);
  impl_->draining->Set(draining ? 1 : 0);
}

int Metrics::port() const {
  if (!impl_->exposer) return 0;
  std::vector<int> ports = impl_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports[0];
}

std::string Metrics::Render() const {
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

}  // namespace strata::coordinator
