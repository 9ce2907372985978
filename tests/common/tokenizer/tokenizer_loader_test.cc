// Tokenizer::FromHfFile and Tokenizer::FromGguf on files written here:
// accepted variants (merge formats, tokenizer_config.json, post-processor
// BOS) and the errors a user sees for missing or malformed files.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "common/format/gguf_file.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/unicode_bytes.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/gguf_builder.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TokenizerLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("strata_tok_loader_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // A byte-level tokenizer.json: 256 byte symbols, "h i" -> "hi", one
  // special token.
  static json ByteLevelJson() {
    json vocab = json::object();
    for (int b = 0; b < 256; ++b) vocab[tokenizer_internal::ByteToUnicode(static_cast<uint8_t>(b))] = b;
    vocab["hi"] = 256;
    return json{
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"h i"})}}},
        {"added_tokens", json::array({{{"id", 257}, {"content", "<|endoftext|>"}, {"special", true}}})},
        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
        {"decoder", {{"type", "ByteLevel"}}},
    };
  }

  fs::path dir_;
};

TEST_F(TokenizerLoaderTest, MissingFileIsNotFoundNamingThePath) {
  const std::string path = (dir_ / "nope" / "tokenizer.json").string();
  auto tok = Tokenizer::FromHfFile(path);
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(tok.status().message(), HasSubstr(path));
}

TEST_F(TokenizerLoaderTest, MalformedFilesNameTheField) {
  auto check = [&](const std::string& text, const std::string& field) {
    const std::string path = Write("tokenizer.json", text);
    auto tok = Tokenizer::FromHfFile(path);
    EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument) << field << ": " << tok.status();
    EXPECT_THAT(tok.status().message(), HasSubstr(field));
    EXPECT_THAT(tok.status().message(), HasSubstr(path));
  };
  check("{not json", "not valid JSON");
  check("[]", "(root)");
  check("{}", "model");
  json j = ByteLevelJson();
  j["model"].erase("vocab");
  check(j.dump(), "model.vocab");
  j = ByteLevelJson();
  j["model"]["merges"] = json::array({42});
  check(j.dump(), "model.merges[0]");
  j = ByteLevelJson();
  j["model"]["vocab"]["x y"] = "seven";
  check(j.dump(), "model.vocab[\"x y\"]");
  j = ByteLevelJson();
  j["added_tokens"] = json::array({{{"content", "<x>"}}});
  check(j.dump(), "added_tokens[0]");
  j = ByteLevelJson();
  j.erase("pre_tokenizer");
  j.erase("decoder");
  check(j.dump(), "pre_tokenizer");
  j = ByteLevelJson();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  check(j.dump(), "(unclosed");
}

TEST_F(TokenizerLoaderTest, UnsupportedModelsAreUnimplemented) {
  json j = ByteLevelJson();
  j["model"]["type"] = "Unigram";
  auto tok = Tokenizer::FromHfFile(Write("tokenizer.json", j.dump()));
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(tok.status().message(), HasSubstr("Unigram"));
  j = ByteLevelJson();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  tok = Tokenizer::FromHfFile(Write("tokenizer.json", j.dump()));
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kUnimplemented);
}

TEST_F(TokenizerLoaderTest, MergesAsStringsOrPairs) {
  json j = ByteLevelJson();
  auto a = Tokenizer::FromHfFile(Write("tokenizer.json", j.dump()));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT((*a)->Encode("hi<|endoftext|>", false, true), ElementsAre(256, 257));
  j["model"]["merges"] = json::array({json::array({"h", "i"})});
  auto b = Tokenizer::FromHfFile(Write("tokenizer.json", j.dump()));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT((*b)->Encode("hi", false, true), ElementsAre(256));
  EXPECT_TRUE((*b)->IsSpecial(257));
  EXPECT_TRUE((*b)->IsEndOfGeneration(257));
}

TEST_F(TokenizerLoaderTest, ConfigBesideTheFileSetsBosEosAndTemplate) {
  json j = ByteLevelJson();
  j["added_tokens"].push_back({{"id", 258}, {"content", "<|im_end|>"}, {"special", true}});
  const std::string path = Write("tokenizer.json", j.dump());
  Write("tokenizer_config.json", json{{"bos_token", {{"content", "<|endoftext|>"}}},
                                      {"eos_token", "<|im_end|>"},
                                      {"add_bos_token", true},
                                      {"chat_template", "{{ '<|im_start|>' }}"}}
                                     .dump());
  auto tok = Tokenizer::FromHfFile(path);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->bos_id(), 257);
  EXPECT_EQ((*tok)->eos_id(), 258);
  EXPECT_TRUE((*tok)->add_bos());
  EXPECT_THAT((*tok)->Encode("hi", true, false), ElementsAre(257, 256));
  EXPECT_EQ((*tok)->chat_template(), "{{ '<|im_start|>' }}");

  Write("tokenizer_config.json", "{broken");
  tok = Tokenizer::FromHfFile(path);
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tok.status().message(), HasSubstr("tokenizer_config.json"));
}

TEST_F(TokenizerLoaderTest, PostProcessorTemplateAddsBos) {
  json j = ByteLevelJson();
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<|endoftext|>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})}};
  auto tok = Tokenizer::FromHfFile(Write("tokenizer.json", j.dump()));
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_TRUE((*tok)->add_bos());
  EXPECT_THAT((*tok)->Encode("hi", true, false), ElementsAre(257, 256));
}

// GGUF: the metadata llama.cpp's converter writes.
testing::GgufBuilder ByteLevelGguf(const std::string& pre = "smollm", int drop_types = 0) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(tokenizer_internal::ByteToUnicode(static_cast<uint8_t>(b)));
  tokens.push_back("hi");
  tokens.push_back("<|im_end|>");
  std::vector<int32_t> types(tokens.size(), 1);
  types.back() = 3;
  types.resize(types.size() - drop_types);
  testing::GgufBuilder b;
  b.AddString("tokenizer.ggml.model", "gpt2")
      .AddString("tokenizer.ggml.pre", pre)
      .AddStringArray("tokenizer.ggml.tokens", tokens)
      .AddArray<int32_t>("tokenizer.ggml.token_type", GgufValueType::kInt32, types)
      .AddStringArray("tokenizer.ggml.merges", {"h i"})
      .AddU32("tokenizer.ggml.bos_token_id", 257)
      .AddU32("tokenizer.ggml.eos_token_id", 257)
      .AddString("tokenizer.chat_template", "<|im_start|>");
  return b;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> FromImage(const std::vector<uint8_t>& image) {
  auto gguf = GgufFile::Parse(image.data(), image.size(), "test.gguf");
  if (!gguf.ok()) return gguf.status();
  return Tokenizer::FromGguf(**gguf);
}

TEST_F(TokenizerLoaderTest, FromGgufReadsTheTokenizerKeys) {
  const auto image = ByteLevelGguf().Build();
  auto tok = FromImage(image);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->vocab_size(), 258);
  EXPECT_THAT((*tok)->Encode("hi<|im_end|>", false, true), ElementsAre(256, 257));
  EXPECT_FALSE((*tok)->add_bos());
  EXPECT_EQ((*tok)->chat_template(), "<|im_start|>");
  EXPECT_TRUE((*tok)->IsEndOfGeneration(257));
}

TEST_F(TokenizerLoaderTest, FromGgufErrors) {
  // No tokenizer at all.
  auto none = testing::GgufBuilder().AddString("general.architecture", "llama").Build();
  auto tok = FromImage(none);
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kNotFound);
  // Unsupported model.
  auto bert = testing::GgufBuilder().AddString("tokenizer.ggml.model", "bert").Build();
  tok = FromImage(bert);
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(tok.status().message(), HasSubstr("bert"));
  // Token types that do not match the tokens.
  auto bad_types = ByteLevelGguf("smollm", /*drop_types=*/1).Build();
  tok = FromImage(bad_types);
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tok.status().message(), HasSubstr("token_type"));
  // Unknown pre-tokenizer.
  auto bad_pre = ByteLevelGguf("klingon").Build();
  tok = FromImage(bad_pre);
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(tok.status().message(), HasSubstr("klingon"));
  // gpt2 without merges.
  auto no_merges = testing::GgufBuilder()
                       .AddString("tokenizer.ggml.model", "gpt2")
                       .AddStringArray("tokenizer.ggml.tokens", {"a"})
                       .Build();
  tok = FromImage(no_merges);
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata
