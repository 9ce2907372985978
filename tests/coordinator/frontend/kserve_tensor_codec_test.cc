// Tensor contents <-> values without a server: the raw little-endian layouts
// tritonclient writes, typed contents, and the errors naming the tensor.
#include "coordinator/frontend/kserve_tensor_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace strata::coordinator::frontend {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

inference::ModelInferRequest::InferInputTensor Tensor(const std::string& name,
                                                      const std::string& datatype,
                                                      std::vector<int64_t> shape) {
  inference::ModelInferRequest::InferInputTensor t;
  t.set_name(name);
  t.set_datatype(datatype);
  for (int64_t d : shape) t.add_shape(d);
  return t;
}

TEST(KServeTensorCodecTest, RawBytesLayoutIsLengthPrefixedLittleEndian) {
  const std::string raw = EncodeRawBytes({"ab", "", "c"});
  EXPECT_EQ(raw, std::string("\x02\x00\x00\x00" "ab" "\x00\x00\x00\x00" "\x01\x00\x00\x00" "c", 15));
  auto t = Tensor("text_input", "BYTES", {3});
  auto v = DecodeBytes({&t, &raw});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(*v, ElementsAre("ab", "", "c"));
}

TEST(KServeTensorCodecTest, FixedWidthRawLayouts) {
  EXPECT_EQ(EncodeRawInt32({-2}), std::string("\xfe\xff\xff\xff", 4));
  EXPECT_EQ(EncodeRawUint64({0x0102030405060708ull}),
            std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8));
  EXPECT_EQ(EncodeRawFp32({1.0f}), std::string("\x00\x00\x80\x3f", 4));
  EXPECT_EQ(EncodeRawBool({true, false}), std::string("\x01\x00", 2));

  std::string raw = EncodeRawInt32({-2, 7});
  auto i = Tensor("x", "INT32", {1, 2});
  EXPECT_THAT(*DecodeInt32({&i, &raw}), ElementsAre(-2, 7));
  raw = EncodeRawUint64({1ull << 63});
  auto u = Tensor("seed", "UINT64", {1});
  EXPECT_THAT(*DecodeUint64({&u, &raw}), ElementsAre(1ull << 63));
  raw = EncodeRawFp32({0.25f});
  auto f = Tensor("t", "FP32", {1});
  EXPECT_THAT(*DecodeFp32({&f, &raw}), ElementsAre(0.25f));
  raw = EncodeRawBool({true});
  auto b = Tensor("s", "BOOL", {1});
  EXPECT_THAT(*DecodeBool({&b, &raw}), ElementsAre(true));
}

TEST(KServeTensorCodecTest, TypedContents) {
  auto t = Tensor("top_k", "INT32", {1});
  t.mutable_contents()->add_int_contents(5);
  EXPECT_THAT(*DecodeInt32({&t, nullptr}), ElementsAre(5));
  auto s = Tensor("stop_words", "BYTES", {2});
  s.mutable_contents()->add_bytes_contents("a");
  s.mutable_contents()->add_bytes_contents("b");
  EXPECT_THAT(*DecodeBytes({&s, nullptr}), ElementsAre("a", "b"));
}

TEST(KServeTensorCodecTest, ErrorsNameTheTensor) {
  auto t = Tensor("temperature", "FP32", {1});
  const std::string three("abc");
  auto s = DecodeFp32({&t, &three});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("temperature"));

  auto wrong_type = DecodeInt32({&t, nullptr});
  EXPECT_THAT(wrong_type.status().message(), HasSubstr("temperature"));
  EXPECT_THAT(wrong_type.status().message(), HasSubstr("INT32"));

  auto bytes = Tensor("text_input", "BYTES", {1});
  const std::string truncated("\x05\x00\x00\x00" "ab", 6);
  EXPECT_THAT(DecodeBytes({&bytes, &truncated}).status().message(), HasSubstr("text_input"));
  const std::string short_prefix("\x05\x00", 2);
  EXPECT_THAT(DecodeBytes({&bytes, &short_prefix}).status().message(), HasSubstr("text_input"));

  auto negative = Tensor("max_tokens", "INT32", {-1});
  EXPECT_THAT(ElementCount(negative).status().message(), HasSubstr("max_tokens"));
}

TEST(KServeTensorCodecTest, CollectPairsRawContentsWithInputs) {
  inference::ModelInferRequest r;
  *r.add_inputs() = Tensor("a", "BOOL", {1});
  *r.add_inputs() = Tensor("b", "BOOL", {1});
  r.add_raw_input_contents(EncodeRawBool({true}));
  EXPECT_THAT(CollectInputTensors(r).status().message(), HasSubstr("raw_input_contents"));
  r.add_raw_input_contents(EncodeRawBool({false}));
  auto inputs = CollectInputTensors(r);
  ASSERT_TRUE(inputs.ok());
  EXPECT_EQ((*inputs)[1].raw, &r.raw_input_contents(1));
}

}  // namespace
}  // namespace strata::coordinator::frontend
