#include "common/format/gguf_file.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <list>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/gguf_builder.h"

namespace strata {
namespace {

using ::strata::testing::GgufBuilder;
using ::testing::HasSubstr;

// Parse() does not copy: the bytes must outlive the GgufFile. Tests pass
// temporaries, so keep a copy of every image for the life of the process.
absl::StatusOr<std::unique_ptr<GgufFile>> ParseImage(const std::vector<uint8_t>& bytes,
                                                     std::string name = "test.gguf") {
  static auto* images = new std::list<std::vector<uint8_t>>();
  const std::vector<uint8_t>& kept = images->emplace_back(bytes);
  return GgufFile::Parse(kept.data(), kept.size(), std::move(name));
}

std::vector<uint8_t> F32Bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// A small valid file touching every value type, used by several tests.
GgufBuilder SmallValidFile(uint32_t version = 3) {
  GgufBuilder b(version);
  b.AddString("general.architecture", "llama")
      .AddU32("llama.block_count", 2)
      .AddF32("llama.rope.freq_base", 10000.0f)
      .AddBool("tokenizer.ggml.add_bos_token", true)
      .AddStringArray("tokenizer.ggml.tokens", {"<s>", "</s>", "a"})
      .AddArray<int32_t>("tokenizer.ggml.token_type", GgufValueType::kInt32, {1, 3, 1})
      .AddArray<float>("tokenizer.ggml.scores", GgufValueType::kFloat32, {0.0f, -1.5f, 2.0f})
      .AddF32Tensor("a", {3, 2}, {1, 2, 3, 4, 5, 6})
      .AddTensor("q", TensorType::kQ8_0, {32, 1}, std::vector<uint8_t>(34, 7));
  return b;
}

TEST(GgufFileTest, ScalarsOfEveryType) {
  GgufBuilder b;
  b.AddU8("u8", 200)
      .AddI8("i8", -100)
      .AddU16("u16", 60000)
      .AddI16("i16", -30000)
      .AddU32("u32", 4000000000u)
      .AddI32("i32", -2000000000)
      .AddU64("u64", 1ull << 40)
      .AddI64("i64", -(1ll << 40))
      .AddU64("u64_big", std::numeric_limits<uint64_t>::max())
      .AddF32("f32", 0.25f)
      .AddF64("f64", -1e300)
      .AddBool("yes", true)
      .AddBool("no", false)
      .AddString("s", "hello")
      .AddString("empty", "");
  auto f = ParseImage(b.Build());
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(*g.GetInt("u8"), 200);
  EXPECT_EQ(*g.GetInt("i8"), -100);
  EXPECT_EQ(*g.GetInt("u16"), 60000);
  EXPECT_EQ(*g.GetInt("i16"), -30000);
  EXPECT_EQ(*g.GetInt("u32"), 4000000000ll);
  EXPECT_EQ(*g.GetInt("i32"), -2000000000);
  EXPECT_EQ(*g.GetInt("u64"), 1ll << 40);
  EXPECT_EQ(*g.GetInt("i64"), -(1ll << 40));
  EXPECT_EQ(*g.GetFloat("f32"), 0.25);
  EXPECT_EQ(*g.GetFloat("f64"), -1e300);
  EXPECT_TRUE(*g.GetBool("yes"));
  EXPECT_FALSE(*g.GetBool("no"));
  EXPECT_EQ(*g.GetString("s"), "hello");
  EXPECT_EQ(*g.GetString("empty"), "");
  EXPECT_EQ(g.keys(), (std::vector<std::string>{"empty", "f32", "f64", "i16", "i32", "i64", "i8", "no", "s",
                                                "u16", "u32", "u64", "u64_big", "u8", "yes"}));
  EXPECT_TRUE(g.HasKey("s"));
  EXPECT_FALSE(g.HasKey("nope"));

  // A u64 that does not fit in int64 is an error, not a wrapped value.
  auto big = g.GetInt("u64_big");
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(big.status().message(), HasSubstr("u64_big"));
}

TEST(GgufFileTest, GetterTypeMismatchAndMissingKey) {
  auto f = ParseImage(SmallValidFile().Build());
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  auto missing = g.GetString("no.such.key");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("no.such.key"));
  EXPECT_THAT(missing.status().message(), HasSubstr("test.gguf"));

  auto wrong = g.GetInt("general.architecture");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.status().message(), HasSubstr("general.architecture"));
  EXPECT_THAT(wrong.status().message(), HasSubstr("string"));
  EXPECT_EQ(g.GetFloat("llama.block_count").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(g.GetString("llama.block_count").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(g.GetBool("llama.block_count").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(g.GetInt("llama.rope.freq_base").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(g.GetIntArray("tokenizer.ggml.tokens").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(g.GetFloatArray("tokenizer.ggml.token_type").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(g.GetStringArray("tokenizer.ggml.scores").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(g.GetIntArray("llama.block_count").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(g.GetStringArray("general.architecture").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GgufFileTest, ArraysOfEveryElementType) {
  GgufBuilder b;
  b.AddArray<uint8_t>("u8", GgufValueType::kUint8, {0, 255})
      .AddArray<int8_t>("i8", GgufValueType::kInt8, {-128, 127})
      .AddArray<uint16_t>("u16", GgufValueType::kUint16, {65535})
      .AddArray<int16_t>("i16", GgufValueType::kInt16, {-32768})
      .AddArray<uint32_t>("u32", GgufValueType::kUint32, {4294967295u})
      .AddArray<int32_t>("i32", GgufValueType::kInt32, {-5, 6})
      .AddArray<uint64_t>("u64", GgufValueType::kUint64, {1ull << 50})
      .AddArray<uint64_t>("u64_big", GgufValueType::kUint64, {1, 1ull << 63})
      .AddArray<int64_t>("i64", GgufValueType::kInt64, {-(1ll << 50)})
      .AddArray<float>("f32", GgufValueType::kFloat32, {1.5f, -2.0f})
      .AddArray<double>("f64", GgufValueType::kFloat64, {0.125, 3.0})
      .AddArray<uint8_t>("bools", GgufValueType::kBool, {1, 0})
      .AddArray<int32_t>("empty_ints", GgufValueType::kInt32, {})
      .AddStringArray("strings", {"x", "", "long string with spaces"})
      .AddStringArray("empty_strings", {});
  auto f = ParseImage(b.Build());
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  EXPECT_EQ(*g.GetIntArray("u8"), (std::vector<int64_t>{0, 255}));
  EXPECT_EQ(*g.GetIntArray("i8"), (std::vector<int64_t>{-128, 127}));
  EXPECT_EQ(*g.GetIntArray("u16"), (std::vector<int64_t>{65535}));
  EXPECT_EQ(*g.GetIntArray("i16"), (std::vector<int64_t>{-32768}));
  EXPECT_EQ(*g.GetIntArray("u32"), (std::vector<int64_t>{4294967295ll}));
  EXPECT_EQ(*g.GetIntArray("i32"), (std::vector<int64_t>{-5, 6}));
  EXPECT_EQ(*g.GetIntArray("u64"), (std::vector<int64_t>{1ll << 50}));
  EXPECT_EQ(*g.GetIntArray("i64"), (std::vector<int64_t>{-(1ll << 50)}));
  EXPECT_EQ(g.GetIntArray("u64_big").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*g.GetFloatArray("f32"), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(*g.GetFloatArray("f64"), (std::vector<float>{0.125f, 3.0f}));
  EXPECT_TRUE(g.GetIntArray("empty_ints")->empty());
  EXPECT_EQ(*g.GetStringArray("strings"), (std::vector<std::string>{"x", "", "long string with spaces"}));
  EXPECT_TRUE(g.GetStringArray("empty_strings")->empty());
  // Bool arrays are neither integers nor floats.
  EXPECT_EQ(g.GetIntArray("bools").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GgufFileTest, Version2And3BothParse) {
  for (uint32_t version : {2u, 3u}) {
    auto f = ParseImage(SmallValidFile(version).Build());
    ASSERT_TRUE(f.ok()) << "v" << version << ": " << f.status();
    EXPECT_EQ((*f)->version(), version);
    EXPECT_EQ(*(*f)->GetString("general.architecture"), "llama");
    EXPECT_EQ((*f)->tensors().size(), 2u);
  }
}

TEST(GgufFileTest, RejectsVersion1WithClearMessage) {
  auto f = ParseImage(SmallValidFile(1).Build());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr("version 1 is not supported"));
}

TEST(GgufFileTest, RejectsUnknownVersionAndBigEndian) {
  auto v4 = ParseImage(SmallValidFile(4).Build());
  EXPECT_THAT(v4.status().message(), HasSubstr("unsupported GGUF version 4"));
  auto be = ParseImage(SmallValidFile(0x03000000).Build());
  EXPECT_THAT(be.status().message(), HasSubstr("big-endian"));
}

TEST(GgufFileTest, TensorInfoAndDataPointers) {
  const std::vector<uint8_t> image = SmallValidFile().Build();
  auto f = GgufFile::Parse(image.data(), image.size(), "test.gguf");
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  ASSERT_EQ(g.tensors().size(), 2u);

  const GgufTensorInfo* a = g.FindTensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->type, TensorType::kF32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(a->num_elements, 6);
  EXPECT_EQ(a->size_bytes, 24u);
  const auto* base = image.data();
  const auto* pa = static_cast<const uint8_t*>(a->data);
  ASSERT_GE(pa, base);
  ASSERT_LE(pa + a->size_bytes, base + image.size());
  EXPECT_EQ((pa - base) % 32, 0);
  float values[6];
  std::memcpy(values, pa, sizeof(values));
  EXPECT_EQ(values[0], 1.0f);
  EXPECT_EQ(values[5], 6.0f);

  const GgufTensorInfo* q = g.FindTensor("q");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, TensorType::kQ8_0);
  EXPECT_EQ(q->size_bytes, 34u);
  const auto* pq = static_cast<const uint8_t*>(q->data);
  EXPECT_EQ((pq - base) % 32, 0);
  EXPECT_EQ(pq[0], 7);
  EXPECT_EQ(pq[33], 7);
  EXPECT_EQ(&g.tensors()[1], q);  // file order is kept

  EXPECT_EQ(g.FindTensor("missing"), nullptr);
}

TEST(GgufFileTest, QuantizedSizesFollowRowBytes) {
  GgufBuilder b;
  // Q4_1 row of 64 = 2 blocks x 20 B; 3 rows -> 120 B. Q6_K row of 256 = 210 B.
  b.AddTensor("q41", TensorType::kQ4_1, {64, 3}, std::vector<uint8_t>(120, 1))
      .AddTensor("q6k", TensorType::kQ6_K, {256, 2, 2}, std::vector<uint8_t>(840, 2))
      .AddTensor("bf16", TensorType::kBF16, {5}, std::vector<uint8_t>(10, 3))
      .AddTensor("empty", TensorType::kF16, {0, 4}, {});
  auto f = ParseImage(b.Build());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->FindTensor("q41")->size_bytes, 120u);
  EXPECT_EQ((*f)->FindTensor("q6k")->size_bytes, 840u);
  EXPECT_EQ((*f)->FindTensor("q6k")->num_elements, 1024);
  EXPECT_EQ((*f)->FindTensor("bf16")->size_bytes, 10u);
  EXPECT_EQ((*f)->FindTensor("empty")->size_bytes, 0u);
}

TEST(GgufFileTest, CustomAlignment) {
  GgufBuilder b;
  b.SetAlignment(64)
      .AddF32Tensor("x", {3}, {1, 2, 3})
      .AddF32Tensor("y", {5}, {1, 2, 3, 4, 5});
  const std::vector<uint8_t> image = b.Build();
  auto f = GgufFile::Parse(image.data(), image.size(), "test.gguf");
  ASSERT_TRUE(f.ok()) << f.status();
  for (const GgufTensorInfo& t : (*f)->tensors()) {
    EXPECT_EQ((static_cast<const uint8_t*>(t.data) - image.data()) % 64, 0) << t.name;
  }
  EXPECT_EQ(static_cast<const uint8_t*>((*f)->FindTensor("y")->data) -
                static_cast<const uint8_t*>((*f)->FindTensor("x")->data),
            64);
}

TEST(GgufFileTest, AlignmentMustBePowerOfTwo) {
  for (uint32_t bad : {0u, 3u, 48u}) {
    GgufBuilder b;
    b.SetAlignment(bad).AddF32Tensor("x", {2}, {1, 2});
    auto f = ParseImage(b.Build());
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(f.status().message(), HasSubstr("general.alignment")) << bad;
  }
  GgufBuilder wrong_type;
  wrong_type.AddString("general.alignment", "32");
  EXPECT_THAT(ParseImage(wrong_type.Build()).status().message(), HasSubstr("general.alignment"));
}

TEST(GgufFileTest, MetadataOnlyFileParses) {
  GgufBuilder b;
  b.AddString("general.architecture", "llama");
  auto f = ParseImage(b.Build());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE((*f)->tensors().empty());
}

// ---- bad input -------------------------------------------------------------

TEST(GgufFileBadInputTest, TruncatedAtEveryOffsetIsAnError) {
  const std::vector<uint8_t> image = SmallValidFile().Build();
  ASSERT_TRUE(ParseImage(image).ok());
  for (size_t n = 0; n < image.size(); ++n) {
    // Copy into an exact-size buffer so ASan catches any read past the end.
    std::vector<uint8_t> cut(image.begin(), image.begin() + n);
    auto f = GgufFile::Parse(cut.empty() ? nullptr : cut.data(), cut.size(), "cut.gguf");
    // The trailing padding of the last tensor is not needed, so a cut inside
    // it still parses; anything shorter than the last tensor's end must not.
    if (f.ok()) {
      for (const GgufTensorInfo& t : (*f)->tensors()) {
        EXPECT_LE(static_cast<const uint8_t*>(t.data) + t.size_bytes, cut.data() + cut.size());
      }
      continue;
    }
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << n;
    EXPECT_THAT(f.status().message(), HasSubstr("cut.gguf")) << n;
  }
}

TEST(GgufFileBadInputTest, BadMagic) {
  std::vector<uint8_t> image = SmallValidFile().Build();
  image[0] = 'X';
  auto f = ParseImage(image);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr("not a GGUF file"));
}

TEST(GgufFileBadInputTest, HugeCounts) {
  GgufBuilder kv = SmallValidFile();
  kv.OverrideKvCount(std::numeric_limits<uint64_t>::max());
  EXPECT_THAT(ParseImage(kv.Build()).status().message(), HasSubstr("metadata count"));

  GgufBuilder tensors = SmallValidFile();
  tensors.OverrideTensorCount(1ull << 60);
  EXPECT_THAT(ParseImage(tensors.Build()).status().message(), HasSubstr("tensor count"));

  GgufBuilder arr;
  arr.AddArray<int32_t>("arr", GgufValueType::kInt32, {1, 2}, /*count=*/1ull << 62);
  auto a = ParseImage(arr.Build());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(a.status().message(), HasSubstr("'arr'"));

  GgufBuilder strs;
  strs.AddStringArray("strs", {"a"}, /*count=*/std::numeric_limits<uint64_t>::max());
  EXPECT_THAT(ParseImage(strs.Build()).status().message(), HasSubstr("'strs'"));

  // A string whose length claims more bytes than the file has.
  std::vector<uint8_t> payload(8);
  const uint64_t len = std::numeric_limits<uint64_t>::max() - 3;
  std::memcpy(payload.data(), &len, 8);
  GgufBuilder str;
  str.AddRaw("str", static_cast<uint32_t>(GgufValueType::kString), payload);
  EXPECT_THAT(ParseImage(str.Build()).status().message(), HasSubstr("'str'"));

  GgufBuilder dims;
  dims.AddTensor("t", TensorType::kF32, {1ull << 62, 1ull << 62}, {});
  EXPECT_THAT(ParseImage(dims.Build()).status().message(), HasSubstr("'t'"));
}

TEST(GgufFileBadInputTest, TensorDataPastEndOfFile) {
  GgufBuilder b;
  b.AddF32Tensor("a", {2}, {1, 2}).AddTensor("blk.0.attn_q.weight", TensorType::kF32, {64}, F32Bytes({1, 2}));
  auto f = ParseImage(b.Build(), "model.gguf");
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr("model.gguf: tensor 'blk.0.attn_q.weight' data ["));
  EXPECT_THAT(f.status().message(), HasSubstr("extends past end of file"));

  GgufBuilder far;
  far.AddTensor("far", TensorType::kF32, {2}, F32Bytes({1, 2}), /*offset=*/1ull << 40);
  EXPECT_THAT(ParseImage(far.Build()).status().message(), HasSubstr("'far' data"));

  // An offset near 2^64 must not wrap around into the file.
  GgufBuilder wrap;
  wrap.AddTensor("wrap", TensorType::kF32, {2}, F32Bytes({1, 2}),
                 /*offset=*/std::numeric_limits<uint64_t>::max() - 31);
  EXPECT_THAT(ParseImage(wrap.Build()).status().message(), HasSubstr("'wrap' data"));
}

TEST(GgufFileBadInputTest, MisalignedOffset) {
  GgufBuilder b;
  b.AddTensor("m", TensorType::kF32, {2}, F32Bytes({1, 2}), /*offset=*/4);
  auto f = ParseImage(b.Build());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr("'m'"));
  EXPECT_THAT(f.status().message(), HasSubstr("alignment"));
}

TEST(GgufFileBadInputTest, UnknownTensorTypeNamesTensorAndId) {
  GgufBuilder b;
  b.AddTensor("weird", /*type_id=*/uint32_t{99}, {4}, std::vector<uint8_t>(16));
  auto f = ParseImage(b.Build());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr("'weird'"));
  EXPECT_THAT(f.status().message(), HasSubstr("99"));
}

TEST(GgufFileBadInputTest, DuplicateKeyAndTensorName) {
  GgufBuilder k;
  k.AddU32("dup", 1).AddU32("dup", 2);
  auto fk = ParseImage(k.Build());
  EXPECT_EQ(fk.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(fk.status().message(), HasSubstr("duplicate metadata key 'dup'"));

  GgufBuilder t;
  t.AddF32Tensor("w", {1}, {1}).AddF32Tensor("w", {1}, {2});
  auto ft = ParseImage(t.Build());
  EXPECT_EQ(ft.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ft.status().message(), HasSubstr("duplicate tensor name 'w'"));
}

TEST(GgufFileBadInputTest, RowNotMultipleOfBlockSize) {
  GgufBuilder b;
  b.AddTensor("q", TensorType::kQ4_0, {33, 1}, std::vector<uint8_t>(64));
  auto f = ParseImage(b.Build());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr("'q'"));
  EXPECT_THAT(f.status().message(), HasSubstr("block size 32"));
}

TEST(GgufFileBadInputTest, TooManyDims) {
  GgufBuilder b;
  b.AddTensor("t", TensorType::kF32, {1, 1, 1, 1, 1}, F32Bytes({1}));
  EXPECT_THAT(ParseImage(b.Build()).status().message(), HasSubstr("5 dimensions"));
}

TEST(GgufFileBadInputTest, UnknownValueTypesAndNestedArrays) {
  GgufBuilder unknown;
  unknown.AddRaw("k", 13, {0, 0, 0, 0});
  EXPECT_THAT(ParseImage(unknown.Build()).status().message(), HasSubstr("unknown value type 13"));

  GgufBuilder unknown_elem;
  unknown_elem.AddArray<uint8_t>("k", static_cast<GgufValueType>(77), {});
  EXPECT_THAT(ParseImage(unknown_elem.Build()).status().message(), HasSubstr("unknown value type 77"));

  GgufBuilder nested;
  nested.AddArray<uint8_t>("k", GgufValueType::kArray, {});
  EXPECT_THAT(ParseImage(nested.Build()).status().message(), HasSubstr("nested array"));
}

}  // namespace
}  // namespace strata
