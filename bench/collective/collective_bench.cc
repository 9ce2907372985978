// Collective benchmark in the style of nccl-tests: latency and bus bandwidth
// by message size for one communicator implementation, ranks as real
// processes of this machine.
//
//   collective_bench --ranks 2 --op all_reduce [--transport gloo|shm]
//                    [--min-bytes 8] [--max-bytes 64M] [--factor 4]
//                    [--iters 200] [--warmup 20] [--repeats 3]
//                    [--algorithm auto|ring|halving_doubling]
//
// The parent forks --ranks children before it starts any thread; they meet
// through a directory of files (FileStore below) and build the communicator
// the worker uses. Every size is checked once for correctness (exact integer
// sums in f32) and then timed --repeats times over --iters calls after a
// barrier; rank 0 prints the median per-call time, algorithm bandwidth
// (bytes / time) and bus bandwidth (algbw x the nccl-tests factor:
// 2(n-1)/n all-reduce, (n-1)/n all-gather, 1 broadcast and send/recv) and the
// number of wrong elements. Exit status is non-zero when any rank fails or
// any element is wrong.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "parallel/communicator.h"
#include "parallel/file_store.h"
#include "parallel/gloo_communicator.h"
#include "parallel/key_value_store.h"
#include "parallel/shared_memory_communicator.h"

namespace strata::parallel {
namespace {

enum class Op { kAllReduce, kAllGather, kBroadcast, kSendRecv };

struct Options {
  int ranks = 2;
  Op op = Op::kAllReduce;
  std::string op_name = "all_reduce";
  std::string transport = "gloo";
  GlooAllReduceAlgorithm algorithm = GlooAllReduceAlgorithm::kAuto;
  int64_t min_bytes = 8;
  int64_t max_bytes = int64_t{64} << 20;
  int64_t factor = 4;
  int iters = 200;
  int warmup = 20;
  int repeats = 3;
};

double BusFactor(Op op, int n) {
  switch (op) {
    case Op::kAllReduce:
      return 2.0 * (n - 1) / n;
    case Op::kAllGather:
      return static_cast<double>(n - 1) / n;
    default:
      return 1.0;
  }
}

// One call of the benchmarked operation on `count` f32 elements (all-gather:
// count per rank; bytes reported are the gathered total, as nccl-tests does).
absl::Status RunOnce(Communicator& c, Op op, std::vector<float>& a, std::vector<float>& b, int64_t count) {
  switch (op) {
    case Op::kAllReduce:
      return c.AllReduceSum(a.data(), count, DataType::kF32);
    case Op::kAllGather:
      return c.AllGather(a.data(), b.data(), count, DataType::kF32);
    case Op::kBroadcast:
      return c.Broadcast(a.data(), count, DataType::kF32, 0);
    case Op::kSendRecv: {
      // A ring: even ranks send first, odd ranks receive first.
      const int next = (c.rank() + 1) % c.size(), prev = (c.rank() + c.size() - 1) % c.size();
      if (c.rank() % 2 == 0) {
        if (absl::Status s = c.Send(a.data(), count, DataType::kF32, next); !s.ok()) return s;
        return c.Recv(b.data(), count, DataType::kF32, prev);
      }
      if (absl::Status s = c.Recv(b.data(), count, DataType::kF32, prev); !s.ok()) return s;
      return c.Send(a.data(), count, DataType::kF32, next);
    }
  }
  return absl::InternalError("unknown op");
}

float Value(int rank, int64_t i) { return static_cast<float>((rank + 1) * ((i % 97) + 1)); }

// Fills inputs, runs once, counts wrong elements.
absl::StatusOr<int64_t> Check(Communicator& c, Op op, std::vector<float>& a, std::vector<float>& b, int64_t count) {
  const int n = c.size(), r = c.rank();
  for (int64_t i = 0; i < count; ++i) a[i] = Value(r, i);
  std::fill(b.begin(), b.end(), -1.0f);
  if (absl::Status s = RunOnce(c, op, a, b, count); !s.ok()) return s;
  int64_t wrong = 0;
  for (int64_t i = 0; i < count; ++i) {
    switch (op) {
      case Op::kAllReduce: {
        float want = 0;
        for (int q = 0; q < n; ++q) want += Value(q, i);
        wrong += a[i] != want;
        break;
      }
      case Op::kAllGather:
        for (int q = 0; q < n; ++q) wrong += b[q * count + i] != Value(q, i);
        break;
      case Op::kBroadcast:
        wrong += a[i] != Value(0, i);
        break;
      case Op::kSendRecv:
        wrong += b[i] != Value((r + n - 1) % n, i);
        break;
    }
  }
  return wrong;
}

absl::StatusOr<std::unique_ptr<Communicator>> Connect(const Options& o, KeyValueStore* store, int rank) {
  if (o.transport == "shm") {
    SharedMemoryCommunicatorConfig config;
    config.store = store;
    config.prefix = "bench";
    config.rank = rank;
    config.size = o.ranks;
    config.label = "collective_bench";
    config.timeout = absl::Seconds(60);
    return CreateSharedMemoryCommunicator(config);
  }
  GlooCommunicatorConfig config;
  config.store = store;
  config.prefix = "bench";
  config.rank = rank;
  config.size = o.ranks;
  config.bind_address = "127.0.0.1";
  config.timeout = absl::Seconds(60);
  config.label = "collective_bench";
  config.allreduce_algorithm = o.algorithm;
  return CreateGlooCommunicator(config);
}

int RunRank(const Options& o, const std::string& dir, int rank) {
  FileStore store(dir);
  auto comm = Connect(o, &store, rank);
  if (!comm.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", rank, std::string(comm.status().message()).c_str());
    return 1;
  }
  Communicator& c = **comm;
  const int64_t max_count = std::max<int64_t>(1, o.max_bytes / 4);
  std::vector<float> a(max_count), b(max_count * o.ranks);
  if (rank == 0) {
    std::printf("# collective_bench: %s, %s, %d ranks (processes), f32, %d iters x %d repeats (median)\n",
                o.op_name.c_str(), c.Describe().c_str(), o.ranks, o.iters, o.repeats);
    std::printf("# %12s %12s %12s %12s %12s %8s\n", "size(B)", "count", "time(us)", "algbw(GB/s)",
                "busbw(GB/s)", "#wrong");
  }
  int failures = 0;
  for (int64_t bytes = std::max<int64_t>(4, o.min_bytes); bytes <= o.max_bytes; bytes *= o.factor) {
    // All-gather: `bytes` is the gathered size, each rank contributes 1/n.
    const int64_t count = o.op == Op::kAllGather ? std::max<int64_t>(1, bytes / 4 / o.ranks) : bytes / 4;
    const int64_t reported = o.op == Op::kAllGather ? count * 4 * o.ranks : count * 4;
    auto wrong = Check(c, o.op, a, b, count);
    if (!wrong.ok()) {
      std::fprintf(stderr, "rank %d: %s\n", rank, std::string(wrong.status().message()).c_str());
      return 1;
    }
    std::vector<double> times;
    for (int rep = 0; rep < o.repeats; ++rep) {
      for (int i = 0; i < o.warmup; ++i) (void)RunOnce(c, o.op, a, b, count);
      if (absl::Status s = c.Barrier(); !s.ok()) {
        std::fprintf(stderr, "rank %d: %s\n", rank, std::string(s.message()).c_str());
        return 1;
      }
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < o.iters; ++i) {
        if (absl::Status s = RunOnce(c, o.op, a, b, count); !s.ok()) {
          std::fprintf(stderr, "rank %d: %s\n", rank, std::string(s.message()).c_str());
          return 1;
        }
      }
      times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
                      o.iters);
    }
    std::sort(times.begin(), times.end());
    const double us = times[times.size() / 2];
    const double algbw = reported / us / 1e3;
    if (*wrong != 0) failures = 1;
    if (rank == 0) {
      std::printf("  %12lld %12lld %12.1f %12.3f %12.3f %8lld\n", static_cast<long long>(reported),
                  static_cast<long long>(count), us, algbw, algbw * BusFactor(o.op, o.ranks),
                  static_cast<long long>(*wrong));
      std::fflush(stdout);
    }
  }
  return failures;
}

bool ParseBytes(const std::string& s, int64_t* out) {
  int64_t mult = 1;
  std::string digits = s;
  if (!s.empty() && (s.back() == 'K' || s.back() == 'M' || s.back() == 'G')) {
    mult = s.back() == 'K' ? 1 << 10 : s.back() == 'M' ? 1 << 20 : 1 << 30;
    digits = s.substr(0, s.size() - 1);
  }
  int64_t v = 0;
  if (!absl::SimpleAtoi(digits, &v) || v < 1) return false;
  *out = v * mult;
  return true;
}

int Usage() {
  std::fprintf(stderr,
               "usage: collective_bench [--ranks N] [--op all_reduce|all_gather|broadcast|send_recv]\n"
               "       [--transport gloo|shm] [--algorithm auto|ring|halving_doubling]\n"
               "       [--min-bytes 8] [--max-bytes 64M] [--factor 4] [--iters 200] [--warmup 20] [--repeats 3]\n");
  return 2;
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return Usage();
    const std::string v = argv[++i];
    int64_t n = 0;
    if (flag == "--ranks" && absl::SimpleAtoi(v, &n) && n >= 1 && n <= 64) {
      o.ranks = static_cast<int>(n);
    } else if (flag == "--op") {
      o.op_name = v;
      if (v == "all_reduce") o.op = Op::kAllReduce;
      else if (v == "all_gather") o.op = Op::kAllGather;
      else if (v == "broadcast") o.op = Op::kBroadcast;
      else if (v == "send_recv") o.op = Op::kSendRecv;
      else return Usage();
    } else if (flag == "--transport" && (v == "gloo" || v == "shm")) {
      o.transport = v;
    } else if (flag == "--algorithm") {
      if (v == "auto") o.algorithm = GlooAllReduceAlgorithm::kAuto;
      else if (v == "ring") o.algorithm = GlooAllReduceAlgorithm::kRing;
      else if (v == "halving_doubling") o.algorithm = GlooAllReduceAlgorithm::kHalvingDoubling;
      else return Usage();
    } else if (flag == "--min-bytes" && ParseBytes(v, &o.min_bytes)) {
    } else if (flag == "--max-bytes" && ParseBytes(v, &o.max_bytes)) {
    } else if (flag == "--factor" && absl::SimpleAtoi(v, &n) && n >= 2) {
      o.factor = n;
    } else if (flag == "--iters" && absl::SimpleAtoi(v, &n) && n >= 1) {
      o.iters = static_cast<int>(n);
    } else if (flag == "--warmup" && absl::SimpleAtoi(v, &n) && n >= 0) {
      o.warmup = static_cast<int>(n);
    } else if (flag == "--repeats" && absl::SimpleAtoi(v, &n) && n >= 1) {
      o.repeats = static_cast<int>(n);
    } else {
      return Usage();
    }
  }
  char tmpl[] = "/tmp/strata-collective-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string dir = tmpl;
  std::fflush(stdout);
  std::vector<pid_t> children;
  for (int r = 0; r < o.ranks; ++r) {
    const pid_t pid = fork();
    if (pid < 0) {
      std::perror("fork");
      return 1;
    }
    if (pid == 0) _exit(RunRank(o, dir, r));
    children.push_back(pid);
  }
  int rc = 0;
  for (pid_t pid : children) {
    int status = 0;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
  }
  std::string cleanup = absl::StrCat("rm -rf '", dir, "'");
  if (std::system(cleanup.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir.c_str());
  return rc;
}

}  // namespace
}  // namespace strata::parallel

int main(int argc, char** argv) { return strata::parallel::Main(argc, argv); }
