// Cross-check against files written by the reference Python packages
// (gguf.GGUFWriter, safetensors.numpy): write_reference_files.py writes the
// files and expected.json, and the C++ readers must agree on every value and
// byte. This catches mistakes our own builders would share with our reader.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/format/gguf_file.h"
#include "common/format/safetensors_file.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Hex(const void* data, uint64_t size) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  const auto* p = static_cast<const uint8_t*>(data);
  for (uint64_t i = 0; i < size; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

// numpy dtype name -> safetensors dtype.
std::string SafetensorsDtype(const std::string& numpy) {
  if (numpy == "float32") return "F32";
  if (numpy == "float16") return "F16";
  if (numpy == "int64") return "I64";
  if (numpy == "uint8") return "U8";
  if (numpy == "bool") return "BOOL";
  return "?" + numpy;
}

class ReferenceFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string python = STRATA_PYTHON;
    if (!fs::exists(python)) {
      if (std::getenv("CI") != nullptr) FAIL() << "reference Python missing at " << python;
      GTEST_SKIP() << "reference Python not found at " << python << "; run scripts/setup.sh";
    }
    // One directory per process: ctest runs the cases of this file in parallel.
    dir_ = (fs::path(::testing::TempDir()) / ("strata_reference_files_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    const std::string cmd = "timeout 60 '" + python + "' '" STRATA_SOURCE_DIR
                            "/tests/common/format/write_reference_files.py' '" + dir_ + "'";
    const int rc = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << "failed (rc " << rc << "): " << cmd;
    std::ifstream in(dir_ + "/expected.json");
    ASSERT_TRUE(in.good());
    expected_ = json::parse(in);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  void CheckSafetensorsTensor(const SafetensorsTensor* t, const json& want) {
    const std::string name = want["name"];
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->dtype, SafetensorsDtype(want["dtype"])) << name;
    EXPECT_EQ(t->shape, want["shape"].get<std::vector<int64_t>>()) << name;
    EXPECT_EQ(Hex(t->data, t->size_bytes), want["hex"].get<std::string>()) << name;
    const bool usable = t->dtype == "F32" || t->dtype == "F16";
    EXPECT_EQ(t->type.has_value(), usable) << name;
  }

  std::string dir_;
  json expected_;
};

TEST_F(ReferenceFilesTest, GgufMetadataAndTensorsMatchPythonWriter) {
  ASSERT_EQ(expected_["gguf"].size(), 2u);
  for (const json& file : expected_["gguf"]) {
    const std::string path = dir_ + "/" + file["file"].get<std::string>();
    SCOPED_TRACE(path);
    auto f = GgufFile::Open(path);
    ASSERT_TRUE(f.ok()) << f.status();
    const GgufFile& g = **f;
    EXPECT_EQ(g.version(), file["version"].get<uint32_t>());

    for (const auto& [key, want] : file["metadata"].items()) {
      SCOPED_TRACE(key);
      const std::string kind = want["kind"];
      const json& value = want["value"];
      if (kind == "int") {
        auto v = g.GetInt(key);
        ASSERT_TRUE(v.ok()) << v.status();
        EXPECT_EQ(*v, value.get<int64_t>());
      } else if (kind == "float") {
        auto v = g.GetFloat(key);
        ASSERT_TRUE(v.ok()) << v.status();
        EXPECT_EQ(*v, value.get<double>());
      } else if (kind == "bool") {
        auto v = g.GetBool(key);
        ASSERT_TRUE(v.ok()) << v.status();
        EXPECT_EQ(*v, value.get<bool>());
      } else if (kind == "string") {
        auto v = g.GetString(key);
        ASSERT_TRUE(v.ok()) << v.status();
        EXPECT_EQ(*v, value.get<std::string>());
      } else if (kind == "string_array") {
        auto v = g.GetStringArray(key);
        ASSERT_TRUE(v.ok()) << v.status();
        EXPECT_EQ(*v, value.get<std::vector<std::string>>());
      } else if (kind == "int_array") {
        auto v = g.GetIntArray(key);
        ASSERT_TRUE(v.ok()) << v.status();
        EXPECT_EQ(*v, value.get<std::vector<int64_t>>());
      } else if (kind == "float_array") {
        auto v = g.GetFloatArray(key);
        ASSERT_TRUE(v.ok()) << v.status();
        std::vector<float> want_f;
        for (const json& x : value) want_f.push_back(static_cast<float>(x.get<double>()));
        EXPECT_EQ(*v, want_f);
      } else {
        ADD_FAILURE() << "unknown kind " << kind;
      }
    }

    ASSERT_EQ(g.tensors().size(), file["tensors"].size());
    const uint64_t alignment = file["alignment"];
    const uint8_t* first = static_cast<const uint8_t*>(g.tensors()[0].data);
    for (size_t i = 0; i < g.tensors().size(); ++i) {
      const GgufTensorInfo& t = g.tensors()[i];
      const json& want = file["tensors"][i];
      SCOPED_TRACE(t.name);
      EXPECT_EQ(t.name, want["name"].get<std::string>());
      EXPECT_EQ(static_cast<uint32_t>(t.type), want["type"].get<uint32_t>());
      EXPECT_EQ(t.shape, want["shape"].get<std::vector<int64_t>>());
      EXPECT_EQ(Hex(t.data, t.size_bytes), want["hex"].get<std::string>());
      EXPECT_EQ((static_cast<const uint8_t*>(t.data) - first) % alignment, 0u);
    }
  }
}

TEST_F(ReferenceFilesTest, SafetensorsMatchesPythonWriter) {
  const json& single = expected_["single"];
  auto f = SafetensorsFile::Open(dir_ + "/" + single["file"].get<std::string>());
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ((*f)->tensors().size(), single["tensors"].size());
  for (const json& want : single["tensors"]) {
    CheckSafetensorsTensor((*f)->FindTensor(want["name"].get<std::string>()), want);
  }
}

TEST_F(ReferenceFilesTest, ShardedCheckpointMatchesPythonWriter) {
  const json& hf = expected_["hf"];
  auto c = HfCheckpoint::Open(dir_ + "/" + hf["dir"].get<std::string>());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NE((*c)->config_json().find("LlamaForCausalLM"), std::string::npos);
  ASSERT_EQ((*c)->tensors().size(), hf["tensors"].size());
  for (const json& want : hf["tensors"]) {
    CheckSafetensorsTensor((*c)->FindTensor(want["name"].get<std::string>()), want);
  }
}

}  // namespace
}  // namespace strata
