#include "parallel/cpu_communicator.h"

#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "parallel/gloo_communicator.h"
#include "parallel/shared_memory_communicator.h"

namespace strata::parallel {
namespace {

std::string ReadLink(const char* path) {
  char buffer[256] = {};
  const ssize_t n = readlink(path, buffer, sizeof(buffer) - 1);
  return n > 0 ? std::string(buffer, n) : std::string("?");
}

}  // namespace

absl::StatusOr<CpuTransport> ParseCpuTransport(absl::string_view name) {
  if (name == "auto") return CpuTransport::kAuto;
  if (name == "tcp") return CpuTransport::kTcp;
  if (name == "shm") return CpuTransport::kSharedMemory;
  return absl::InvalidArgumentError(absl::StrCat("unknown collective transport '", name, "' (auto, tcp or shm)"));
}

std::string HostIdentity() {
  std::string boot;
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::getline(in, boot);
  return absl::StrCat(boot.empty() ? "?" : boot, "/", ReadLink("/proc/self/ns/ipc"), "/",
                      ReadLink("/proc/self/ns/pid"), "/", ReadLink("/proc/self/ns/net"));
}

absl::StatusOr<std::unique_ptr<Communicator>> CreateCpuCommunicator(const CpuCommunicatorConfig& config) {
  GlooCommunicatorConfig tcp;
  tcp.store = config.store;
  tcp.prefix = absl::StrCat(config.prefix, "/tcp");
  tcp.rank = config.rank;
  tcp.size = config.size;
  tcp.bind_address = config.bind_address;
  tcp.timeout = config.timeout;
  tcp.label = config.label;
  if (config.transport == CpuTransport::kTcp || config.size == 1) return CreateGlooCommunicator(tcp);
  if (config.store == nullptr || config.prefix.empty() || config.rank < 0 || config.rank >= config.size) {
    return absl::InvalidArgumentError(absl::StrCat(config.label, ": a group of ", config.size,
                                                   " needs a store, a key prefix and a rank in [0, size)"));
  }
  const std::string mine = HostIdentity();
  if (absl::Status s = config.store->Set(absl::StrCat(config.prefix, "/host/", config.rank), mine); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(config.label, ": rendezvous failed: ", s.message()));
  }
  int elsewhere = -1;
  for (int r = 0; r < config.size && elsewhere < 0; ++r) {
    absl::StatusOr<std::string> theirs = config.store->Get(absl::StrCat(config.prefix, "/host/", r), config.timeout);
    if (!theirs.ok()) {
      return absl::Status(theirs.status().code(),
                          absl::StrCat(config.label, ": rendezvous failed: ", theirs.status().message()));
    }
    if (*theirs != mine) elsewhere = r;
  }
  if (elsewhere >= 0) {
    if (config.transport == CpuTransport::kSharedMemory) {
      return absl::FailedPreconditionError(absl::StrCat(
          config.label, ": rank ", elsewhere, " is not on this host (shared memory needs every rank on one host, "
          "in one IPC, PID and network namespace); use --collective-transport tcp or auto"));
    }
    return CreateGlooCommunicator(tcp);
  }
  SharedMemoryCommunicatorConfig shm;
  shm.store = config.store;
  shm.prefix = absl::StrCat(config.prefix, "/shm");
  shm.rank = config.rank;
  shm.size = config.size;
  shm.timeout = config.timeout;
  shm.label = config.label;
  return CreateSharedMemoryCommunicator(shm);
}

}  // namespace strata::parallel
