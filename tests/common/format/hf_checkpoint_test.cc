#include <filesystem>
#include <string>

#include "common/format/safetensors_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/safetensors_builder.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::SafetensorsBuilder;
using ::strata::testing::WriteTextFile;
using ::testing::HasSubstr;

constexpr char kConfig[] = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 4})";

// A fresh, empty directory per test.
std::string MakeDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("hf_checkpoint_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// Two shards: a.safetensors {x, y}, b.safetensors {z}, and an index.
std::string WriteShardedCheckpoint(const std::string& name) {
  const std::string dir = MakeDir(name);
  WriteTextFile(dir + "/config.json", kConfig);
  SafetensorsBuilder a;
  a.AddF32("x", {2}, {1, 2}).AddF32("y", {1}, {3});
  a.WriteTo(dir + "/a.safetensors");
  SafetensorsBuilder b;
  b.AddF32("z", {3}, {4, 5, 6});
  b.WriteTo(dir + "/b.safetensors");
  WriteTextFile(dir + "/model.safetensors.index.json",
                R"({"metadata": {"total_size": 24},
                    "weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors"}})");
  return dir;
}

TEST(HfCheckpointTest, SingleFile) {
  const std::string dir = MakeDir("single");
  WriteTextFile(dir + "/config.json", kConfig);
  SafetensorsBuilder b;
  b.AddF32("model.embed_tokens.weight", {2, 2}, {1, 2, 3, 4});
  b.WriteTo(dir + "/model.safetensors");
  auto c = HfCheckpoint::Open(dir);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->dir(), dir);
  EXPECT_EQ((*c)->config_json(), kConfig);
  ASSERT_EQ((*c)->tensors().size(), 1u);
  const SafetensorsTensor* t = (*c)->FindTensor("model.embed_tokens.weight");
  ASSERT_NE(t, nullptr);
  float v[4];
  std::memcpy(v, t->data, sizeof(v));
  EXPECT_EQ(v[3], 4.0f);
}

TEST(HfCheckpointTest, ShardedWithIndex) {
  const std::string dir = WriteShardedCheckpoint("sharded");
  auto c = HfCheckpoint::Open(dir);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->tensors().size(), 3u);
  for (const char* name : {"x", "y", "z"}) EXPECT_NE((*c)->FindTensor(name), nullptr) << name;
  float z[3];
  std::memcpy(z, (*c)->FindTensor("z")->data, sizeof(z));
  EXPECT_EQ(z[2], 6.0f);
  EXPECT_EQ((*c)->FindTensor("w"), nullptr);
}

TEST(HfCheckpointBadInputTest, MissingConfigIsNotFoundNamingPath) {
  const std::string dir = MakeDir("noconfig");
  SafetensorsBuilder().AddF32("x", {1}, {1}).WriteTo(dir + "/model.safetensors");
  auto c = HfCheckpoint::Open(dir);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr(dir + "/config.json"));
}

TEST(HfCheckpointBadInputTest, NoWeights) {
  const std::string dir = MakeDir("noweights");
  WriteTextFile(dir + "/config.json", kConfig);
  auto c = HfCheckpoint::Open(dir);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("model.safetensors"));

  auto nodir = HfCheckpoint::Open(dir + "/missing");
  EXPECT_EQ(nodir.status().code(), absl::StatusCode::kNotFound);
}

TEST(HfCheckpointBadInputTest, MissingShard) {
  const std::string dir = WriteShardedCheckpoint("missing_shard");
  fs::remove(dir + "/b.safetensors");
  auto c = HfCheckpoint::Open(dir);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("b.safetensors"));
}

TEST(HfCheckpointBadInputTest, TensorMissingFromItsShard) {
  const std::string dir = WriteShardedCheckpoint("missing_tensor");
  WriteTextFile(dir + "/model.safetensors.index.json",
                R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "a.safetensors"}})");
  auto c = HfCheckpoint::Open(dir);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("tensor 'z' is mapped to a.safetensors"));
}

TEST(HfCheckpointBadInputTest, DuplicateTensorAcrossShards) {
  const std::string dir = WriteShardedCheckpoint("duplicate");
  SafetensorsBuilder b;
  b.AddF32("z", {3}, {4, 5, 6}).AddF32("x", {2}, {1, 2});
  b.WriteTo(dir + "/b.safetensors");
  auto c = HfCheckpoint::Open(dir);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("tensor 'x' appears in both a.safetensors and b.safetensors"));
}

TEST(HfCheckpointBadInputTest, BadIndexJson) {
  const std::string dir = WriteShardedCheckpoint("bad_index");
  for (const char* text : {"{not json", "[]", "{}", R"({"weight_map": []})", R"({"weight_map": {}})",
                           R"({"weight_map": {"x": 1}})", R"({"weight_map": {"x": "../a.safetensors"}})",
                           R"({"weight_map": {"x": "/etc/passwd"}})"}) {
    WriteTextFile(dir + "/model.safetensors.index.json", text);
    auto c = HfCheckpoint::Open(dir);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(c.status().message(), HasSubstr("model.safetensors.index.json")) << text;
  }
}

TEST(HfCheckpointBadInputTest, CorruptShardNamesShard) {
  const std::string dir = WriteShardedCheckpoint("corrupt_shard");
  WriteTextFile(dir + "/b.safetensors", "garbage!garbage!");
  auto c = HfCheckpoint::Open(dir);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("b.safetensors"));
}

}  // namespace
}  // namespace strata
