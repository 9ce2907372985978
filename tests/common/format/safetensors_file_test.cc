#include "common/format/safetensors_file.h"

#include <cstring>
#include <limits>
#include <list>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/safetensors_builder.h"

namespace strata {
namespace {

using ::strata::testing::SafetensorsBuilder;
using ::testing::HasSubstr;

// Parse() does not copy: keep every image alive for the process.
absl::StatusOr<std::unique_ptr<SafetensorsFile>> ParseImage(const std::vector<uint8_t>& bytes,
                                                            std::string name = "model.safetensors") {
  static auto* images = new std::list<std::vector<uint8_t>>();
  const std::vector<uint8_t>& kept = images->emplace_back(bytes);
  return SafetensorsFile::Parse(kept.data(), kept.size(), std::move(name));
}

SafetensorsBuilder SmallValidFile() {
  SafetensorsBuilder b;
  b.SetMetadata({{"format", "pt"}})
      .AddF32("w", {2, 3}, {1, 2, 3, 4, 5, 6})
      .AddTensor("h", "F16", {2}, {0x00, 0x3c, 0x00, 0xc0})   // 1.0, -2.0
      .AddTensor("b", "BF16", {1}, {0x80, 0x3f})              // 1.0
      .AddTensor("ids", "I64", {2}, std::vector<uint8_t>(16, 1))
      .AddTensor("mask", "BOOL", {3}, {1, 0, 1})
      .AddTensor("fp8", "F8_E4M3", {4}, {1, 2, 3, 4});
  return b;
}

TEST(SafetensorsFileTest, ParsesDtypesShapesAndData) {
  const std::vector<uint8_t> image = SmallValidFile().Build();
  auto f = SafetensorsFile::Parse(image.data(), image.size(), "model.safetensors");
  ASSERT_TRUE(f.ok()) << f.status();
  const SafetensorsFile& s = **f;
  EXPECT_EQ(s.name(), "model.safetensors");
  ASSERT_EQ(s.tensors().size(), 6u);  // __metadata__ is not a tensor
  EXPECT_EQ(s.FindTensor("__metadata__"), nullptr);

  const SafetensorsTensor* w = s.FindTensor("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, "F32");
  EXPECT_EQ(w->type, TensorType::kF32);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(w->num_elements, 6);
  EXPECT_EQ(w->size_bytes, 24u);
  float v[6];
  std::memcpy(v, w->data, sizeof(v));
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[5], 6.0f);
  const auto* p = static_cast<const uint8_t*>(w->data);
  EXPECT_GE(p, image.data());
  EXPECT_LE(p + w->size_bytes, image.data() + image.size());

  EXPECT_EQ(s.FindTensor("h")->type, TensorType::kF16);
  EXPECT_EQ(static_cast<const uint8_t*>(s.FindTensor("h")->data)[1], 0x3c);
  EXPECT_EQ(s.FindTensor("b")->type, TensorType::kBF16);
  // Dtypes Strata cannot use as weights are listed with type nullopt.
  for (const char* name : {"ids", "mask", "fp8"}) {
    const SafetensorsTensor* t = s.FindTensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_FALSE(t->type.has_value()) << name;
  }
  EXPECT_EQ(s.FindTensor("ids")->size_bytes, 16u);
  EXPECT_EQ(s.FindTensor("nope"), nullptr);

  // Tensors come back in file (offset) order, not JSON key order.
  std::vector<std::string> order;
  for (const auto& t : s.tensors()) order.push_back(t.name);
  EXPECT_EQ(order, (std::vector<std::string>{"w", "h", "b", "ids", "mask", "fp8"}));
}

TEST(SafetensorsFileTest, EmptyHeaderAndScalarAndZeroSized) {
  SafetensorsBuilder empty;
  auto e = ParseImage(empty.Build());
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE((*e)->tensors().empty());

  SafetensorsBuilder b;
  b.AddF32("scalar", {}, {3.5f}).AddTensor("zero", "F16", {0, 4}, {});
  auto f = ParseImage(b.Build());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->FindTensor("scalar")->num_elements, 1);
  EXPECT_EQ((*f)->FindTensor("zero")->size_bytes, 0u);
}

TEST(SafetensorsFileTest, UnpaddedHeaderParses) {
  SafetensorsBuilder b = SmallValidFile();
  b.PadHeader(false);
  EXPECT_TRUE(ParseImage(b.Build()).ok());
}

// ---- bad input -------------------------------------------------------------

TEST(SafetensorsFileBadInputTest, TruncatedAtEveryOffsetIsAnError) {
  const std::vector<uint8_t> image = SmallValidFile().Build();
  ASSERT_TRUE(ParseImage(image).ok());
  for (size_t n = 0; n < image.size(); ++n) {
    std::vector<uint8_t> cut(image.begin(), image.begin() + n);
    auto f = SafetensorsFile::Parse(cut.empty() ? nullptr : cut.data(), cut.size(), "cut.safetensors");
    ASSERT_FALSE(f.ok()) << n;  // the data section ends exactly at the last tensor
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << n;
    EXPECT_THAT(f.status().message(), HasSubstr("cut.safetensors")) << n;
  }
}

TEST(SafetensorsFileBadInputTest, HeaderLengthBounds) {
  SafetensorsBuilder huge = SmallValidFile();
  huge.OverrideHeaderLength(std::numeric_limits<uint64_t>::max());
  EXPECT_THAT(ParseImage(huge.Build()).status().message(), HasSubstr("100 MiB"));

  SafetensorsBuilder past = SmallValidFile();
  past.OverrideHeaderLength(1 << 20);
  EXPECT_THAT(ParseImage(past.Build()).status().message(), HasSubstr("past end of file"));

  std::vector<uint8_t> tiny = {1, 2, 3};
  EXPECT_THAT(ParseImage(tiny).status().message(), HasSubstr("not a safetensors file"));
}

TEST(SafetensorsFileBadInputTest, BadJson) {
  for (const char* header : {"{", "not json", "[1, 2]", "{\"a\": 1}", "{\"a\": {\"shape\": [1]}}",
                             "{\"a\": {\"dtype\": 5, \"shape\": [1], \"data_offsets\": [0, 4]}}",
                             "{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}",
                             "{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}",
                             "{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}",
                             "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}",
                             "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}",
                             "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": \"0,4\"}}"}) {
    SafetensorsBuilder b;
    b.SetRawHeader(header).AddTensor("a", "F32", {1}, {0, 0, 0, 0});
    auto f = ParseImage(b.Build());
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << header;
    EXPECT_THAT(f.status().message(), HasSubstr("model.safetensors")) << header;
  }
}

TEST(SafetensorsFileBadInputTest, OffsetsOutOfRange) {
  SafetensorsBuilder b;
  b.AddTensor("w", "F32", {2}, std::vector<uint8_t>(8), std::make_pair(uint64_t{0}, uint64_t{16}));
  auto f = ParseImage(b.Build());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr("tensor 'w' data_offsets [0, 16) extend past"));

  SafetensorsBuilder huge;
  huge.AddTensor("w", "F32", {2}, std::vector<uint8_t>(8),
                 std::make_pair(uint64_t{1} << 63, (uint64_t{1} << 63) + 8));
  EXPECT_THAT(ParseImage(huge.Build()).status().message(), HasSubstr("'w'"));
}

TEST(SafetensorsFileBadInputTest, SizeInconsistentWithShape) {
  SafetensorsBuilder b;
  b.AddTensor("w", "F32", {3}, std::vector<uint8_t>(8));
  auto f = ParseImage(b.Build());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr("tensor 'w' data_offsets span 8 bytes but shape [3] of F32"));

  SafetensorsBuilder overflow;
  overflow.AddTensor("o", "F32", {int64_t{1} << 40, int64_t{1} << 40}, std::vector<uint8_t>(8));
  EXPECT_THAT(ParseImage(overflow.Build()).status().message(), HasSubstr("'o'"));
}

TEST(SafetensorsFileBadInputTest, UnknownDtypeIsListedWithoutSizeCheck) {
  // Sub-byte or future dtypes: Strata cannot size them, so it keeps them
  // (type nullopt) as long as the offsets are in range.
  SafetensorsBuilder b;
  b.AddTensor("f4", "F4", {8}, std::vector<uint8_t>(4));
  auto f = ParseImage(b.Build());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_FALSE((*f)->FindTensor("f4")->type.has_value());
  EXPECT_EQ((*f)->FindTensor("f4")->size_bytes, 4u);
}

}  // namespace
}  // namespace strata
