#include "parallel/gloo_communicator.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <limits>
#include <list>
#include <new>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gloo/allgather.h"
#include "gloo/allreduce_halving_doubling.h"
#include "gloo/allreduce_ring.h"
#include "gloo/barrier.h"
#include "gloo/broadcast.h"
#include "gloo/common/error.h"
#include "gloo/common/logging.h"
#include "gloo/rendezvous/context.h"
#include "gloo/transport/tcp/device.h"
#include "gloo/transport/unbound_buffer.h"
#include "parallel/gloo_store_adapter.h"

namespace strata::parallel {
namespace {

// Below this many bytes AllReduceSum runs the ring (fewest messages for 2-4
// ranks); from it on halving-doubling (log2(n) steps, less data through each
// rank at 4 ranks). Measured with bench/collective_bench.cc.
constexpr int64_t kRingMaxBytes = int64_t{256} << 10;

// The older algorithm classes count bytes in an int: larger all-reduces run
// in chunks of at most this many bytes.
constexpr int64_t kMaxChunkBytes = int64_t{256} << 20;

// Bounds of the all-reduce plan cache. A plan holds about 3x its bytes
// (staging buffer plus the algorithm's inbox/outbox); plans larger than a
// quarter of the budget are built per call instead of cached.
constexpr size_t kMaxCachedPlans = 64;
constexpr int64_t kMaxCachedPlanBytes = int64_t{512} << 20;

// Send/Recv slots: prefix byte outside the ones Gloo's own collectives use
// (gloo/types.h, 0x01..0x08), then a per-peer, per-direction sequence number
// so the n-th Send to a peer pairs with its n-th Recv from us.
constexpr uint64_t kSendRecvSlotPrefix = uint64_t{0x53} << 56;


std::chrono::milliseconds ToChrono(absl::Duration d) {
  return std::chrono::milliseconds(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

// Converts the exception being handled into a Status starting with `describe`.
// Call only from inside a catch block.
absl::Status CurrentExceptionToStatus(const std::string& describe, absl::string_view op) {
  auto make = [&](absl::StatusCode code, absl::string_view what) {
    return absl::Status(code, absl::StrCat(describe, ": ", op, " failed: ", what));
  };
  try {
    throw;
  } catch (const gloo::IoException& e) {
    const std::string what = absl::AsciiStrToLower(e.what());
    const bool timeout = absl::StrContains(what, "timeout") || absl::StrContains(what, "timed out");
    return make(timeout ? absl::StatusCode::kDeadlineExceeded : absl::StatusCode::kUnavailable,
                e.what());
  } catch (const gloo::EnforceNotMet& e) {
    return make(absl::StatusCode::kInternal, e.what());
  } catch (const std::bad_alloc&) {
    return make(absl::StatusCode::kResourceExhausted, "out of memory");
  } catch (const std::exception& e) {
    return make(absl::StatusCode::kInternal, e.what());
  } catch (...) {
    return make(absl::StatusCode::kUnknown, "unknown exception");
  }
}

// One all-reduce of a fixed count, bound to its own staging buffer.
class AllReducePlan {
 public:
  // Gloo's algorithm destructors are declared noexcept(false).
  virtual ~AllReducePlan() noexcept(false) = default;
  // In place on `buffer` (count elements). Throws Gloo's exceptions.
  virtual void Run(void* buffer) = 0;
};

template <typename T, typename Algorithm>
class StagedAllReduce final : public AllReducePlan {
 public:
  StagedAllReduce(const std::shared_ptr<gloo::Context>& context, int count)
      : stage_(count), algorithm_(context, std::vector<T*>{stage_.data()}, count) {}

  void Run(void* buffer) override {
    const size_t bytes = stage_.size() * sizeof(T);
    std::memcpy(stage_.data(), buffer, bytes);
    algorithm_.run();
    std::memcpy(buffer, stage_.data(), bytes);
  }

 private:
  std::vector<T> stage_;  // declared first: the algorithm is bound to it
  Algorithm algorithm_;
};

template <typename T>
std::unique_ptr<AllReducePlan> MakePlan(const std::shared_ptr<gloo::Context>& context, int count,
                                        GlooAllReduceAlgorithm algorithm) {
  if (algorithm == GlooAllReduceAlgorithm::kHalvingDoubling) {
    return std::make_unique<StagedAllReduce<T, gloo::AllreduceHalvingDoubling<T>>>(context, count);
  }
  return std::make_unique<StagedAllReduce<T, gloo::AllreduceRing<T>>>(context, count);
}

// Destroys a plan, swallowing what Gloo's destructors might throw.
void DestroyPlan(std::unique_ptr<AllReducePlan> plan) {
  AllReducePlan* raw = plan.release();
  try {
    delete raw;
  } catch (...) {
  }
}

class GlooCommunicator final : public Communicator {
 public:
  GlooCommunicator(const GlooCommunicatorConfig& config, std::string describe,
                   std::shared_ptr<gloo::Context> context)
      : rank_(config.rank),
        size_(config.size),
        describe_(std::move(describe)),
        timeout_(ToChrono(config.timeout)),
        algorithm_(config.allreduce_algorithm),
        context_(std::move(context)),
        send_seq_(config.size, 0),
        recv_seq_(config.size, 0) {}

  ~GlooCommunicator() override {
    while (!lru_.empty()) {
      DestroyPlan(std::move(lru_.front().plan));
      lru_.pop_front();
    }
    try {
      context_.reset();
    } catch (...) {
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& Describe() const override { return describe_; }

  absl::Status AllReduceSum(void* buffer, int64_t count, DataType type) override {
    if (type != DataType::kF32 && type != DataType::kI32) {
      return absl::InvalidArgumentError(
          absl::StrCat(describe_, ": AllReduceSum supports f32 and i32, not ", DataTypeName(type)));
    }
    if (absl::Status s = CheckBuffer("AllReduceSum", buffer, count, type, 1); !s.ok()) return s;
    if (size_ == 1 || count == 0) return absl::OkStatus();
    const int64_t element = static_cast<int64_t>(DataTypeSize(type));
    const int64_t chunk = kMaxChunkBytes / element;
    return Guarded("AllReduceSum", [&] {
      auto* bytes = static_cast<uint8_t*>(buffer);
      for (int64_t done = 0; done < count; done += chunk) {
        const int64_t n = std::min(chunk, count - done);
        RunAllReduce(bytes + done * element, n, type);
      }
    });
  }

  absl::Status AllGather(const void* in, void* out, int64_t count, DataType type) override {
    if (absl::Status s = CheckBuffer("AllGather", in, count, type, 1); !s.ok()) return s;
    if (absl::Status s = CheckBuffer("AllGather", out, count, type, size_); !s.ok()) return s;
    if (count == 0) return absl::OkStatus();
    const size_t bytes = static_cast<size_t>(count) * DataTypeSize(type);
    if (size_ == 1) {
      std::memcpy(out, in, bytes);
      return absl::OkStatus();
    }
    return Guarded("AllGather", [&] {
      gloo::AllgatherOptions opts(context_);
      opts.setInput(static_cast<uint8_t*>(const_cast<void*>(in)), bytes);
      opts.setOutput(static_cast<uint8_t*>(out), bytes * size_);
      opts.setTimeout(timeout_);
      gloo::allgather(opts);
    });
  }

  absl::Status Broadcast(void* buffer, int64_t count, DataType type, int root) override {
    if (root < 0 || root >= size_) {
      return absl::InvalidArgumentError(
          absl::StrCat(describe_, ": Broadcast root ", root, " is not a rank of ", size_));
    }
    if (absl::Status s = CheckBuffer("Broadcast", buffer, count, type, 1); !s.ok()) return s;
    if (size_ == 1 || count == 0) return absl::OkStatus();
    const size_t bytes = static_cast<size_t>(count) * DataTypeSize(type);
    return Guarded("Broadcast", [&] {
      gloo::BroadcastOptions opts(context_);
      opts.setRoot(root);
      opts.setOutput(static_cast<uint8_t*>(buffer), bytes);
      opts.setTimeout(timeout_);
      gloo::broadcast(opts);
    });
  }

  absl::Status Send(const void* buffer, int64_t count, DataType type, int peer) override {
    if (absl::Status s = CheckPeer("Send", peer); !s.ok()) return s;
    if (absl::Status s = CheckBuffer("Send", buffer, count, type, 1); !s.ok()) return s;
    if (count == 0) return absl::OkStatus();
    const size_t bytes = static_cast<size_t>(count) * DataTypeSize(type);
    return Guarded("Send", [&] {
      auto unbound = context_->createUnboundBuffer(const_cast<void*>(buffer), bytes);
      unbound->send(peer, kSendRecvSlotPrefix | send_seq_[peer]++);
      if (!unbound->waitSend(timeout_)) {
        throw gloo::IoException(absl::StrCat("send to rank ", peer, " was aborted"));
      }
    });
  }

  absl::Status Recv(void* buffer, int64_t count, DataType type, int peer) override {
    if (absl::Status s = CheckPeer("Recv", peer); !s.ok()) return s;
    if (absl::Status s = CheckBuffer("Recv", buffer, count, type, 1); !s.ok()) return s;
    if (count == 0) return absl::OkStatus();
    const size_t bytes = static_cast<size_t>(count) * DataTypeSize(type);
    return Guarded("Recv", [&] {
      auto unbound = context_->createUnboundBuffer(buffer, bytes);
      unbound->recv(peer, kSendRecvSlotPrefix | recv_seq_[peer]++);
      if (!unbound->waitRecv(nullptr, timeout_)) {
        throw gloo::IoException(absl::StrCat("receive from rank ", peer, " was aborted"));
      }
    });
  }

  absl::Status Barrier() override {
    if (size_ == 1) return FailureStatus();
    return Guarded("Barrier", [&] {
      gloo::BarrierOptions opts(context_);
      opts.setTimeout(timeout_);
      gloo::barrier(opts);
    });
  }

 private:
  struct CachedPlan {
    std::tuple<int64_t, DataType, GlooAllReduceAlgorithm> key;
    int64_t bytes;
    std::unique_ptr<AllReducePlan> plan;
  };

  absl::Status FailureStatus() const {
    if (failure_.ok()) return failure_;
    return absl::FailedPreconditionError(
        absl::StrCat(describe_, ": unusable after an earlier failure (", failure_.message(), ")"));
  }

  // Runs `fn`, turning any exception into a Status that also marks the
  // communicator as failed.
  template <typename Fn>
  absl::Status Guarded(absl::string_view op, Fn&& fn) {
    if (!failure_.ok()) return FailureStatus();
    try {
      fn();
      return absl::OkStatus();
    } catch (...) {
      failure_ = CurrentExceptionToStatus(describe_, op);
      return failure_;
    }
  }

  absl::Status CheckBuffer(absl::string_view op, const void* buffer, int64_t count, DataType type,
                           int64_t multiple) const {
    const int64_t element = static_cast<int64_t>(DataTypeSize(type));
    if (element == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(describe_, ": ", op, ": unknown data type ", static_cast<int>(type)));
    }
    if (count < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(describe_, ": ", op, ": negative count ", count));
    }
    if (count > std::numeric_limits<int64_t>::max() / element / multiple) {
      return absl::InvalidArgumentError(
          absl::StrCat(describe_, ": ", op, ": count ", count, " overflows a byte size"));
    }
    if (count > 0 && buffer == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(describe_, ": ", op, ": null buffer for ", count, " elements"));
    }
    return FailureStatus();
  }

  absl::Status CheckPeer(absl::string_view op, int peer) const {
    if (peer < 0 || peer >= size_ || peer == rank_) {
      return absl::InvalidArgumentError(
          absl::StrCat(describe_, ": ", op, ": peer ", peer, " is not another rank of ", size_));
    }
    return absl::OkStatus();
  }

  // Runs one chunk (count fits the algorithms' int byte counts). Throws.
  void RunAllReduce(void* buffer, int64_t count, DataType type) {
    const int64_t bytes = count * static_cast<int64_t>(DataTypeSize(type));
    const GlooAllReduceAlgorithm algorithm = algorithm_ == GlooAllReduceAlgorithm::kAuto
                                                 ? ChooseGlooAllReduceAlgorithm(bytes, size_)
                                                 : algorithm_;
    auto make = [&] {
      return type == DataType::kF32
                 ? MakePlan<float>(context_, static_cast<int>(count), algorithm)
                 : MakePlan<int32_t>(context_, static_cast<int>(count), algorithm);
    };
    const int64_t footprint = 3 * bytes;
    if (footprint > kMaxCachedPlanBytes / 4) {
      std::unique_ptr<AllReducePlan> plan = make();
      plan->Run(buffer);
      DestroyPlan(std::move(plan));
      return;
    }
    const auto key = std::make_tuple(count, type, algorithm);
    auto it = index_.find(key);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);  // most recently used first
      it->second->plan->Run(buffer);
      return;
    }
    // Evict least recently used plans. Every rank makes the same calls in the
    // same order, so every rank evicts the same plans.
    while (!lru_.empty() &&
           (lru_.size() >= kMaxCachedPlans || cached_bytes_ + footprint > kMaxCachedPlanBytes)) {
      cached_bytes_ -= lru_.back().bytes;
      index_.erase(lru_.back().key);
      DestroyPlan(std::move(lru_.back().plan));
      lru_.pop_back();
    }
    lru_.push_front(CachedPlan{key, footprint, make()});
    index_[key] = lru_.begin();
    cached_bytes_ += footprint;
    lru_.front().plan->Run(buffer);
  }

  const int rank_;
  const int size_;
  const std::string describe_;
  const std::chrono::milliseconds timeout_;
  const GlooAllReduceAlgorithm algorithm_;
  std::shared_ptr<gloo::Context> context_;  // null when size_ == 1
  std::vector<uint64_t> send_seq_;          // per peer: Sends so far
  std::vector<uint64_t> recv_seq_;          // per peer: Recvs so far
  absl::Status failure_;                    // first failure; OK while usable

  std::list<CachedPlan> lru_;  // most recently used first
  absl::flat_hash_map<std::tuple<int64_t, DataType, GlooAllReduceAlgorithm>,
                      std::list<CachedPlan>::iterator>
      index_;
  int64_t cached_bytes_ = 0;
};

}  // namespace

const char* GlooAllReduceAlgorithmName(GlooAllReduceAlgorithm algorithm) {
  switch (algorithm) {
    case GlooAllReduceAlgorithm::kAuto:
      return "auto";
    case GlooAllReduceAlgorithm::kRing:
      return "ring";
    case GlooAllReduceAlgorithm::kHalvingDoubling:
      return "halving-doubling";
  }
  return "?";
}

GlooAllReduceAlgorithm ChooseGlooAllReduceAlgorithm(int64_t bytes, int ranks) {
  return bytes < kRingMaxBytes ? GlooAllReduceAlgorithm::kRing
                               : GlooAllReduceAlgorithm::kHalvingDoubling;
}

absl::StatusOr<std::unique_ptr<Communicator>> CreateGlooCommunicator(
    const GlooCommunicatorConfig& config) {
  const std::string host = HostName();
  const std::string describe = absl::StrCat("gloo/tcp rank ", config.rank, " of ", config.size,
                                            " on ", host, " (", config.label, ")");
  if (config.size < 1 || config.rank < 0 || config.rank >= config.size) {
    return absl::InvalidArgumentError(
        absl::StrCat(describe, ": rank must be in [0, size) and size at least 1"));
  }
  if (config.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(describe, ": timeout must be positive"));
  }
  if (config.size == 1) {
    return std::unique_ptr<Communicator>(new GlooCommunicator(config, describe, nullptr));
  }
  if (config.store == nullptr || config.prefix.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(describe, ": a group of ", config.size, " needs a store and a key prefix"));
  }

  GlooStoreAdapter store(config.store, config.prefix, config.timeout);
  std::shared_ptr<gloo::Context> context;
  try {
    gloo::transport::tcp::attr attr;
    attr.hostname = config.bind_address.empty() ? host : config.bind_address;
    auto device = gloo::transport::tcp::CreateDevice(attr);
    auto rendezvous = std::make_shared<gloo::rendezvous::Context>(config.rank, config.size);
    rendezvous->setTimeout(ToChrono(config.timeout));
    rendezvous->connectFullMesh(store, device);
    context = std::move(rendezvous);
  } catch (...) {
    if (!store.first_error().ok()) {
      return absl::Status(store.first_error().code(),
                          absl::StrCat(describe, ": rendezvous under '", config.prefix,
                                       "' failed: ", store.first_error().message()));
    }
    return CurrentExceptionToStatus(describe, "rendezvous");
  }
  return std::unique_ptr<Communicator>(new GlooCommunicator(config, describe, std::move(context)));
}

}  // namespace strata::parallel
