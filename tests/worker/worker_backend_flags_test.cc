// strata-worker's backend flags (--weight-dtype, --cuda-graphs): parsing, the
// errors naming the flag, and what reaches StepExecutorConfig::backend.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "worker/worker_flags.h"

namespace strata {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

absl::StatusOr<WorkerFlags> Parse(std::vector<std::string> extra) {
  std::vector<std::string> args = {"--coordinator", "localhost:1", "--model", "/"};
  args.insert(args.end(), extra.begin(), extra.end());
  return ParseWorkerFlags(args);
}

TEST(WorkerBackendFlags, DefaultsAreFileWeightTypesAndGraphsOn) {
  absl::StatusOr<WorkerFlags> f = Parse({"--device", "cuda:0"});
  ASSERT_TRUE(f.ok()) << f.status();
  const StepExecutorConfig c = ExecutorConfigFromFlags(*f);
  EXPECT_FALSE(c.backend.fp8_weights);
  EXPECT_TRUE(c.backend.cuda_graphs);
}

TEST(WorkerBackendFlags, Fp8WeightsAndGraphsOffReachTheExecutorConfig) {
  absl::StatusOr<WorkerFlags> f =
      Parse({"--device", "cuda:3", "--weight-dtype", "fp8", "--cuda-graphs=off"});
  ASSERT_TRUE(f.ok()) << f.status();
  const StepExecutorConfig c = ExecutorConfigFromFlags(*f);
  EXPECT_TRUE(c.backend.fp8_weights);
  EXPECT_FALSE(c.backend.cuda_graphs);
  EXPECT_EQ(c.device.index, 3);
  absl::StatusOr<WorkerFlags> on = Parse({"--device", "cuda", "--weight-dtype=auto", "--cuda-graphs", "on"});
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_FALSE(ExecutorConfigFromFlags(*on).backend.fp8_weights);
  EXPECT_TRUE(ExecutorConfigFromFlags(*on).backend.cuda_graphs);
}

TEST(WorkerBackendFlags, BadValuesNameTheFlag) {
  struct Case {
    std::vector<std::string> args;
    const char* flag;
    const char* why;
  };
  const Case cases[] = {
      {{"--device", "cuda:0", "--weight-dtype", "int4"}, "--weight-dtype", "expected auto or fp8"},
      {{"--device", "cuda:0", "--weight-dtype", ""}, "--weight-dtype", "expected auto or fp8"},
      {{"--weight-dtype", "fp8"}, "--weight-dtype", "--device cuda:N"},  // cpu
      {{"--device", "cuda:0", "--cuda-graphs", "yes"}, "--cuda-graphs", "expected on or off"},
      {{"--cuda-graphs", "on", "--cuda-graphs", "off"}, "--cuda-graphs", "given twice"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<WorkerFlags> f = Parse(c.args);
    ASSERT_FALSE(f.ok()) << c.args.back();
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(f.status().message()), StartsWith(c.flag));
    EXPECT_THAT(std::string(f.status().message()), HasSubstr(c.why));
  }
  EXPECT_THAT(WorkerUsage(), HasSubstr("--weight-dtype auto|fp8"));
  EXPECT_THAT(WorkerUsage(), HasSubstr("--cuda-graphs on|off"));
}

}  // namespace
}  // namespace strata
