#include "coordinator/frontend/kserve_stream_session.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "coordinator/frontend/kserve_response_builder.h"

namespace strata::coordinator::frontend {

KServeStreamSession::KServeStreamSession(Stream* stream, int max_in_flight)
    : stream_(stream), max_in_flight_(max_in_flight) {}

KServeStreamSession::~KServeStreamSession() { JoinFinished(/*all=*/true); }

void KServeStreamSession::Run(const Handler& handler) {
  inference::ModelInferRequest request;
  while (stream_->Read(&request)) {
    JoinFinished(/*all=*/false);
    if (static_cast<int>(workers_.size()) >= max_in_flight_) {
      inference::ModelStreamInferResponse response;
      response.set_error_message(
          absl::ResourceExhaustedError(
              absl::StrCat("this stream already runs ", max_in_flight_,
                           " requests; wait for one to finish or open another stream"))
              .ToString());
      *response.mutable_infer_response() = BuildEmptyResponse(
          {request.model_name(), request.model_version(), request.id()});
      SetFinalResponse(true, response.mutable_infer_response());
      Write(response);
      continue;
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    workers_.push_back(Worker{
        std::thread([this, &handler, done, req = std::move(request)]() {
          handler(req, *this);
          done->store(true);
        }),
        done});
    request = inference::ModelInferRequest();
  }
  JoinFinished(/*all=*/true);
}

void KServeStreamSession::JoinFinished(bool all) {
  std::vector<Worker> running;
  for (Worker& w : workers_) {
    if (all || w.done->load()) {
      if (w.thread.joinable()) w.thread.join();
    } else {
      running.push_back(std::move(w));
    }
  }
  workers_ = std::move(running);
}

bool KServeStreamSession::Write(const inference::ModelStreamInferResponse& response) {
  absl::MutexLock lock(&mu_);
  if (broken_) return false;
  if (!stream_->Write(response)) broken_ = true;
  return !broken_;
}

bool KServeStreamSession::broken() const {
  absl::MutexLock lock(&mu_);
  return broken_;
}

}  // namespace strata::coordinator::frontend
