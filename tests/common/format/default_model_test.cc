// Opens the real default model (fetched by scripts/setup.sh). In CI (env CI
// set) a missing model is a failure, so a broken setup cannot pass silently;
// on a developer machine it is a skip with a hint.
#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/format/gguf_file.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

TEST(GgufDefaultModelTest, SmolLm2Q4_1) {
  const std::string path = STRATA_DEFAULT_MODEL;
  if (!std::filesystem::exists(path)) {
    if (std::getenv("CI") != nullptr) FAIL() << "default model missing at " << path << " (run scripts/setup.sh)";
    GTEST_SKIP() << "default model not found at " << path << "; run scripts/setup.sh to fetch it";
  }
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  EXPECT_EQ(g.tensors().size(), 272u);
  EXPECT_EQ(*g.GetString("general.architecture"), "llama");
  EXPECT_EQ(*g.GetInt("llama.block_count"), 30);

  const GgufTensorInfo* emb = g.FindTensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->type, TensorType::kQ8_0);
  EXPECT_EQ(emb->shape, (std::vector<int64_t>{576, 49152}));
  EXPECT_EQ(emb->size_bytes, 576u / 32 * 34 * 49152);

  auto tokens = g.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(tokens->size(), 49152u);

  // Every tensor's bytes lie inside the file and are typed.
  for (const GgufTensorInfo& t : g.tensors()) {
    EXPECT_NE(t.data, nullptr) << t.name;
    EXPECT_GT(t.size_bytes, 0u) << t.name;
  }
}

}  // namespace
}  // namespace strata
