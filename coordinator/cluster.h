// The coordinator's core: the served models, their replicas (one engine loop
// each), the router and the request limits. It is the InferenceBackend the
// client frontends call, and the registry the worker link attaches workers to.
//
//   frontend ─► Submit: validate + limits ─► Router ─► Replica::Enqueue
//   worker link ─► AttachWorker: check the Register ─► Replica::Attach
//
// Graceful shutdown (driven by Drain, coordinator/drain.h): StopAdmitting()
// makes Submit answer UNAVAILABLE and IsReady() false; outstanding() counts
// the admitted requests still running; CancelAll() ends them; Shutdown()
// stops the replicas and tells the workers.
//
// Thread ownership: thread-safe; models and replicas are created in Create and
// live until destruction; per-request state lives in the replicas' loops.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/inference_backend.h"
#include "coordinator/metrics.h"
#include "coordinator/model_metadata.h"
#include "coordinator/replica.h"
#include "coordinator/router.h"
#include "coordinator/scheduler.h"
#include "coordinator/worker_message_validator.h"

namespace strata::coordinator {

struct ClusterConfig {
  struct Model {
    std::string name;   // as clients address it; empty: the file's stem
    std::string path;   // GGUF file or HF directory (tokenizer and config only)
    int32_t replicas = 1;
    // The model fingerprint a worker must report (Register.model.fingerprint):
    // "auto": ModelFingerprint(path), computed in Create (the coordinator's
    // path must then hold the workers' very files); "off": not checked, only
    // that a replica's ranks agree (weaker: any file of the right shape
    // passes); anything else: that value.
    std::string fingerprint = "off";
  };
  std::vector<Model> models;
  int32_t max_context = 0;        // tokens per sequence; 0: min(model's, 4096)
  int32_t max_prompt_tokens = 0;  // 0: max_context - 1
  int32_t max_tokens = 0;         // generated per request; 0: max_context - 1
  int32_t max_queue = 256;        // requests waiting to be scheduled, all replicas
  SchedulerConfig scheduler;      // per replica (num_blocks comes from the worker)
  int32_t tp_size = 1;            // worker processes per pipeline stage of a replica
  int32_t pp_size = 1;            // pipeline stages of a replica
  // Bounds on what a worker may claim in Register (worker_message_validator.h).
  RegisterLimits register_limits;
  // Called when a replica's worker group forms, with its rendezvous key
  // prefix, the group's store token and its number of ranks (the
  // coordinator's store then serves that prefix to that token). Optional.
  std::function<void(const std::string& prefix, const std::string& store_token, int32_t ranks)>
      rendezvous_opened;
  // Called when a replica's worker group ends, with its rendezvous key prefix
  // (the coordinator drops those keys from its store). Optional.
  std::function<void(const std::string& prefix)> rendezvous_retired;
};

class Cluster final : public InferenceBackend {
 public:
  static absl::StatusOr<std::unique_ptr<Cluster>> Create(const ClusterConfig& config, Metrics* metrics);
  ~Cluster() override;

  // InferenceBackend.
  std::vector<ModelStatus> ListModels() const override;
  absl::StatusOr<const ServedModel*> FindModel(absl::string_view name) const override;
  bool IsModelReady(absl::string_view model) const override;
  bool IsReady() const override;
  absl::StatusOr<std::shared_ptr<RequestStream>> Submit(absl::string_view model,
                                                        GenerationRequest request) override;
  void RecordRejection(absl::StatusCode code) override;

  // The replica a registering worker belongs to, after checking its Register:
  // its bounds (ValidateRegister: INVALID_ARGUMENT), then against the served
  // model (name, vocabulary, context, block size, fingerprint:
  // FAILED_PRECONDITION naming both values).
  absl::StatusOr<Replica*> ReplicaFor(const ::strata::worker::v1::Register& reg) const;
  // Called (from a replica's loop) whenever IsReady() may have changed.
  void set_on_readiness_change(std::function<void(bool ready)> fn);
  // Stops every replica: their requests end with UNAVAILABLE.
  void Shutdown();

  // From now on Submit refuses every request with UNAVAILABLE ("the server is
  // shutting down ..."), IsReady()/IsModelReady() are false (the readiness
  // callback is told), and requests already admitted keep running (a retry
  // after a worker went away still moves to another replica). Idempotent.
  void StopAdmitting();
  bool admitting() const { return !draining_.load(); }
  // Requests admitted and not yet ended, over all replicas.
  int32_t outstanding() const;
  // KV blocks held by requests over all replicas (as of each loop's last
  // iteration).
  int32_t kv_blocks_used() const;
  // Ends every admitted request with `status` (each replica's loop aborts
  // them and frees their blocks at its next iteration; see Replica::CancelAll).
  void CancelAll(const absl::Status& status);
  Metrics* metrics() const { return metrics_; }

 private:
  struct Model {
    ServedModel served;
    std::unique_ptr<ModelMetadata> meta;
    std::vector<std::unique_ptr<Replica>> replicas;
    std::unique_ptr<Router> router;
    std::string fingerprint;  // what workers must report; empty: not checked
  };

  Cluster(const ClusterConfig& config, Metrics* metrics) : config_(config), metrics_(metrics) {}
  absl::Status Validate(const Model& m, GenerationRequest& r) const;
  // Routes to a ready replica of `m`, or fails the stream with UNAVAILABLE.
  void Route(Model& m, PendingRequest p);
  void ReadinessChanged();

  const ClusterConfig config_;
  Metrics* const metrics_;
  std::vector<std::unique_ptr<Model>> models_;
  std::atomic<int64_t> next_seq_id_{1};
  std::atomic<bool> draining_{false};
  absl::Mutex admission_mu_;  // serializes the queue-bound check with the enqueue
  absl::Mutex ready_mu_;
  std::function<void(bool)> on_readiness_change_ ABSL_GUARDED_BY(ready_mu_);
};

}  // namespace strata::coordinator
