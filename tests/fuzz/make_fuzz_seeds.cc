// Writes the seed corpora for the format fuzzers from the test builders:
//   make_fuzz_seeds GGUF_DIR SAFETENSORS_DIR
// Seeds are small valid files that reach every branch of the parsers, so the
// fuzzer starts from deep inside the formats rather than from random bytes.
#include <cstdio>
#include <string>
#include <vector>

#include "tests/testing/gguf_builder.h"
#include "tests/testing/safetensors_builder.h"

namespace {

using strata::GgufValueType;
using strata::TensorType;
using strata::testing::GgufBuilder;
using strata::testing::SafetensorsBuilder;

void WriteGgufSeeds(const std::string& dir) {
  GgufBuilder all(3);
  all.AddU8("u8", 1)
      .AddI8("i8", -1)
      .AddU16("u16", 2)
      .AddI16("i16", -2)
      .AddU32("u32", 3)
      .AddI32("i32", -3)
      .AddU64("u64", 4)
      .AddI64("i64", -4)
      .AddF32("f32", 0.5f)
      .AddF64("f64", 0.25)
      .AddBool("bool", true)
      .AddString("general.architecture", "llama")
      .AddStringArray("tokenizer.ggml.tokens", {"<s>", "</s>", "a", "b"})
      .AddArray<int32_t>("tokenizer.ggml.token_type", GgufValueType::kInt32, {1, 3, 1, 1})
      .AddArray<float>("tokenizer.ggml.scores", GgufValueType::kFloat32, {0, -1, -2, -3})
      .AddArray<double>("f64s", GgufValueType::kFloat64, {1, 2})
      .AddArray<uint64_t>("u64s", GgufValueType::kUint64, {1, 2})
      .AddF32Tensor("f32", {2, 2}, {1, 2, 3, 4})
      .AddTensor("f16", TensorType::kF16, {4}, std::vector<uint8_t>(8, 0x3c))
      .AddTensor("q8_0", TensorType::kQ8_0, {32, 2}, std::vector<uint8_t>(68, 1))
      .AddTensor("q4_1", TensorType::kQ4_1, {32}, std::vector<uint8_t>(20, 2))
      .AddTensor("q6_k", TensorType::kQ6_K, {256}, std::vector<uint8_t>(210, 3));
  all.WriteTo(dir + "/all_types_v3.gguf");

  GgufBuilder v2(2);
  v2.AddString("general.architecture", "llama").AddU32("llama.block_count", 1).AddF32Tensor("w", {3}, {1, 2, 3});
  v2.WriteTo(dir + "/v2.gguf");

  GgufBuilder aligned(3);
  aligned.SetAlignment(64).AddF32Tensor("a", {1}, {1}).AddF32Tensor("b", {17}, std::vector<float>(17, 2));
  aligned.WriteTo(dir + "/align64.gguf");

  GgufBuilder meta_only(3);
  meta_only.AddStringArray("tokenizer.ggml.merges", {"a b", "ab c"});
  meta_only.WriteTo(dir + "/metadata_only.gguf");
}

void WriteSafetensorsSeeds(const std::string& dir) {
  SafetensorsBuilder all;
  all.SetMetadata({{"format", "pt"}})
      .AddF32("w", {2, 2}, {1, 2, 3, 4})
      .AddTensor("h", "F16", {2}, {0, 0x3c, 0, 0x40})
      .AddTensor("b", "BF16", {1}, {0x80, 0x3f})
      .AddTensor("ids", "I64", {1}, std::vector<uint8_t>(8, 1))
      .AddTensor("mask", "BOOL", {2}, {1, 0})
      .AddTensor("f8", "F8_E4M3", {2}, {1, 2})
      .AddTensor("empty", "F32", {0}, {});
  all.WriteTo(dir + "/all_dtypes.safetensors");

  SafetensorsBuilder unpadded;
  unpadded.PadHeader(false).AddF32("scalar", {}, {1});
  unpadded.WriteTo(dir + "/scalar.safetensors");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s GGUF_DIR SAFETENSORS_DIR\n", argv[0]);
    return 2;
  }
  WriteGgufSeeds(argv[1]);
  WriteSafetensorsSeeds(argv[2]);
  return 0;
}
