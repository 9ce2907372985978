#include "worker/coordinator_link.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/join_token.h"

namespace strata {

namespace {

// gRPC reports a failed TLS handshake as an unreachable address; say where
// to look when TLS is on.
std::string TlsHintFor(const CoordinatorLinkConfig& config) {
  if (config.credentials == nullptr) return "";
  return " (or the TLS handshake failed: check --tls-ca, --tls-cert/--tls-key and --tls-server-name "
         "against the coordinator's certificate and --worker-tls-ca; the coordinator's log names the cause)";
}

}  // namespace

namespace wire = ::strata::worker::v1;

namespace {

constexpr absl::Duration kHealthyAttachment = absl::Seconds(10);

// Statuses with which a coordinator refuses a registration for good: dialing
// again would get the same answer.
bool IsFinalRefusal(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      return true;
    default:
      return false;
  }
}

std::string Describe(const grpc::Status& s) {
  return absl::StrCat("gRPC code ", static_cast<int>(s.error_code()), ": ", s.error_message());
}

}  // namespace

CoordinatorLink::CoordinatorLink(CoordinatorLinkConfig config, StepExecutor* executor)
    : config_(std::move(config)), executor_(executor) {}

void CoordinatorLink::Log(absl::string_view message) const {
  const std::string line = absl::StrCat(config_.log_prefix, " ", message, "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

wire::Register CoordinatorLink::MakeRegister() const {
  wire::Register r;
  r.set_protocol_version(kWorkerProtocolVersion);
  r.set_replica(config_.replica);
  r.set_pp_stage(config_.pp_stage);
  r.set_pp_size(config_.pp_size);
  r.set_tp_rank(config_.tp_rank);
  r.set_tp_size(config_.tp_size);
  r.set_device(config_.device);
  r.set_peer_address(config_.peer_address);
  r.set_kv_capacity_blocks(static_cast<uint32_t>(executor_->kv_capacity_blocks()));
  r.set_block_size(static_cast<uint32_t>(executor_->block_size()));
  const ModelIdentityInfo& id = executor_->model_identity();
  wire::ModelIdentity* m = r.mutable_model();
  m->set_name(id.name);
  m->set_source(id.source);
  m->set_fingerprint(id.fingerprint);
  m->set_vocab_size(static_cast<uint32_t>(id.vocab_size));
  m->set_num_layers(static_cast<uint32_t>(id.num_layers));
  m->set_context_length(static_cast<uint32_t>(id.context_length));
  return r;
}

absl::Duration CoordinatorLink::StepRunningFor() const {
  const int64_t started = step_started_ns_.load();
  return started == 0 ? absl::ZeroDuration() : absl::Now() - absl::FromUnixNanos(started);
}

void CoordinatorLink::Stop() {
  absl::MutexLock lock(&mu_);
  stopped_.store(true);
  stop_requested_ = true;
  if (context_ != nullptr) context_->TryCancel();
}

void CoordinatorLink::Leave(const std::string& reason) {
  {
    absl::MutexLock lock(&mu_);
    if (stop_requested_) return;
    // Never attach again; dial and backoff waits end now.
    stopped_.store(true);
    stop_requested_ = true;
    if (context_ == nullptr) return;  // not attached: nothing to tell
    leaving_.store(true);
  }
  wire::WorkerMessage msg;
  msg.mutable_leave()->set_reason(reason);
  msg.mutable_leave()->set_last_completed_step_id(last_completed_step_.load());
  bool sent = false;
  {
    absl::MutexLock lock(&write_mu_);
    if (stream_ != nullptr) sent = stream_->Write(msg);
  }
  absl::MutexLock lock(&mu_);
  if (sent) {
    Log(absl::StrCat("leaving the replica (", reason, "); waiting up to ",
                     absl::FormatDuration(config_.leave_timeout), " for the coordinator"));
    if (mu_.AwaitWithTimeout(absl::Condition(this, &CoordinatorLink::AttachmentEnded), config_.leave_timeout)) {
      return;
    }
    Log("no answer to Leave in time; closing the stream");
  }
  if (context_ != nullptr) context_->TryCancel();
}

bool CoordinatorLink::SleepUnlessStopped(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stop_requested_), d);
  return !stop_requested_;
}

bool CoordinatorLink::HeartbeatShouldEnd() const { return heartbeat_done_ || stop_requested_; }

absl::Status CoordinatorLink::Dial(grpc::Channel* channel) {
  const absl::Time deadline = absl::Now() + config_.connect_timeout;
  bool logged = false;
  for (;;) {
    if (stopped()) return absl::CancelledError("stopped while dialing the coordinator");
    const grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
    if (state == GRPC_CHANNEL_READY) return absl::OkStatus();
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("could not reach the coordinator at ", config_.coordinator_address, " within ",
                       absl::FormatDuration(config_.connect_timeout), TlsHintFor(config_)));
    }
    if (!logged && state == GRPC_CHANNEL_TRANSIENT_FAILURE) {
      Log(absl::StrCat("coordinator at ", config_.coordinator_address,
                       " not reachable yet", TlsHintFor(config_), "; retrying until ",
                       absl::FormatDuration(config_.connect_timeout), " have passed"));
      logged = true;
    }
    // Short slices so Stop() is noticed; the channel's own reconnect backoff
    // (capped at max_backoff by the channel arguments) paces the attempts.
    const absl::Time slice = std::min(deadline, now + absl::Milliseconds(200));
    channel->WaitForStateChange(state, absl::ToChronoTime(slice));
  }
}

bool CoordinatorLink::Write(Stream* stream, const wire::WorkerMessage& msg) {
  absl::MutexLock lock(&write_mu_);
  return stream->Write(msg);
}

void CoordinatorLink::HeartbeatLoop(Stream* stream) {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(this, &CoordinatorLink::HeartbeatShouldEnd),
                               config_.heartbeat_interval)) {
        return;
      }
    }
    wire::WorkerMessage m;
    m.mutable_heartbeat()->set_last_completed_step_id(last_completed_step_.load());
    m.mutable_heartbeat()->set_unix_time_millis(static_cast<uint64_t>(absl::ToUnixMillis(absl::Now())));
    if (!Write(stream, m)) return;  // the stream is gone; the step thread sees it too
  }
}

absl::Status CoordinatorLink::Attach() {
  registered_at_ = absl::InfinitePast();
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(config_.min_backoff)));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(config_.min_backoff)));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(config_.max_backoff)));
  // A fresh connection per attachment: never reuse a subchannel of a broken one.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (config_.credentials != nullptr && !config_.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(config_.tls_server_name);
  }
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      config_.coordinator_address,
      config_.credentials != nullptr ? config_.credentials : grpc::InsecureChannelCredentials(), args);
  if (absl::Status s = Dial(channel.get()); !s.ok()) return s;

  std::unique_ptr<wire::WorkerLink::Stub> stub = wire::WorkerLink::NewStub(channel);
  grpc::ClientContext context;
  if (!config_.join_token.empty()) context.AddMetadata(kJoinTokenMetadata, config_.join_token);
  {
    absl::MutexLock lock(&mu_);
    if (stop_requested_) return absl::CancelledError("stopped");
    context_ = &context;
    heartbeat_done_ = false;
  }
  std::unique_ptr<Stream> stream = stub->Attach(&context);
  {
    absl::MutexLock lock(&write_mu_);
    stream_ = stream.get();
  }

  wire::WorkerMessage reg;
  *reg.mutable_register_() = MakeRegister();
  bool registered = false;
  bool shutdown = false;
  std::thread heartbeat;
  if (Write(stream.get(), reg)) {
    Log(absl::StrCat("attached to ", config_.coordinator_address, "; registering (",
                     executor_->kv_capacity_blocks(), " KV blocks of ", executor_->block_size(),
                     " tokens, model ", executor_->model_identity().name, ")"));
    heartbeat = std::thread([this, s = stream.get()] { HeartbeatLoop(s); });
    wire::CoordinatorMessage msg;
    bool broken = false;
    while (!shutdown && !broken && stream->Read(&msg)) {
      switch (msg.kind_case()) {
        case wire::CoordinatorMessage::kRegistered: {
          registered = true;
          registered_at_ = absl::Now();
          Log(absl::StrCat("registered as worker ", msg.registered().worker_id(), " (",
                           executor_->shard().topology.ToString(), ", rendezvous '",
                           msg.registered().collective_rendezvous(), "')"));
          if (config_.store_token_changed) config_.store_token_changed(msg.registered().store_token());
          const auto t0 = absl::Now();
          if (absl::Status s = executor_->Connect(msg.registered().collective_rendezvous()); !s.ok()) {
            Log(absl::StrCat("cannot connect to the replica's other ranks: ", s.message()));
            context.TryCancel();
            broken = true;
          } else if (executor_->shard().topology.world_size() > 1) {
            Log(absl::StrCat("communicators ready in ", absl::FormatDuration(absl::Now() - t0)));
          }
          break;
        }
        case wire::CoordinatorMessage::kStepPlan: {
          // Leaving: the coordinator has let go of this worker (or will when
          // it reads Leave), so the plan's result would go unread.
          if (leaving_.load()) break;
          wire::WorkerMessage out;
          step_started_ns_.store(absl::ToUnixNanos(absl::Now()));
          *out.mutable_step_result() = executor_->Execute(msg.step_plan());
          step_started_ns_.store(0);
          if (out.step_result().has_error()) {
            Log(absl::StrCat("step ", msg.step_plan().step_id(), " error (code ",
                             out.step_result().error().code(), "): ", out.step_result().error().message()));
          }
          last_completed_step_.store(msg.step_plan().step_id());
          broken = !Write(stream.get(), out);
          break;
        }
        case wire::CoordinatorMessage::kShutdown:
          Log(absl::StrCat("shutdown requested: ", msg.shutdown().reason()));
          shutdown = true;
          break;
        default:
          Log("ignoring a coordinator message of an unknown kind");
          break;
      }
    }
  }
  {
    absl::MutexLock lock(&mu_);
    heartbeat_done_ = true;
  }
  if (heartbeat.joinable()) heartbeat.join();
  {
    absl::MutexLock lock(&write_mu_);
    stream_ = nullptr;
    if (shutdown) stream->WritesDone();
  }

  // Finish waits for the server's status. After Read failed the call is over
  // and this is immediate; after Shutdown the coordinator may keep its side
  // open, so a watchdog cancels the call if it has not ended in 5 s.
  absl::Notification finished;
  std::thread watchdog([&] {
    if (!finished.WaitForNotificationWithTimeout(absl::Seconds(5))) context.TryCancel();
  });
  const grpc::Status status = stream->Finish();
  finished.Notify();
  watchdog.join();
  {
    absl::MutexLock lock(&mu_);
    context_ = nullptr;
  }

  if (leaving_.load()) {
    Log(shutdown ? "left the replica; the coordinator acknowledged" : "left the replica");
    return absl::OkStatus();
  }
  if (shutdown) {
    Log("stream closed after shutdown");
    return absl::OkStatus();
  }
  if (stopped()) return absl::CancelledError("stopped");
  if (!registered && IsFinalRefusal(status.error_code())) {
    return absl::FailedPreconditionError(
        absl::StrCat("the coordinator refused the registration (", Describe(status), ")"));
  }
  return absl::UnavailableError(absl::StrCat("the stream to the coordinator ended (", Describe(status),
                                             registered ? "" : "; before Registered", ")"));
}

absl::Status CoordinatorLink::Run() {
  absl::Duration backoff = config_.min_backoff;
  for (;;) {
    const absl::Status s = Attach();
    if (stopped()) return absl::OkStatus();
    if (s.ok()) return s;
    if (!absl::IsUnavailable(s)) return s;
    // An attachment that served for a while earns a quick retry; one the
    // coordinator ends right after Registered (e.g. the replica still has
    // its previous worker) backs off like a failed dial.
    if (absl::Now() - registered_at_ > kHealthyAttachment) backoff = config_.min_backoff;
    Log(absl::StrCat(s.message(), "; re-attaching in ", absl::FormatDuration(backoff),
                     " with empty sequence state"));
    if (absl::Status r = executor_->Reset(); !r.ok()) return r;
    last_completed_step_.store(0);
    if (!SleepUnlessStopped(backoff)) return absl::OkStatus();
    backoff = std::min(backoff * 2, config_.max_backoff);
  }
}

}  // namespace strata
