#include "coordinator/worker_group.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace strata::coordinator {

namespace {

std::string JoinIds(const std::vector<std::shared_ptr<WorkerConnection>>& ranks) {
  return absl::StrJoin(ranks, "+", [](std::string* out, const std::shared_ptr<WorkerConnection>& c) {
    absl::StrAppend(out, c->worker_id());
  });
}

}  // namespace

WorkerGroup::WorkerGroup(std::vector<std::shared_ptr<WorkerConnection>> ranks, int32_t tp_size,
                         int32_t pp_size, std::string rendezvous, std::string store_token)
    : ranks_(std::move(ranks)),
      tp_size_(tp_size),
      pp_size_(pp_size),
      rendezvous_(std::move(rendezvous)),
      store_token_(std::move(store_token)),
      id_(JoinIds(ranks_)) {}

uint32_t WorkerGroup::kv_capacity_blocks() const {
  uint32_t n = std::numeric_limits<uint32_t>::max();
  for (const auto& r : ranks_) n = std::min(n, r->registration().kv_capacity_blocks());
  return n;
}

bool WorkerGroup::Contains(const WorkerConnection* conn) const {
  for (const auto& r : ranks_) {
    if (r.get() == conn) return true;
  }
  return false;
}

bool WorkerGroup::SendRegistered() {
  bool ok = true;
  for (const auto& r : ranks_) {
    wire::Registered reg;
    reg.set_worker_id(r->worker_id());
    reg.set_collective_rendezvous(rendezvous_);
    reg.set_store_token(store_token_);
    for (const auto& peer : ranks_) reg.add_peer_addresses(peer->registration().peer_address());
    ok = r->SendRegistered(reg) && ok;
  }
  return ok;
}

absl::Status WorkerGroup::Send(const wire::StepPlan& plan) {
  for (const auto& r : ranks_) {
    if (absl::Status s = r->Send(plan); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<wire::StepResult> WorkerGroup::Await(const StepExpectation& expect) {
  const uint64_t step_id = expect.step_id;
  std::vector<wire::StepResult> results(ranks_.size());
  for (size_t i = 0; i < ranks_.size(); ++i) {
    absl::StatusOr<wire::StepResult> r = ranks_[i]->Await(step_id);
    if (!r.ok()) return r.status();
    if (absl::Status valid = ValidateStepResult(*r, expect); !valid.ok()) {
      return ranks_[i]->ProtocolViolation(valid.message());
    }
    if (r->has_error()) r->mutable_error()->set_message(TruncatedErrorMessage(r->error().message()));
    results[i] = *std::move(r);
  }
  if (ranks_.size() == 1) return std::move(results[0]);
  const size_t sampler = static_cast<size_t>(pp_size_ - 1) * tp_size_;
  wire::StepResult merged;
  merged.set_step_id(step_id);
  const wire::StepError* whole = nullptr;
  absl::flat_hash_set<uint64_t> failed;
  std::vector<std::string> messages;
  int32_t code = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const wire::StepResult& r = results[i];
    merged.set_execute_micros(std::max(merged.execute_micros(), r.execute_micros()));
    if (i == sampler) *merged.mutable_tokens() = r.tokens();
    if (!r.has_error()) continue;
    if (r.error().seq_ids().empty()) {
      if (whole == nullptr) whole = &r.error();
      continue;
    }
    if (code == 0) code = r.error().code();
    bool new_ids = false;
    for (uint64_t id : r.error().seq_ids()) new_ids = failed.insert(id).second || new_ids;
    if (new_ids) messages.push_back(absl::StrCat(ranks_[i]->worker_id(), ": ", r.error().message()));
  }
  if (whole != nullptr) {
    *merged.mutable_error() = *whole;
    merged.clear_tokens();
  } else if (!failed.empty()) {
    merged.mutable_error()->set_code(code);
    merged.mutable_error()->set_message(absl::StrJoin(messages, "; "));
    for (uint64_t id : failed) merged.mutable_error()->add_seq_ids(id);
  }
  return merged;
}

void WorkerGroup::Shutdown(const std::string& reason) {
  for (const auto& r : ranks_) r->Shutdown(reason);
}

void WorkerGroup::Cancel() {
  for (const auto& r : ranks_) r->Cancel();
}

absl::Status WorkerGroup::EndStatus(absl::Status fallback) const {
  for (const auto& r : ranks_) {
    if (r->left()) return r->end_status();
  }
  return fallback;
}

bool WorkerGroup::alive() const {
  for (const auto& r : ranks_) {
    if (!r->alive()) return false;
  }
  return true;
}

}  // namespace strata::coordinator
