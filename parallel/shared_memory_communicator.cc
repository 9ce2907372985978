#include "parallel/shared_memory_communicator.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <new>
#include <random>
#include <fstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define STRATA_CPU_RELAX() _mm_pause()
#else
#define STRATA_CPU_RELAX() std::atomic_signal_fence(std::memory_order_seq_cst)
#endif

namespace strata::parallel {
namespace {

constexpr uint64_t kMagic = 0x5354524154415348ull;  // "STRATASH"
constexpr int64_t kAlign = 64;
// Spin this many times (~20-40 us) before sleeping on the futex.
constexpr int kSpins = 4000;
// A sleeping waiter wakes at least this often to check the deadline, the
// abort flag and whether its peer is still alive.
constexpr int64_t kSleepSliceNs = 50'000'000;

// A 32-bit counter one process advances and others wait on, with a count of
// sleepers so the writer only makes the wake syscall when somebody sleeps.
struct alignas(kAlign) Word {
  std::atomic<uint32_t> value;
  std::atomic<uint32_t> sleepers;
};

struct alignas(kAlign) RankControl {
  Word arrived;             // collective ops this rank has posted
  std::atomic<int32_t> pid; // 0 until the rank has mapped the segment
};

struct alignas(kAlign) Channel {  // ordered pair src -> dst
  Word sent;   // messages the sender has put in the slot
  Word taken;  // messages the receiver has copied out
};

struct alignas(kAlign) Header {
  uint64_t magic;
  int32_t size;
  int64_t collective_slot_bytes;
  int64_t p2p_slot_bytes;
  std::atomic<int32_t> aborted_by;  // -1, or the rank that failed first
};

static_assert(std::atomic<uint32_t>::is_always_lock_free && std::atomic<int32_t>::is_always_lock_free,
              "shared-memory words must be lock-free to work across processes");

int64_t AlignUp(int64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

struct Layout {
  int64_t controls, channels, collective, p2p, total;
  Layout(int size, int64_t collective_slot, int64_t p2p_slot) {
    controls = AlignUp(sizeof(Header));
    channels = controls + AlignUp(static_cast<int64_t>(sizeof(RankControl)) * size);
    collective = channels + AlignUp(static_cast<int64_t>(sizeof(Channel)) * size * size);
    p2p = collective + int64_t{2} * size * collective_slot;
    total = p2p + static_cast<int64_t>(size) * size * p2p_slot;
  }
};

void FutexWait(std::atomic<uint32_t>* word, uint32_t seen) {
  timespec slice{0, kSleepSliceNs};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, seen, &slice, nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

// Publishes `value` and wakes sleepers.
void Post(Word& w, uint32_t value) {
  w.value.store(value, std::memory_order_seq_cst);
  if (w.sleepers.load(std::memory_order_seq_cst) != 0) FutexWakeAll(&w.value);
}

// True when counter `value` has reached `target` (wrap-around safe).
bool Reached(uint32_t value, uint32_t target) { return static_cast<int32_t>(value - target) >= 0; }

template <typename T>
void SumSlots(T* out, const char* const* slots, int n, int64_t count) {
  const T* s0 = reinterpret_cast<const T*>(slots[0]);
  for (int64_t i = 0; i < count; ++i) out[i] = s0[i];
  for (int q = 1; q < n; ++q) {
    const T* s = reinterpret_cast<const T*>(slots[q]);
    for (int64_t i = 0; i < count; ++i) out[i] += s[i];
  }
}

// True when process `pid` has exited (gone, or a zombie nobody reaped yet).
bool ProcessExited(int32_t pid) {
  if (kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return false;
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}


class SharedMemoryCommunicator final : public Communicator {
 public:
  SharedMemoryCommunicator(const SharedMemoryCommunicatorConfig& config, std::string describe, char* base,
                           int64_t mapped_bytes)
      : rank_(config.rank),
        size_(config.size),
        describe_(std::move(describe)),
        timeout_(config.timeout),
        base_(base),
        mapped_bytes_(mapped_bytes),
        layout_(config.size, config.collective_slot_bytes, config.p2p_slot_bytes),
        collective_slot_bytes_(config.collective_slot_bytes),
        p2p_slot_bytes_(config.p2p_slot_bytes),
        sent_(config.size, 0),
        taken_(config.size, 0) {}

  ~SharedMemoryCommunicator() override {
    if (base_ != nullptr) munmap(base_, mapped_bytes_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& Describe() const override { return describe_; }

  absl::Status AllReduceSum(void* buffer, int64_t count, DataType type) override {
    if (type != DataType::kF32 && type != DataType::kI32) {
      return absl::InvalidArgumentError(
          absl::StrCat(describe_, ": AllReduceSum supports f32 and i32, not ", DataTypeName(type)));
    }
    if (absl::Status s = CheckBuffer("AllReduceSum", buffer, count, type); !s.ok()) return s;
    if (size_ == 1 || count == 0) return absl::OkStatus();
    const int64_t elem = static_cast<int64_t>(DataTypeSize(type));
    char* bytes = static_cast<char*>(buffer);
    return Chunked(
        "AllReduceSum", count, elem, [&](int64_t done, int64_t n) { std::memcpy(MySlot(), bytes + done * elem, n * elem); },
        [&](int64_t done, int64_t n) {
          const char* slots[64] = {};
          for (int q = 0; q < size_; ++q) slots[q] = Slot(q, op_);
          if (type == DataType::kF32) {
            SumSlots(reinterpret_cast<float*>(bytes + done * elem), slots, size_, n);
          } else {
            SumSlots(reinterpret_cast<int32_t*>(bytes + done * elem), slots, size_, n);
          }
        });
  }

  absl::Status AllGather(const void* in, void* out, int64_t count, DataType type) override {
    if (absl::Status s = CheckBuffer("AllGather", in, count, type); !s.ok()) return s;
    if (absl::Status s = CheckBuffer("AllGather", out, count, type); !s.ok()) return s;
    const int64_t elem = static_cast<int64_t>(DataTypeSize(type));
    if (size_ == 1 || count == 0) {
      if (count > 0) std::memcpy(out, in, count * elem);
      return absl::OkStatus();
    }
    const char* src = static_cast<const char*>(in);
    char* dst = static_cast<char*>(out);
    return Chunked(
        "AllGather", count, elem, [&](int64_t done, int64_t n) { std::memcpy(MySlot(), src + done * elem, n * elem); },
        [&](int64_t done, int64_t n) {
          for (int q = 0; q < size_; ++q) std::memcpy(dst + (q * count + done) * elem, Slot(q, op_), n * elem);
        });
  }

  absl::Status Broadcast(void* buffer, int64_t count, DataType type, int root) override {
    if (root < 0 || root >= size_) {
      return absl::InvalidArgumentError(
          absl::StrCat(describe_, ": Broadcast root ", root, " is not a rank of ", size_));
    }
    if (absl::Status s = CheckBuffer("Broadcast", buffer, count, type); !s.ok()) return s;
    if (size_ == 1 || count == 0) return absl::OkStatus();
    const int64_t elem = static_cast<int64_t>(DataTypeSize(type));
    char* bytes = static_cast<char*>(buffer);
    return Chunked(
        "Broadcast", count, elem,
        [&](int64_t done, int64_t n) {
          if (rank_ == root) std::memcpy(MySlot(), bytes + done * elem, n * elem);
        },
        [&](int64_t done, int64_t n) {
          if (rank_ != root) std::memcpy(bytes + done * elem, Slot(root, op_), n * elem);
        });
  }

  absl::Status Barrier() override {
    if (!failure_.ok()) return Unusable();
    if (size_ == 1) return absl::OkStatus();
    return Arrive("Barrier");
  }

  absl::Status Send(const void* buffer, int64_t count, DataType type, int peer) override {
    if (absl::Status s = CheckPeer("Send", peer); !s.ok()) return s;
    if (absl::Status s = CheckBuffer("Send", buffer, count, type); !s.ok()) return s;
    if (absl::Status s = CheckAborted("Send"); !s.ok()) return s;
    Channel& ch = ChannelOf(rank_, peer);
    char* slot = P2pSlot(rank_, peer);
    const char* src = static_cast<const char*>(buffer);
    const int64_t total = count * static_cast<int64_t>(DataTypeSize(type));
    // At least one message, so a zero-length Send still pairs with a Recv.
    for (int64_t done = 0; done == 0 || done < total; done += p2p_slot_bytes_) {
      const int64_t n = std::min(p2p_slot_bytes_, total - done);
      // The slot is free once the receiver has taken everything we sent.
      if (absl::Status s = WaitFor(ch.taken, sent_[peer], peer, "Send"); !s.ok()) return s;
      if (n > 0) std::memcpy(slot, src + done, n);
      Post(ch.sent, ++sent_[peer]);
      if (total == 0) break;
    }
    return absl::OkStatus();
  }

  absl::Status Recv(void* buffer, int64_t count, DataType type, int peer) override {
    if (absl::Status s = CheckPeer("Recv", peer); !s.ok()) return s;
    if (absl::Status s = CheckBuffer("Recv", buffer, count, type); !s.ok()) return s;
    if (absl::Status s = CheckAborted("Recv"); !s.ok()) return s;
    Channel& ch = ChannelOf(peer, rank_);
    const char* slot = P2pSlot(peer, rank_);
    char* dst = static_cast<char*>(buffer);
    const int64_t total = count * static_cast<int64_t>(DataTypeSize(type));
    for (int64_t done = 0; done == 0 || done < total; done += p2p_slot_bytes_) {
      const int64_t n = std::min(p2p_slot_bytes_, total - done);
      if (absl::Status s = WaitFor(ch.sent, taken_[peer] + 1, peer, "Recv"); !s.ok()) return s;
      if (n > 0) std::memcpy(dst + done, slot, n);
      Post(ch.taken, ++taken_[peer]);
      if (total == 0) break;
    }
    return absl::OkStatus();
  }

 private:
  Header& header() { return *reinterpret_cast<Header*>(base_); }
  RankControl& control(int r) {
    return reinterpret_cast<RankControl*>(base_ + layout_.controls)[r];
  }
  Channel& ChannelOf(int src, int dst) {
    return reinterpret_cast<Channel*>(base_ + layout_.channels)[src * size_ + dst];
  }
  char* Slot(int r, uint32_t op) {
    return base_ + layout_.collective + (int64_t{2} * r + (op & 1)) * collective_slot_bytes_;
  }
  // This rank's slot for the next collective op.
  char* MySlot() { return Slot(rank_, op_ + 1); }
  char* P2pSlot(int src, int dst) {
    return base_ + layout_.p2p + (static_cast<int64_t>(src) * size_ + dst) * p2p_slot_bytes_;
  }

  // Runs a collective over `count` elements of `elem` bytes in slot-sized
  // chunks: put(done, n) fills this rank's slot for the next op, every rank
  // arrives, then take(done, n) reads the slots of that op.
  template <typename Put, typename Take>
  absl::Status Chunked(absl::string_view op, int64_t count, int64_t elem, Put put, Take take) {
    const int64_t per_chunk = collective_slot_bytes_ / elem;
    for (int64_t done = 0; done < count; done += per_chunk) {
      const int64_t n = std::min(per_chunk, count - done);
      put(done, n);
      if (absl::Status s = Arrive(op); !s.ok()) return s;
      take(done, n);
    }
    return absl::OkStatus();
  }

  // Posts the next collective op and waits until every rank has posted it;
  // afterwards op_ is that op.
  absl::Status Arrive(absl::string_view op) {
    if (absl::Status s = CheckAborted(op); !s.ok()) return s;
    const uint32_t next = op_ + 1;
    Post(control(rank_).arrived, next);
    for (int q = 0; q < size_; ++q) {
      if (q == rank_) continue;
      if (absl::Status s = WaitFor(control(q).arrived, next, q, op); !s.ok()) return s;
    }
    op_ = next;
    return absl::OkStatus();
  }

  // Waits until `w` reaches `target` (posted by rank `peer`).
  absl::Status WaitFor(Word& w, uint32_t target, int peer, absl::string_view op) {
    if (!failure_.ok()) return Unusable();
    for (int i = 0; i < kSpins; ++i) {
      if (Reached(w.value.load(std::memory_order_acquire), target)) return absl::OkStatus();
      STRATA_CPU_RELAX();
      // More ranks than cores: let the peer we wait for run on this core.
      if (i % 256 == 255) sched_yield();
    }
    const absl::Time deadline = absl::Now() + timeout_;
    while (true) {
      w.sleepers.fetch_add(1, std::memory_order_seq_cst);
      const uint32_t seen = w.value.load(std::memory_order_seq_cst);
      if (Reached(seen, target)) {
        w.sleepers.fetch_sub(1, std::memory_order_seq_cst);
        return absl::OkStatus();
      }
      FutexWait(&w.value, seen);
      w.sleepers.fetch_sub(1, std::memory_order_seq_cst);
      if (Reached(w.value.load(std::memory_order_acquire), target)) return absl::OkStatus();
      if (absl::Status s = CheckAborted(op); !s.ok()) return s;
      const int32_t pid = control(peer).pid.load(std::memory_order_acquire);
      if (pid > 0 && ProcessExited(pid)) {
        return Fail(absl::UnavailableError(
            absl::StrCat(describe_, ": ", op, ": rank ", peer, " (pid ", pid, ") exited")));
      }
      if (absl::Now() > deadline) {
        return Fail(absl::DeadlineExceededError(absl::StrCat(describe_, ": ", op, ": rank ", peer,
                                                             " did not answer within ",
                                                             absl::FormatDuration(timeout_))));
      }
    }
  }

  // Once any rank has failed the group is dead: every later call fails too.
  absl::Status CheckAborted(absl::string_view op) {
    if (!failure_.ok()) return Unusable();
    const int32_t aborted_by = header().aborted_by.load(std::memory_order_acquire);
    if (aborted_by >= 0 && aborted_by != rank_) {
      return Fail(absl::UnavailableError(absl::StrCat(describe_, ": ", op, ": rank ", aborted_by,
                                                      " of the group failed")));
    }
    return absl::OkStatus();
  }

  absl::Status Fail(absl::Status status) {
    failure_ = status;
    int32_t none = -1;
    header().aborted_by.compare_exchange_strong(none, rank_);
    // Wake every sleeper so they notice the abort now, not at their next slice.
    for (int q = 0; q < size_; ++q) FutexWakeAll(&control(q).arrived.value);
    for (int q = 0; q < size_ * size_; ++q) {
      Channel& ch = reinterpret_cast<Channel*>(base_ + layout_.channels)[q];
      FutexWakeAll(&ch.sent.value);
      FutexWakeAll(&ch.taken.value);
    }
    return status;
  }

  absl::Status Unusable() const {
    return absl::FailedPreconditionError(
        absl::StrCat(describe_, ": unusable after an earlier failure: ", failure_.message()));
  }

  absl::Status CheckBuffer(absl::string_view op, const void* buffer, int64_t count, DataType type) const {
    if (!failure_.ok()) return Unusable();
    if (count < 0) return absl::InvalidArgumentError(absl::StrCat(describe_, ": ", op, ": negative count"));
    if (count > 0 && buffer == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(describe_, ": ", op, ": null buffer for ", count, " elements"));
    }
    if (count > (int64_t{1} << 40) / static_cast<int64_t>(DataTypeSize(type))) {
      return absl::InvalidArgumentError(absl::StrCat(describe_, ": ", op, ": count ", count, " is too large"));
    }
    return absl::OkStatus();
  }

  absl::Status CheckPeer(absl::string_view op, int peer) const {
    if (peer < 0 || peer >= size_ || peer == rank_) {
      return absl::InvalidArgumentError(
          absl::StrCat(describe_, ": ", op, ": peer ", peer, " is not another rank of ", size_));
    }
    return absl::OkStatus();
  }

  const int rank_;
  const int size_;
  const std::string describe_;
  const absl::Duration timeout_;
  char* const base_;
  const int64_t mapped_bytes_;
  const Layout layout_;
  const int64_t collective_slot_bytes_;
  const int64_t p2p_slot_bytes_;
  uint32_t op_ = 0;              // collective ops completed
  std::vector<uint32_t> sent_;   // per peer: messages sent to it
  std::vector<uint32_t> taken_;  // per peer: messages received from it
  absl::Status failure_;         // first failure; OK while usable
};

std::string SegmentName() {
  std::random_device rd;
  return absl::StrCat("/strata-", getpid(), "-", rd(), rd());
}

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> CreateSharedMemoryCommunicator(
    const SharedMemoryCommunicatorConfig& config) {
  const std::string describe = absl::StrCat("shm rank ", config.rank, " of ", config.size, " on ",
                                            HostName(), " (", config.label, ")");
  if (config.size < 1 || config.size > 64 || config.rank < 0 || config.rank >= config.size) {
    return absl::InvalidArgumentError(
        absl::StrCat(describe, ": rank must be in [0, size) and size in [1, 64]"));
  }
  if (config.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(describe, ": timeout must be positive"));
  }
  if (config.collective_slot_bytes < 64 || config.collective_slot_bytes % 64 != 0 ||
      config.p2p_slot_bytes < 64 || config.p2p_slot_bytes % 64 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(describe, ": slot sizes must be positive multiples of 64 bytes"));
  }
  const Layout layout(config.size, config.collective_slot_bytes, config.p2p_slot_bytes);
  if (config.size == 1) {
    // No peers: a private anonymous mapping keeps the code paths uniform.
    void* p = mmap(nullptr, layout.total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return absl::ResourceExhaustedError(absl::StrCat(describe, ": mmap failed"));
    new (p) Header{kMagic, 1, config.collective_slot_bytes, config.p2p_slot_bytes, {-1}};
    return std::unique_ptr<Communicator>(
        new SharedMemoryCommunicator(config, describe, static_cast<char*>(p), layout.total));
  }
  if (config.store == nullptr || config.prefix.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(describe, ": a group of ", config.size, " needs a store and a key prefix"));
  }
  const std::string name_key = absl::StrCat(config.prefix, "/shm");
  std::string name;
  int fd = -1;
  if (config.rank == 0) {
    name = SegmentName();
    fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) {
      return absl::UnavailableError(
          absl::StrCat(describe, ": shm_open(", name, "): ", std::strerror(errno)));
    }
    if (ftruncate(fd, layout.total) != 0) {
      const int err = errno;
      close(fd);
      shm_unlink(name.c_str());
      return absl::ResourceExhaustedError(absl::StrCat(describe, ": cannot size the segment to ",
                                                       layout.total, " bytes in /dev/shm: ",
                                                       std::strerror(err)));
    }
  } else {
    absl::StatusOr<std::string> got = config.store->Get(name_key, config.timeout);
    if (!got.ok()) {
      return absl::Status(got.status().code(),
                          absl::StrCat(describe, ": rendezvous failed: ", got.status().message()));
    }
    name = *got;
    fd = shm_open(name.c_str(), O_RDWR, 0600);
    if (fd < 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          describe, ": cannot open rank 0's segment ", name, " (", std::strerror(errno),
          "): the ranks do not share /dev/shm; use the TCP transport"));
    }
    struct stat st {};
    if (fstat(fd, &st) != 0 || st.st_size != layout.total) {
      close(fd);
      return absl::FailedPreconditionError(absl::StrCat(
          describe, ": segment ", name, " has ", st.st_size, " bytes, expected ", layout.total,
          " (do the ranks use the same slot sizes?)"));
    }
  }
  void* p = mmap(nullptr, layout.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    if (config.rank == 0) shm_unlink(name.c_str());
    return absl::ResourceExhaustedError(absl::StrCat(describe, ": mmap of ", layout.total,
                                                     " bytes failed: ", std::strerror(errno)));
  }
  char* base = static_cast<char*>(p);
  auto comm = std::make_unique<SharedMemoryCommunicator>(config, describe, base, layout.total);
  if (config.rank == 0) {
    // A fresh segment is zero-filled: every counter starts at 0.
    new (base) Header{kMagic, config.size, config.collective_slot_bytes, config.p2p_slot_bytes, {-1}};
  }
  auto* controls = reinterpret_cast<RankControl*>(base + layout.controls);
  if (config.rank == 0) {
    controls[0].pid.store(getpid(), std::memory_order_release);
    if (absl::Status s = config.store->Set(name_key, name); !s.ok()) {
      shm_unlink(name.c_str());
      return absl::Status(s.code(), absl::StrCat(describe, ": rendezvous failed: ", s.message()));
    }
    // Unlink once everybody has it mapped: nothing stays in /dev/shm.
    for (int r = 1; r < config.size; ++r) {
      absl::StatusOr<std::string> got =
          config.store->Get(absl::StrCat(config.prefix, "/shm_attached/", r), config.timeout);
      if (!got.ok()) {
        shm_unlink(name.c_str());
        return absl::Status(got.status().code(),
                            absl::StrCat(describe, ": rank ", r, " never attached: ", got.status().message()));
      }
    }
    shm_unlink(name.c_str());
  } else {
    const Header* h = reinterpret_cast<const Header*>(base);
    if (h->magic != kMagic || h->size != config.size) {
      return absl::FailedPreconditionError(absl::StrCat(describe, ": segment ", name,
                                                        " belongs to a different group"));
    }
    controls[config.rank].pid.store(getpid(), std::memory_order_release);
    if (absl::Status s = config.store->Set(absl::StrCat(config.prefix, "/shm_attached/", config.rank), "1");
        !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(describe, ": rendezvous failed: ", s.message()));
    }
  }
  return std::unique_ptr<Communicator>(std::move(comm));
}

}  // namespace strata::parallel
