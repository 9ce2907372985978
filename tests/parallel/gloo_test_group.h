// Test helper: a Gloo group of N ranks as threads of this process, meeting
// through one rendezvous store on 127.0.0.1.
//
// Threading: CreateGroup and RunOnRanks start one thread per rank and join
// them before returning.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "parallel/communicator.h"
#include "parallel/gloo_communicator.h"
#include "parallel/key_value_store.h"

namespace strata::parallel::testing {

inline std::string UniquePrefix(const std::string& name) {
  static std::atomic<int> next{0};
  return absl::StrCat("test/", name, "/", next.fetch_add(1));
}

// Creates ranks [0, n) concurrently (Create blocks for the rendezvous).
inline std::vector<absl::StatusOr<std::unique_ptr<Communicator>>> CreateGroupStatus(
    KeyValueStore* store, const std::string& prefix, int n, absl::Duration timeout,
    GlooAllReduceAlgorithm algorithm = GlooAllReduceAlgorithm::kAuto) {
  std::vector<absl::StatusOr<std::unique_ptr<Communicator>>> out(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      GlooCommunicatorConfig config;
      config.store = store;
      config.prefix = prefix;
      config.rank = r;
      config.size = n;
      config.bind_address = "127.0.0.1";
      config.timeout = timeout;
      config.label = prefix;
      config.allreduce_algorithm = algorithm;
      out[r] = CreateGlooCommunicator(config);
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

inline std::vector<std::unique_ptr<Communicator>> CreateGroup(
    KeyValueStore* store, const std::string& prefix, int n, absl::Duration timeout,
    GlooAllReduceAlgorithm algorithm = GlooAllReduceAlgorithm::kAuto) {
  std::vector<std::unique_ptr<Communicator>> comms;
  for (auto& c : CreateGroupStatus(store, prefix, n, timeout, algorithm)) {
    EXPECT_TRUE(c.ok()) << c.status();
    if (c.ok()) comms.push_back(std::move(*c));
  }
  return comms;
}

// Runs fn(rank, communicator) on every rank concurrently.
inline void RunOnRanks(const std::vector<std::unique_ptr<Communicator>>& comms,
                       const std::function<void(int, Communicator&)>& fn) {
  std::vector<std::thread> threads;
  for (int r = 0; r < static_cast<int>(comms.size()); ++r) {
    threads.emplace_back([&, r] { fn(r, *comms[r]); });
  }
  for (auto& t : threads) t.join();
}

}  // namespace strata::parallel::testing
