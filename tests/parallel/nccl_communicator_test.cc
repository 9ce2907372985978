// NcclCommunicator: host logic (always), the no-GPU failure path (machines
// without a GPU, e.g. CI), and collectives against a host reference (skipped
// without a GPU; the multi-rank part needs >= 2 GPUs, ranks as threads).
#include "parallel/nccl_communicator.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "parallel/in_memory_store.h"

namespace strata::parallel {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Number of usable GPUs; `reason` says why there are none.
int GpuCount(std::string* reason) {
  int count = 0;
  cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    cudaGetLastError();
    *reason = absl::StrCat(cudaGetErrorName(error), ": ", cudaGetErrorString(error));
    return 0;
  }
  if (count == 0) *reason = "cudaGetDeviceCount found 0 devices";
  return count;
}

#define SKIP_WITHOUT_GPUS(n)                                                        \
  do {                                                                              \
    std::string reason_;                                                            \
    const int count_ = GpuCount(&reason_);                                          \
    if (count_ == 0) GTEST_SKIP() << "no CUDA GPU present: " << reason_;            \
    if (count_ < (n)) GTEST_SKIP() << "needs " << (n) << " GPUs, found " << count_; \
  } while (0)

NcclCommunicatorConfig ValidConfig(KeyValueStore* store) {
  NcclCommunicatorConfig config;
  config.store = store;
  config.prefix = "test/gen-0";
  config.rank = 0;
  config.size = 1;
  config.device = 0;
  config.timeout = absl::Seconds(30);
  config.sync_timeout = absl::Seconds(30);
  config.label = "test";
  return config;
}

// ---- (a) host logic ----

TEST(NcclHostLogicTest, MapsEveryDataType) {
  EXPECT_EQ(ToNcclDataType(DataType::kF32), ncclFloat32);
  EXPECT_EQ(ToNcclDataType(DataType::kF16), ncclFloat16);
  EXPECT_EQ(ToNcclDataType(DataType::kBF16), ncclBfloat16);
  EXPECT_EQ(ToNcclDataType(DataType::kI32), ncclInt32);
  EXPECT_EQ(ToNcclDataType(DataType::kU8), ncclUint8);
}

TEST(NcclHostLogicTest, ByteCounts) {
  EXPECT_EQ(*NcclByteCount(0, DataType::kF32), 0u);
  EXPECT_EQ(*NcclByteCount(7, DataType::kF32), 28u);
  EXPECT_EQ(*NcclByteCount(7, DataType::kI32), 28u);
  EXPECT_EQ(*NcclByteCount(7, DataType::kF16), 14u);
  EXPECT_EQ(*NcclByteCount(7, DataType::kBF16), 14u);
  EXPECT_EQ(*NcclByteCount(7, DataType::kU8), 7u);
  EXPECT_EQ(NcclByteCount(-1, DataType::kU8).status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<size_t> overflow =
      NcclByteCount(std::numeric_limits<int64_t>::max(), DataType::kF32);
  if (sizeof(size_t) <= sizeof(int64_t)) {
    EXPECT_EQ(overflow.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(overflow.status().message()), HasSubstr("overflow"));
  }
}

TEST(NcclHostLogicTest, ValidatesConfig) {
  InMemoryStore store;
  EXPECT_TRUE(ValidateNcclConfig(ValidConfig(&store)).ok());
  struct Case {
    const char* field;
    void (*mutate)(NcclCommunicatorConfig&);
  };
  const Case cases[] = {
      {"store", [](NcclCommunicatorConfig& c) { c.store = nullptr; }},
      {"prefix", [](NcclCommunicatorConfig& c) { c.prefix.clear(); }},
      {"size", [](NcclCommunicatorConfig& c) { c.size = 0; }},
      {"rank", [](NcclCommunicatorConfig& c) { c.rank = -1; }},
      {"rank", [](NcclCommunicatorConfig& c) { c.rank = 1; }},
      {"device", [](NcclCommunicatorConfig& c) { c.device = -1; }},
      {"timeout", [](NcclCommunicatorConfig& c) { c.timeout = absl::ZeroDuration(); }},
      {"sync_timeout", [](NcclCommunicatorConfig& c) { c.sync_timeout = absl::Seconds(-1); }},
  };
  for (const Case& c : cases) {
    NcclCommunicatorConfig config = ValidConfig(&store);
    c.mutate(config);
    absl::Status status = ValidateNcclConfig(config);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(std::string(status.message()),
                HasSubstr(absl::StrCat("NcclCommunicatorConfig.", c.field)));
  }
}

TEST(NcclHostLogicTest, CreateRejectsABadConfigBeforeTouchingCuda) {
  InMemoryStore store;
  NcclCommunicatorConfig config = ValidConfig(&store);
  config.rank = 2;
  config.size = 2;
  absl::StatusOr<std::unique_ptr<NcclCommunicator>> comm = CreateNcclCommunicator(config);
  ASSERT_FALSE(comm.ok());
  EXPECT_EQ(comm.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(comm.status().message()), StartsWith("nccl rank 2 of 2 on "));
  EXPECT_THAT(std::string(comm.status().message()), HasSubstr("rank 2 is outside [0, 2)"));
  EXPECT_EQ(store.size(), 0u);
}

TEST(NcclHostLogicTest, ValidatesPeers) {
  EXPECT_TRUE(ValidateNcclPeer("peer", 1, 0, 2, false).ok());
  EXPECT_TRUE(ValidateNcclPeer("root", 0, 0, 2, true).ok());
  EXPECT_EQ(ValidateNcclPeer("peer", 0, 0, 2, false).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateNcclPeer("peer", 2, 0, 2, false).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateNcclPeer("root", -1, 0, 2, true).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ValidateNcclPeer("root", 5, 0, 2, true).message()),
              HasSubstr("root 5 is outside [0, 2)"));
}

TEST(NcclHostLogicTest, DescribeFormat) {
  EXPECT_EQ(FormatNcclDescription(1, 2, "host-a", 1, "tp group replica-0/gen-3/tp/stage0"),
            "nccl rank 1 of 2 on host-a cuda:1 (tp group replica-0/gen-3/tp/stage0)");
  EXPECT_EQ(FormatNcclDescription(0, 4, "h", 3, ""), "nccl rank 0 of 4 on h cuda:3");
  EXPECT_FALSE(NcclHostName().empty());
}

TEST(NcclHostLogicTest, MapsResultsToStatusCodes) {
  EXPECT_EQ(NcclResultToStatusCode(ncclSuccess), absl::StatusCode::kOk);
  EXPECT_EQ(NcclResultToStatusCode(ncclSystemError), absl::StatusCode::kUnavailable);
  EXPECT_EQ(NcclResultToStatusCode(ncclRemoteError), absl::StatusCode::kUnavailable);
  EXPECT_EQ(NcclResultToStatusCode(ncclInvalidArgument), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NcclResultToStatusCode(ncclInvalidUsage), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(NcclResultToStatusCode(ncclUnhandledCudaError), absl::StatusCode::kInternal);
  EXPECT_EQ(NcclResultToStatusCode(ncclInternalError), absl::StatusCode::kInternal);
}

TEST(NcclHostLogicTest, UniqueIdRoundTripsThroughTheStoreFormat) {
  EXPECT_EQ(NcclUniqueIdKey("replica-0/gen-3/tp/stage0"),
            "replica-0/gen-3/tp/stage0/nccl_unique_id");
  ncclUniqueId id;
  for (size_t i = 0; i < sizeof(id.internal); ++i) id.internal[i] = static_cast<char>(i * 7);
  const std::string bytes = SerializeNcclUniqueId(id);
  EXPECT_EQ(bytes.size(), sizeof(id.internal));
  absl::StatusOr<ncclUniqueId> parsed = ParseNcclUniqueId(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(std::memcmp(parsed->internal, id.internal, sizeof(id.internal)), 0);
  EXPECT_EQ(ParseNcclUniqueId("short").status().code(), absl::StatusCode::kDataLoss);
}

// ---- (b) no GPU: a clean FAILED_PRECONDITION, not a crash ----

TEST(NcclNoGpuTest, CreateFailsWithFailedPreconditionNamingTheDevice) {
  std::string reason;
  if (GpuCount(&reason) > 0) GTEST_SKIP() << "a CUDA GPU is present";
  for (int device : {0, 3}) {
    InMemoryStore store;
    NcclCommunicatorConfig config = ValidConfig(&store);
    config.device = device;
    absl::StatusOr<std::unique_ptr<NcclCommunicator>> comm = CreateNcclCommunicator(config);
    ASSERT_FALSE(comm.ok());
    EXPECT_EQ(comm.status().code(), absl::StatusCode::kFailedPrecondition) << comm.status();
    EXPECT_THAT(std::string(comm.status().message()), StartsWith("nccl rank 0 of 1 on "));
    EXPECT_THAT(std::string(comm.status().message()), HasSubstr("no CUDA device: "));
    EXPECT_THAT(std::string(comm.status().message()), HasSubstr(absl::StrCat("cuda:", device)));
    EXPECT_EQ(store.size(), 0u) << "failed before publishing a unique id";
  }
}

// ---- (c) GPU: every op against a host reference ----

// Device memory freed on scope exit.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (cudaMalloc(&ptr_, std::max<size_t>(bytes, 1)) != cudaSuccess) ptr_ = nullptr;
  }
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }
  bool Upload(const std::vector<uint8_t>& host) const {
    return cudaMemcpy(ptr_, host.data(), host.size(), cudaMemcpyHostToDevice) == cudaSuccess;
  }
  std::vector<uint8_t> Download() const {
    std::vector<uint8_t> host(bytes_);
    if (cudaMemcpy(host.data(), ptr_, bytes_, cudaMemcpyDeviceToHost) != cudaSuccess) host.clear();
    return host;
  }
  bool Poison() const { return cudaMemset(ptr_, 0xA5, bytes_) == cudaSuccess; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_;
};

// Random finite values of `type` as bytes. With `small_integers` every value
// is an integer in [-8, 8] (u8: [0, 8]) so that sums over a few ranks are exact
// in any order.
std::vector<uint8_t> RandomBytes(DataType type, int64_t count, uint32_t seed, bool small_integers) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> real(-1.0f, 1.0f);
  std::uniform_int_distribution<int> small(-8, 8);
  std::vector<uint8_t> bytes(static_cast<size_t>(count) * DataTypeSize(type));
  for (int64_t i = 0; i < count; ++i) {
    uint8_t* at = bytes.data() + i * DataTypeSize(type);
    const float f = small_integers ? static_cast<float>(small(rng)) : real(rng);
    switch (type) {
      case DataType::kF32:
        std::memcpy(at, &f, 4);
        break;
      case DataType::kI32: {
        const int32_t v = small_integers ? small(rng) : static_cast<int32_t>(rng());
        std::memcpy(at, &v, 4);
        break;
      }
      case DataType::kBF16: {  // top half of the float: exact for small integers
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        const uint16_t half = static_cast<uint16_t>(bits >> 16);
        std::memcpy(at, &half, 2);
        break;
      }
      case DataType::kF16: {  // sign | exponent < 31 | mantissa: always finite
        uint16_t half = static_cast<uint16_t>(rng()) & 0xFBFF;
        if (small_integers) {  // the integer k encoded exactly
          const int k = small(rng);
          half = 0;
          if (k != 0) {
            int a = k < 0 ? -k : k, e = 0;
            while ((a >> e) > 1) ++e;
            const uint16_t mant = static_cast<uint16_t>((a - (1 << e)) << (10 - e));
            half = static_cast<uint16_t>(((e + 15) << 10) | mant | (k < 0 ? 0x8000 : 0));
          }
        }
        std::memcpy(at, &half, 2);
        break;
      }
      case DataType::kU8:
        at[0] = static_cast<uint8_t>(small_integers ? small(rng) + 8 : rng());
        break;
    }
  }
  return bytes;
}

constexpr DataType kAllTypes[] = {DataType::kF32, DataType::kF16, DataType::kBF16, DataType::kI32,
                                  DataType::kU8};
constexpr int64_t kOddCounts[] = {1, 7, 1001, 65537};

TEST(NcclCommunicatorGpuTest, SizeOneCommunicatorMatchesHostReference) {
  SKIP_WITHOUT_GPUS(1);
  InMemoryStore store;
  absl::StatusOr<std::unique_ptr<NcclCommunicator>> created =
      CreateNcclCommunicator(ValidConfig(&store));
  ASSERT_TRUE(created.ok()) << created.status();
  NcclCommunicator& comm = **created;
  EXPECT_EQ(store.size(), 1u);
  EXPECT_THAT(comm.Describe(), StartsWith("nccl rank 0 of 1 on "));
  EXPECT_THAT(comm.Describe(), HasSubstr("cuda:0 (test)"));
  EXPECT_NE(comm.stream(), nullptr);

  uint32_t seed = 1;
  for (DataType type : kAllTypes) {
    for (int64_t count : kOddCounts) {
      SCOPED_TRACE(absl::StrCat(DataTypeName(type), " x ", count));
      const std::vector<uint8_t> input = RandomBytes(type, count, seed++, false);
      DeviceBuffer a(input.size()), out(input.size());
      ASSERT_NE(a.get(), nullptr);
      ASSERT_NE(out.get(), nullptr);

      // One rank: the sum is the input itself, bit for bit.
      ASSERT_TRUE(a.Upload(input));
      ASSERT_TRUE(comm.AllReduceSum(a.get(), count, type).ok());
      ASSERT_TRUE(comm.Synchronize().ok());
      EXPECT_EQ(a.Download(), input) << "AllReduceSum";

      ASSERT_TRUE(out.Poison());
      ASSERT_TRUE(comm.AllGather(a.get(), out.get(), count, type).ok());
      ASSERT_TRUE(comm.Synchronize().ok());
      EXPECT_EQ(out.Download(), input) << "AllGather";

      ASSERT_TRUE(comm.Broadcast(a.get(), count, type, 0).ok());
      ASSERT_TRUE(comm.Synchronize().ok());
      EXPECT_EQ(a.Download(), input) << "Broadcast";
    }
  }
  EXPECT_TRUE(comm.Barrier().ok());

  // Argument errors name the rank and leave the communicator usable.
  DeviceBuffer small(64);
  absl::Status self_send = comm.Send(small.get(), 4, DataType::kF32, 0);
  EXPECT_EQ(self_send.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(self_send.message()), StartsWith(comm.Describe()));
  EXPECT_EQ(comm.Recv(small.get(), 4, DataType::kF32, 0).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(comm.Broadcast(small.get(), 4, DataType::kF32, 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(comm.AllReduceSum(nullptr, 4, DataType::kF32).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(comm.AllReduceSum(small.get(), -1, DataType::kF32).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(comm.AllGather(small.get(), small.get(), 4, DataType::kF32).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(comm.AllReduceSum(small.get(), 0, DataType::kF32).ok());
  EXPECT_TRUE(comm.Barrier().ok());
}

TEST(NcclCommunicatorGpuTest, NoGpuIndexBeyondTheVisibleOnes) {
  SKIP_WITHOUT_GPUS(1);
  std::string reason;
  InMemoryStore store;
  NcclCommunicatorConfig config = ValidConfig(&store);
  config.device = GpuCount(&reason);
  absl::StatusOr<std::unique_ptr<NcclCommunicator>> comm = CreateNcclCommunicator(config);
  ASSERT_FALSE(comm.ok());
  EXPECT_EQ(comm.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(comm.status().message()),
              HasSubstr(absl::StrCat("cuda:", config.device)));
}

TEST(NcclCommunicatorGpuTest, InitTimesOutWhenAPeerNeverJoins) {
  SKIP_WITHOUT_GPUS(1);
  InMemoryStore store;
  NcclCommunicatorConfig config = ValidConfig(&store);
  config.size = 2;  // rank 1 never comes
  config.timeout = absl::Seconds(3);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<NcclCommunicator>> comm = CreateNcclCommunicator(config);
  ASSERT_FALSE(comm.ok());
  EXPECT_EQ(comm.status().code(), absl::StatusCode::kDeadlineExceeded) << comm.status();
  EXPECT_THAT(std::string(comm.status().message()), StartsWith("nccl rank 0 of 2 on "));
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
}

TEST(NcclCommunicatorGpuTest, WaitingForAMissingUniqueIdTimesOut) {
  SKIP_WITHOUT_GPUS(1);
  InMemoryStore store;
  NcclCommunicatorConfig config = ValidConfig(&store);
  config.size = 2;
  config.rank = 1;  // rank 0 never publishes
  config.timeout = absl::Milliseconds(200);
  absl::StatusOr<std::unique_ptr<NcclCommunicator>> comm = CreateNcclCommunicator(config);
  ASSERT_FALSE(comm.ok());
  EXPECT_EQ(comm.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(comm.status().message()), HasSubstr("nccl_unique_id"));
}

// Element-wise sum of `parts` (all of one type, small integers: exact).
std::vector<uint8_t> HostSum(DataType type, const std::vector<std::vector<uint8_t>>& parts) {
  std::vector<uint8_t> sum = parts[0];
  const size_t n = sum.size() / DataTypeSize(type);
  for (size_t p = 1; p < parts.size(); ++p) {
    for (size_t i = 0; i < n; ++i) {
      if (type == DataType::kF32) {
        float a, b;
        std::memcpy(&a, &sum[i * 4], 4);
        std::memcpy(&b, &parts[p][i * 4], 4);
        a += b;
        std::memcpy(&sum[i * 4], &a, 4);
      } else if (type == DataType::kI32) {
        int32_t a, b;
        std::memcpy(&a, &sum[i * 4], 4);
        std::memcpy(&b, &parts[p][i * 4], 4);
        a += b;
        std::memcpy(&sum[i * 4], &a, 4);
      } else if (type == DataType::kU8) {
        sum[i] = static_cast<uint8_t>(sum[i] + parts[p][i]);
      }
    }
  }
  return sum;
}

TEST(NcclCommunicatorGpuTest, RanksAsThreadsMatchHostReference) {
  SKIP_WITHOUT_GPUS(2);
  std::string unused;
  const int size = std::min(GpuCount(&unused), 4);
  InMemoryStore store;
  constexpr int64_t kCount = 1001;
  const DataType kTypes[] = {DataType::kF32, DataType::kI32, DataType::kU8};

  // inputs[type][rank]
  std::vector<std::vector<std::vector<uint8_t>>> inputs;
  for (DataType type : kTypes) {
    std::vector<std::vector<uint8_t>> per_rank;
    for (int r = 0; r < size; ++r) {
      per_rank.push_back(RandomBytes(type, kCount, 100 + r * 7 + static_cast<int>(type), true));
    }
    inputs.push_back(std::move(per_rank));
  }

  std::vector<std::string> failures(size);
  auto run_rank = [&](int rank) {
    auto fail = [&](const std::string& what) {
      if (failures[rank].empty()) failures[rank] = what;
    };
    NcclCommunicatorConfig config = ValidConfig(&store);
    config.prefix = "threads/gen-0";
    config.rank = rank;
    config.size = size;
    config.device = rank;
    absl::StatusOr<std::unique_ptr<NcclCommunicator>> created = CreateNcclCommunicator(config);
    if (!created.ok()) return fail(created.status().ToString());
    NcclCommunicator& comm = **created;
    for (size_t t = 0; t < std::size(kTypes); ++t) {
      const DataType type = kTypes[t];
      const std::string name = DataTypeName(type);
      const std::vector<uint8_t>& mine = inputs[t][rank];
      DeviceBuffer a(mine.size()), gathered(mine.size() * size);
      if (a.get() == nullptr || gathered.get() == nullptr) return fail("cudaMalloc");

      if (!a.Upload(mine)) return fail("upload");
      if (absl::Status s = comm.AllReduceSum(a.get(), kCount, type); !s.ok()) {
        return fail(s.ToString());
      }
      if (absl::Status s = comm.Synchronize(); !s.ok()) return fail(s.ToString());
      if (a.Download() != HostSum(type, inputs[t])) fail("AllReduceSum " + name);

      if (!a.Upload(mine) || !gathered.Poison()) return fail("upload");
      if (absl::Status s = comm.AllGather(a.get(), gathered.get(), kCount, type); !s.ok()) {
        return fail(s.ToString());
      }
      if (absl::Status s = comm.Synchronize(); !s.ok()) return fail(s.ToString());
      std::vector<uint8_t> expected;
      for (const auto& part : inputs[t]) expected.insert(expected.end(), part.begin(), part.end());
      if (gathered.Download() != expected) fail("AllGather " + name);

      const int root = size - 1;
      if (!a.Upload(mine)) return fail("upload");
      if (absl::Status s = comm.Broadcast(a.get(), kCount, type, root); !s.ok()) {
        return fail(s.ToString());
      }
      if (absl::Status s = comm.Synchronize(); !s.ok()) return fail(s.ToString());
      if (a.Download() != inputs[t][root]) fail("Broadcast " + name);

      // A chain 0 -> 1 -> ... -> size-1: each rank forwards what it received.
      if (!a.Upload(mine)) return fail("upload");
      if (rank > 0) {
        if (absl::Status s = comm.Recv(a.get(), kCount, type, rank - 1); !s.ok()) {
          return fail(s.ToString());
        }
      }
      if (rank + 1 < size) {
        if (absl::Status s = comm.Send(a.get(), kCount, type, rank + 1); !s.ok()) {
          return fail(s.ToString());
        }
      }
      if (absl::Status s = comm.Synchronize(); !s.ok()) return fail(s.ToString());
      if (a.Download() != inputs[t][0]) fail("Send/Recv chain " + name);
    }
    if (absl::Status s = comm.Barrier(); !s.ok()) fail(s.ToString());
  };

  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) threads.emplace_back(run_rank, r);
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < size; ++r) EXPECT_EQ(failures[r], "") << "rank " << r;
}

// ---- (d) GPU: a bound compute stream orders the ops without host syncs ----

// A host function that holds its stream for `*static_cast<int*>(ms)` ms, so
// that work behind it on that stream starts late: an op that does not wait
// for it (a missing event) reads or writes too early and the check fails.
void CUDART_CB HoldStream(void* ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(*static_cast<int*>(ms)));
}

// Pinned host memory (cudaMemcpyAsync to it does not synchronise the host).
class PinnedBuffer {
 public:
  explicit PinnedBuffer(size_t bytes) : bytes_(bytes) {
    if (cudaMallocHost(&ptr_, std::max<size_t>(bytes, 1)) != cudaSuccess) ptr_ = nullptr;
  }
  ~PinnedBuffer() {
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  uint8_t* get() const { return static_cast<uint8_t*>(ptr_); }
  // Index of the first byte != value, or -1.
  int64_t FirstNot(uint8_t value) const {
    for (size_t i = 0; i < bytes_; ++i) {
      if (get()[i] != value) return static_cast<int64_t>(i);
    }
    return -1;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_;
};

// One GPU, size-1 communicator: compute stream writes `in` (after being held),
// the gather copies it to `out` on the communicator's stream (also held), the
// compute stream reads `out` back. No host synchronisation until the end.
TEST(NcclCommunicatorGpuTest, BoundStreamOrdersCollectivesAfterAndBeforeComputeWork) {
  SKIP_WITHOUT_GPUS(1);
  InMemoryStore store;
  absl::StatusOr<std::unique_ptr<NcclCommunicator>> created =
      CreateNcclCommunicator(ValidConfig(&store));
  ASSERT_TRUE(created.ok()) << created.status();
  NcclCommunicator& comm = **created;
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  cudaStream_t compute = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_TRUE(comm.BindStream(compute).ok());
  EXPECT_EQ(comm.bound_stream(), compute);

  constexpr size_t kBytes = size_t{16} << 20;
  constexpr int kSteps = 3;
  DeviceBuffer in(kBytes), out(kBytes), sum(kBytes);
  ASSERT_NE(in.get(), nullptr);
  ASSERT_NE(out.get(), nullptr);
  ASSERT_NE(sum.get(), nullptr);
  ASSERT_TRUE(in.Poison() && out.Poison() && sum.Poison());  // 0xA5, synchronous
  std::vector<std::unique_ptr<PinnedBuffer>> gathered, reduced;
  int hold_ms = 200;
  for (int step = 0; step < kSteps; ++step) {
    const uint8_t value = static_cast<uint8_t>(0x10 + step);
    gathered.push_back(std::make_unique<PinnedBuffer>(kBytes));
    reduced.push_back(std::make_unique<PinnedBuffer>(kBytes));
    ASSERT_NE(gathered.back()->get(), nullptr);
    ASSERT_NE(reduced.back()->get(), nullptr);
    // Compute writes `in` late: the gather must wait for it.
    if (step == 0) ASSERT_EQ(cudaLaunchHostFunc(compute, HoldStream, &hold_ms), cudaSuccess);
    ASSERT_EQ(cudaMemsetAsync(in.get(), value, kBytes, compute), cudaSuccess);
    ASSERT_EQ(cudaMemsetAsync(sum.get(), value, kBytes, compute), cudaSuccess);
    // The communicator's stream starts late: compute's copy-out must wait for it.
    if (step == 0) ASSERT_EQ(cudaLaunchHostFunc(comm.stream(), HoldStream, &hold_ms), cudaSuccess);
    ASSERT_TRUE(comm.AllGather(in.get(), out.get(), static_cast<int64_t>(kBytes), DataType::kU8).ok());
    ASSERT_TRUE(comm.AllReduceSum(sum.get(), static_cast<int64_t>(kBytes), DataType::kU8).ok());
    ASSERT_EQ(cudaMemcpyAsync(gathered.back()->get(), out.get(), kBytes, cudaMemcpyDeviceToHost, compute),
              cudaSuccess);
    ASSERT_EQ(cudaMemcpyAsync(reduced.back()->get(), sum.get(), kBytes, cudaMemcpyDeviceToHost, compute),
              cudaSuccess);
    // The next step's memset overwrites `in` and `sum`: it must not run
    // before this step's collectives read them.
  }
  ASSERT_EQ(cudaStreamSynchronize(compute), cudaSuccess);
  ASSERT_TRUE(comm.Synchronize().ok());
  for (int step = 0; step < kSteps; ++step) {
    const uint8_t value = static_cast<uint8_t>(0x10 + step);
    EXPECT_EQ(gathered[step]->FirstNot(value), -1) << "AllGather, step " << step;
    EXPECT_EQ(reduced[step]->FirstNot(value), -1) << "AllReduceSum (one rank), step " << step;
  }

  // Unbinding returns to the plain contract; a second bind works.
  EXPECT_TRUE(comm.BindStream(nullptr).ok());
  EXPECT_EQ(comm.bound_stream(), nullptr);
  EXPECT_TRUE(comm.BindStream(compute).ok());
  EXPECT_TRUE(comm.BindStream(nullptr).ok());
  created->reset();  // the communicator goes before the stream it was bound to
  EXPECT_EQ(cudaStreamDestroy(compute), cudaSuccess);
}

// Two or more GPUs, ranks as threads: each rank's compute stream writes its
// contribution late (held longer on higher ranks), all-reduces on bound
// streams, forwards along a Send/Recv chain and reads back on the compute
// stream, with no host synchronisation in between.
TEST(NcclCommunicatorGpuTest, RanksAsThreadsAllReduceAndSendRecvOnBoundStreams) {
  SKIP_WITHOUT_GPUS(2);
  std::string unused;
  const int size = std::min(GpuCount(&unused), 4);
  InMemoryStore store;
  constexpr int64_t kCount = int64_t{1} << 20;  // int32 elements
  constexpr size_t kBytes = kCount * sizeof(int32_t);
  std::vector<std::string> failures(size);
  auto run_rank = [&](int rank) {
    auto fail = [&](const std::string& what) {
      if (failures[rank].empty()) failures[rank] = what;
    };
    NcclCommunicatorConfig config = ValidConfig(&store);
    config.prefix = "bound-threads/gen-0";
    config.rank = rank;
    config.size = size;
    config.device = rank;
    absl::StatusOr<std::unique_ptr<NcclCommunicator>> created = CreateNcclCommunicator(config);
    if (!created.ok()) return fail(created.status().ToString());
    NcclCommunicator& comm = **created;
    if (cudaSetDevice(rank) != cudaSuccess) return fail("cudaSetDevice");
    cudaStream_t compute = nullptr;
    if (cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking) != cudaSuccess) return fail("stream");
    if (absl::Status s = comm.BindStream(compute); !s.ok()) return fail(s.ToString());
    {
      DeviceBuffer a(kBytes), chain(kBytes);
      PinnedBuffer reduced(kBytes), forwarded(kBytes);
      if (a.get() == nullptr || chain.get() == nullptr || reduced.get() == nullptr ||
          forwarded.get() == nullptr) {
        return fail("allocation");
      }
      if (!a.Poison() || !chain.Poison()) return fail("poison");
      int hold_ms = 100 + 100 * rank;
      // Every byte of rank r's int32s is r + 1, so the sum's bytes are
      // 1 + 2 + ... + size (no carries for size <= 4).
      if (cudaLaunchHostFunc(compute, HoldStream, &hold_ms) != cudaSuccess) return fail("host func");
      if (cudaMemsetAsync(a.get(), rank + 1, kBytes, compute) != cudaSuccess) return fail("memset");
      if (absl::Status s = comm.AllReduceSum(a.get(), kCount, DataType::kI32); !s.ok()) {
        return fail(s.ToString());
      }
      if (cudaMemcpyAsync(reduced.get(), a.get(), kBytes, cudaMemcpyDeviceToHost, compute) != cudaSuccess) {
        return fail("copy out");
      }
      // Pipeline-style chain: rank 0's compute writes 0x77 late, then every
      // rank receives from the previous one and sends to the next.
      if (rank == 0) {
        if (cudaLaunchHostFunc(compute, HoldStream, &hold_ms) != cudaSuccess) return fail("host func");
        if (cudaMemsetAsync(chain.get(), 0x77, kBytes, compute) != cudaSuccess) return fail("memset");
      } else if (absl::Status s = comm.Recv(chain.get(), kCount, DataType::kI32, rank - 1); !s.ok()) {
        return fail(s.ToString());
      }
      if (rank + 1 < size) {
        if (absl::Status s = comm.Send(chain.get(), kCount, DataType::kI32, rank + 1); !s.ok()) {
          return fail(s.ToString());
        }
      }
      if (cudaMemcpyAsync(forwarded.get(), chain.get(), kBytes, cudaMemcpyDeviceToHost, compute) !=
          cudaSuccess) {
        return fail("copy out");
      }
      if (cudaStreamSynchronize(compute) != cudaSuccess) return fail("cudaStreamSynchronize");
      if (absl::Status s = comm.Synchronize(); !s.ok()) return fail(s.ToString());
      const int expected = size * (size + 1) / 2;
      if (int64_t at = reduced.FirstNot(static_cast<uint8_t>(expected)); at >= 0) {
        fail(absl::StrCat("AllReduceSum: byte ", at, " is ", int{reduced.get()[at]}, ", expected ", expected));
      }
      if (int64_t at = forwarded.FirstNot(0x77); at >= 0) {
        fail(absl::StrCat("Send/Recv chain: byte ", at, " is ", int{forwarded.get()[at]}));
      }
    }
    created->reset();
    cudaStreamDestroy(compute);
  };
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) threads.emplace_back(run_rank, r);
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < size; ++r) EXPECT_EQ(failures[r], "") << "rank " << r;
}

}  // namespace
}  // namespace strata::parallel
