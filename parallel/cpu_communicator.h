// Chooses the CPU transport for one group of ranks: shared memory when every
// rank runs on this host, Gloo's TCP transport otherwise.
//
// "This host" means what a POSIX shared-memory segment and a PID check need:
// the same kernel boot (/proc/sys/kernel/random/boot_id), IPC, PID and
// network namespaces. The network namespace is part of it on purpose: ranks
// in different network namespaces (containers without host networking, the
// multi-host test) are treated as different hosts and talk over TCP.
//
// kAuto: every rank publishes its host identity under `<prefix>/host/<rank>`
// and reads the others'; all equal -> CreateSharedMemoryCommunicator under
// `<prefix>/shm`, else CreateGlooCommunicator under `<prefix>/tcp`. Every rank
// reads the same identities, so all pick the same transport.
// kSharedMemory: as kAuto but FAILED_PRECONDITION naming the first rank on
// another host. kTcp: always Gloo.
//
// Threading: Create blocks for the rendezvous; see the communicators.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "parallel/communicator.h"
#include "parallel/key_value_store.h"

namespace strata::parallel {

enum class CpuTransport { kAuto, kTcp, kSharedMemory };

// "auto", "tcp", "shm".
absl::StatusOr<CpuTransport> ParseCpuTransport(absl::string_view name);

struct CpuCommunicatorConfig {
  KeyValueStore* store = nullptr;
  std::string prefix;
  int rank = 0;
  int size = 1;
  std::string bind_address;  // TCP only: see GlooCommunicatorConfig
  absl::Duration timeout = absl::Seconds(60);
  std::string label;
  CpuTransport transport = CpuTransport::kAuto;
};

// This process's host identity (see above), e.g.
// "3f2a...-boot/ipc:4026531839/pid:4026531836/net:4026531840".
std::string HostIdentity();

absl::StatusOr<std::unique_ptr<Communicator>> CreateCpuCommunicator(const CpuCommunicatorConfig& config);

}  // namespace strata::parallel
