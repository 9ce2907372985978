#include "kernels/cuda/harness/host_launch.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include <boost/context/fiber.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace strata::cuda_host {
namespace {

// Fiber stacks in one mapping, each with a PROT_NONE guard page below it, so a fiber
// that overflows its 64 KiB stack faults at once instead of corrupting a neighbour.
class FiberStacks {
 public:
  FiberStacks() = default;
  FiberStacks(const FiberStacks&) = delete;
  FiberStacks& operator=(const FiberStacks&) = delete;
  static absl::Status Map(int n, FiberStacks* out) {
    out->page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    out->stride_ = kFiberStackBytes + out->page_;
    out->bytes_ = static_cast<size_t>(n) * out->stride_;
    void* p = mmap(nullptr, out->bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      return absl::ResourceExhaustedError(absl::StrCat("HostLaunch: cannot map ", out->bytes_,
                                                       " bytes of fiber stacks"));
    }
    out->base_ = static_cast<char*>(p);
    for (int i = 0; i < n; ++i) mprotect(out->base_ + i * out->stride_, out->page_, PROT_NONE);
    return absl::OkStatus();
  }
  ~FiberStacks() {
    if (base_) munmap(base_, bytes_);
  }
  char* Stack(int i) const { return base_ + static_cast<size_t>(i) * stride_ + page_; }
  int capacity() const { return base_ ? static_cast<int>(bytes_ / stride_) : 0; }

 private:
  char* base_ = nullptr;
  size_t page_ = 0, stride_ = 0, bytes_ = 0;
};

// The mapped stacks are reused by every launch on the OS thread (mapping and
// guarding them costs two syscalls per fiber; a model step launches hundreds of
// kernels).
thread_local std::unique_ptr<FiberStacks> tl_stacks;

absl::StatusOr<FiberStacks*> StacksFor(int n) {
  if (!tl_stacks || tl_stacks->capacity() < n) {
    auto stacks = std::make_unique<FiberStacks>();
    if (absl::Status st = FiberStacks::Map(std::max(n, 32), stacks.get()); !st.ok()) return st;
    tl_stacks = std::move(stacks);
  }
  return tl_stacks.get();
}

// Boost.Context StackAllocator handing a fiber one of the pre-mapped stacks
// (Boost keeps the fiber's control record at the top of it).
class PooledStack {
 public:
  explicit PooledStack(char* lowest) : lowest_(lowest) {}
  boost::context::stack_context allocate() {
    boost::context::stack_context sc;
    sc.size = kFiberStackBytes;
    sc.sp = lowest_ + kFiberStackBytes;
    return sc;
  }
  void deallocate(boost::context::stack_context&) noexcept {}

 private:
  char* lowest_;
};

enum class FiberState { kRunnable, kAtBlockBarrier, kAtWarpBarrier, kDone };

// Boost.Context fibers (fcontext: a register swap, no signal-mask syscalls as
// swapcontext makes) so the harness runs the real model in test time.
struct Fiber {
  boost::context::fiber self;  // the suspended fiber, resumed by the scheduler
  boost::context::fiber sink;  // inside the fiber: the suspended scheduler
  FiberState state = FiberState::kRunnable;
  uint3 tid{0, 0, 0};
};

// Everything of the launch running on this OS thread.
struct Launch {
  dim3 grid, block;
  uint3 block_idx{0, 0, 0};
  int threads = 0;
  int current = -1;  // running fiber, -1 in the scheduler
  FiberStacks* stacks = nullptr;  // outlives fibers: a fiber left suspended by an
                                  // error is unwound on its stack when destroyed
  std::vector<Fiber> fibers;
  std::unique_ptr<uint64_t[]> shared;  // dynamic shared memory, 16-byte aligned
  size_t shared_bytes = 0;
  std::vector<uint64_t> warp_slots;   // 32 per warp
  const std::function<void()>* body = nullptr;
};

thread_local Launch* tl_launch = nullptr;

Launch& Cur() { return *tl_launch; }

void Yield(FiberState s) {
  Launch& l = Cur();
  Fiber& f = l.fibers[l.current];
  f.state = s;
  f.sink = std::move(f.sink).resume();
}

std::string BlockName(const Launch& l) {
  return absl::StrCat("block (", l.block_idx.x, ",", l.block_idx.y, ",", l.block_idx.z, ")");
}

// Runs one block to completion. Returns an error on a divergent barrier.
absl::Status RunBlock(Launch& l) {
  const int n = l.threads;
  for (int i = 0; i < n; ++i) {
    Fiber& f = l.fibers[i];
    f.state = FiberState::kRunnable;
    f.tid = uint3{static_cast<unsigned>(i % l.block.x),
                  static_cast<unsigned>((i / l.block.x) % l.block.y),
                  static_cast<unsigned>(i / (l.block.x * l.block.y))};
    f.self = boost::context::fiber(
        std::allocator_arg, PooledStack(l.stacks->Stack(i)),
        [&l, i](boost::context::fiber&& scheduler) {
          l.fibers[i].sink = std::move(scheduler);
          (*l.body)();
          l.fibers[i].state = FiberState::kDone;
          return std::move(l.fibers[i].sink);
        });
  }
  if (l.shared_bytes) std::memset(l.shared.get(), 0xCD, l.shared_bytes);
  const int warps = (n + 31) / 32;
  for (;;) {
    bool ran = false;
    for (int i = 0; i < n; ++i) {
      if (l.fibers[i].state != FiberState::kRunnable) continue;
      l.current = i;
      l.fibers[i].self = std::move(l.fibers[i].self).resume();
      l.current = -1;
      ran = true;
    }
    if (ran) continue;
    // Nobody can run: release a barrier or finish or report divergence.
    int done = 0, at_block = 0;
    for (const Fiber& f : l.fibers) {
      done += f.state == FiberState::kDone;
      at_block += f.state == FiberState::kAtBlockBarrier;
    }
    if (done == n) return absl::OkStatus();
    bool released = false;
    for (int w = 0; w < warps; ++w) {
      const int lo = w * 32, hi = std::min(n, lo + 32);
      int waiting = 0;
      for (int i = lo; i < hi; ++i) waiting += l.fibers[i].state == FiberState::kAtWarpBarrier;
      if (waiting == 0) continue;
      if (waiting != hi - lo) {
        return absl::InternalError(absl::StrCat(
            "HostLaunch: ", BlockName(l), " warp ", w, ": ", waiting, " of ", hi - lo,
            " lanes wait at a warp collective (__syncwarp/__shfl_*_sync) the others never "
            "reach (divergent warp collective)"));
      }
      for (int i = lo; i < hi; ++i) l.fibers[i].state = FiberState::kRunnable;
      released = true;
    }
    if (released) continue;
    if (at_block == n) {
      for (Fiber& f : l.fibers) f.state = FiberState::kRunnable;
      continue;
    }
    return absl::InternalError(absl::StrCat(
        "HostLaunch: ", BlockName(l), ": ", at_block, " of ", n,
        " threads wait at __syncthreads() while ", done,
        " returned (divergent __syncthreads)"));
  }
}

}  // namespace

absl::Status HostLaunch(dim3 grid, dim3 block, size_t dynamic_shared_bytes,
                        const std::function<void()>& kernel_body) {
  if (tl_launch != nullptr) {
    return absl::FailedPreconditionError("HostLaunch: called from inside a kernel body");
  }
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || block.x == 0 || block.y == 0 ||
      block.z == 0) {
    return absl::InvalidArgumentError(absl::StrCat("HostLaunch: zero dimension in grid (",
        grid.x, ",", grid.y, ",", grid.z, ") or block (", block.x, ",", block.y, ",",
        block.z, ")"));
  }
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  if (threads > kMaxThreadsPerBlock || block.z > 64) {
    return absl::InvalidArgumentError(absl::StrCat("HostLaunch: block of ", threads,
        " threads (z ", block.z, "); the limit is ", kMaxThreadsPerBlock, " (z <= 64)"));
  }
  if (grid.y > 65535 || grid.z > 65535 || grid.x > 0x7fffffffu) {
    return absl::InvalidArgumentError("HostLaunch: grid dimension over the CUDA limit");
  }
  if (dynamic_shared_bytes > kMaxDynamicSharedBytes) {
    return absl::InvalidArgumentError(absl::StrCat("HostLaunch: ", dynamic_shared_bytes,
        " bytes of dynamic shared memory; the limit is ", kMaxDynamicSharedBytes));
  }
  Launch l;
  l.grid = grid;
  l.block = block;
  l.threads = static_cast<int>(threads);
  absl::StatusOr<FiberStacks*> stacks = StacksFor(l.threads);
  if (!stacks.ok()) return stacks.status();
  l.stacks = *stacks;
  l.fibers.resize(l.threads);
  l.shared_bytes = dynamic_shared_bytes;
  if (dynamic_shared_bytes) l.shared.reset(new uint64_t[(dynamic_shared_bytes + 15) / 8]);
  l.warp_slots.assign(static_cast<size_t>((l.threads + 31) / 32) * 32, 0);
  l.body = &kernel_body;
  tl_launch = &l;
  absl::Status status;
  for (unsigned z = 0; z < grid.z && status.ok(); ++z) {
    for (unsigned y = 0; y < grid.y && status.ok(); ++y) {
      for (unsigned x = 0; x < grid.x && status.ok(); ++x) {
        l.block_idx = uint3{x, y, z};
        status = RunBlock(l);
      }
    }
  }
  tl_launch = nullptr;
  return status;
}

uint3 ThreadIdx() { return Cur().fibers[Cur().current].tid; }
uint3 BlockIdx() { return Cur().block_idx; }
dim3 BlockDim() { return Cur().block; }
dim3 GridDim() { return Cur().grid; }
void* DynamicShared() { return Cur().shared.get(); }
int LaneId() { return Cur().current % 32; }
int WarpLanes() {
  const Launch& l = Cur();
  return std::min(32, l.threads - (l.current / 32) * 32);
}
uint64_t* WarpSlots() { return Cur().warp_slots.data() + (Cur().current / 32) * 32; }
void BlockBarrier() { Yield(FiberState::kAtBlockBarrier); }
void WarpBarrier() { Yield(FiberState::kAtWarpBarrier); }

}  // namespace strata::cuda_host
