// Communicators for ranks that are threads of one test process: a mock
// transport for unit tests of the code around the Communicator interface
// (model sharding, pipeline hand-off). Sums are taken in rank order on every
// rank, so all ranks see bit-identical results, as with Gloo's ring.
//
//   ThreadGroup group(3);                    // shared state
//   ThreadCommunicator c0(&group, 0), ...;   // one per rank (thread)
#pragma once

#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "parallel/communicator.h"

namespace strata::testing {

class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), slots_(size) {}
  int size() const { return size_; }

  void Barrier() {
    std::unique_lock<std::mutex> lock(mu_);
    const int64_t gen = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen; });
    }
  }
  void Publish(int rank, const void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    slots_[rank] = p;
  }
  const void* Slot(int rank) {
    std::lock_guard<std::mutex> lock(mu_);
    return slots_[rank];
  }
  void Post(int from, int to, std::string bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    mail_[{from, to}].push_back(std::move(bytes));
    cv_.notify_all();
  }
  std::string Take(int from, int to) {
    std::unique_lock<std::mutex> lock(mu_);
    auto& q = mail_[{from, to}];
    cv_.wait(lock, [&] { return !q.empty(); });
    std::string out = std::move(q.front());
    q.pop_front();
    return out;
  }

 private:
  const int size_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  int64_t generation_ = 0;
  std::vector<const void*> slots_;
  std::map<std::pair<int, int>, std::deque<std::string>> mail_;
};

class ThreadCommunicator : public parallel::Communicator {
 public:
  ThreadCommunicator(ThreadGroup* group, int rank)
      : group_(group), rank_(rank), describe_(absl::StrCat("thread rank ", rank, " of ", group->size())) {}
  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }
  const std::string& Describe() const override { return describe_; }

  absl::Status AllReduceSum(void* buffer, int64_t count, parallel::DataType type) override {
    if (type != parallel::DataType::kF32) return absl::UnimplementedError("f32 only");
    group_->Publish(rank_, buffer);
    group_->Barrier();
    std::vector<float> sum(count, 0.0f);
    for (int r = 0; r < size(); ++r) {
      const float* in = static_cast<const float*>(group_->Slot(r));
      for (int64_t i = 0; i < count; ++i) sum[i] += in[i];
    }
    group_->Barrier();  // everyone read every buffer
    std::memcpy(buffer, sum.data(), count * sizeof(float));
    ++calls_;
    return absl::OkStatus();
  }
  absl::Status AllGather(const void* in, void* out, int64_t count, parallel::DataType type) override {
    const size_t bytes = count * parallel::DataTypeSize(type);
    group_->Publish(rank_, in);
    group_->Barrier();
    for (int r = 0; r < size(); ++r) {
      std::memcpy(static_cast<char*>(out) + r * bytes, group_->Slot(r), bytes);
    }
    group_->Barrier();
    ++calls_;
    return absl::OkStatus();
  }
  absl::Status Broadcast(void* buffer, int64_t count, parallel::DataType type, int root) override {
    const size_t bytes = count * parallel::DataTypeSize(type);
    group_->Publish(rank_, buffer);
    group_->Barrier();
    if (rank_ != root) std::memcpy(buffer, group_->Slot(root), bytes);
    group_->Barrier();
    ++calls_;
    return absl::OkStatus();
  }
  absl::Status Send(const void* buffer, int64_t count, parallel::DataType type, int peer) override {
    group_->Post(rank_, peer, std::string(static_cast<const char*>(buffer), count * parallel::DataTypeSize(type)));
    ++calls_;
    return absl::OkStatus();
  }
  absl::Status Recv(void* buffer, int64_t count, parallel::DataType type, int peer) override {
    const std::string bytes = group_->Take(peer, rank_);
    if (bytes.size() != count * parallel::DataTypeSize(type)) {
      return absl::InternalError(absl::StrCat(describe_, ": received ", bytes.size(), " bytes, expected ",
                                              count * parallel::DataTypeSize(type)));
    }
    std::memcpy(buffer, bytes.data(), bytes.size());
    ++calls_;
    return absl::OkStatus();
  }
  absl::Status Barrier() override {
    group_->Barrier();
    return absl::OkStatus();
  }
  int64_t calls() const { return calls_; }

 private:
  ThreadGroup* const group_;
  const int rank_;
  const std::string describe_;
  int64_t calls_ = 0;
};

}  // namespace strata::testing
