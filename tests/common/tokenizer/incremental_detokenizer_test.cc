// The streaming detokenizer never emits part of a UTF-8 character: multi-byte
// characters split across byte tokens (byte-level symbols, SentencePiece
// <0xXX> fallback) come out whole once complete, and everything streamed
// concatenates to the full decode.
#include <string>
#include <vector>

#include "common/format/gguf_file.h"
#include "common/tokenizer/incremental_detokenizer.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/unicode_bytes.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

bool ValidUtf8(const std::string& s) { return tokenizer_internal::SanitizeUtf8(s) == s; }

// Bytes only (id == byte value), plus "<|im_end|>" (control) at 256.
std::unique_ptr<Tokenizer> ByteTokenizer() {
  VocabSpec spec;
  for (int b = 0; b < 256; ++b) spec.tokens.push_back(tokenizer_internal::ByteToUnicode(static_cast<uint8_t>(b)));
  spec.tokens.push_back("<|im_end|>");
  spec.token_types.assign(257, TokenType::kNormal);
  spec.token_types[256] = TokenType::kControl;
  return std::move(Tokenizer::Create(spec)).value();
}

std::vector<int32_t> BytesOf(const std::string& s) {
  std::vector<int32_t> ids;
  for (char c : s) ids.push_back(static_cast<uint8_t>(c));
  return ids;
}

TEST(IncrementalDetokenizerTest, HoldsBackPartialCharacters) {
  auto tok = ByteTokenizer();
  IncrementalDetokenizer d(tok.get(), true);
  const std::string emoji = "\xF0\x9F\x98\x80";  // 😀
  EXPECT_EQ(d.Push(0xF0), "");
  EXPECT_EQ(d.Push(0x9F), "");
  EXPECT_EQ(d.Push(0x98), "");
  EXPECT_EQ(d.Push(0x80), emoji);
  EXPECT_EQ(d.Push('a'), "a");
  EXPECT_EQ(d.Push(0xC3), "");
  EXPECT_EQ(d.Push(0xA9), "\xC3\xA9");  // é
  EXPECT_EQ(d.Flush(), "");
}

TEST(IncrementalDetokenizerTest, EveryChunkIsValidUtf8) {
  auto tok = ByteTokenizer();
  const std::string text = "Zwj: 👨‍👩‍👧‍👦 flags 🇫🇷 CJK 日本語 RTL שלום accents Ångström ∑ end";
  IncrementalDetokenizer d(tok.get(), true);
  std::string streamed;
  for (int32_t id : BytesOf(text)) {
    const std::string chunk = d.Push(id);
    EXPECT_TRUE(ValidUtf8(chunk));
    streamed += chunk;
  }
  streamed += d.Flush();
  EXPECT_EQ(streamed, text);
}

TEST(IncrementalDetokenizerTest, InvalidBytesBecomeReplacementCharacters) {
  auto tok = ByteTokenizer();
  IncrementalDetokenizer d(tok.get(), true);
  EXPECT_EQ(d.Push(0xFF), "\xEF\xBF\xBD");  // can never become valid: emitted at once
  EXPECT_EQ(d.Push(0xE2), "");
  EXPECT_EQ(d.Push(0x82), "");
  EXPECT_EQ(d.Push('x'), "\xEF\xBF\xBD\xEF\xBF\xBDx");  // the sequence was cut short
  EXPECT_EQ(d.Push(0xE2), "");
  EXPECT_EQ(d.Flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(d.Flush(), "");
  EXPECT_EQ(d.Push(0xED), "");  // ED A0.. would be a surrogate: not valid UTF-8
  EXPECT_EQ(d.Push(0xA0), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(IncrementalDetokenizerTest, SpecialTokensSkippedOrRendered) {
  auto tok = ByteTokenizer();
  IncrementalDetokenizer skip(tok.get(), true);
  EXPECT_EQ(skip.Push('a'), "a");
  EXPECT_EQ(skip.Push(256), "");
  IncrementalDetokenizer render(tok.get(), false);
  EXPECT_EQ(render.Push(256), "<|im_end|>");
}

TEST(IncrementalDetokenizerTest, SentencePieceByteFallback) {
  VocabSpec spec;
  spec.kind = TokenizerKind::kSentencePieceBpe;
  spec.add_space_prefix = true;
  spec.tokens = {"<unk>", "\xE2\x96\x81", "\xE2\x96\x81" "a"};
  spec.token_types = {TokenType::kUnknown, TokenType::kNormal, TokenType::kNormal};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    spec.tokens.push_back(name);
    spec.token_types.push_back(TokenType::kByte);
  }
  spec.unk_id = 0;
  auto tok = std::move(Tokenizer::Create(spec)).value();
  const std::string text = "a 日本 😀";
  const auto ids = tok->Encode(text, false, false);
  IncrementalDetokenizer d(tok.get(), true);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string chunk = d.Push(id);
    EXPECT_TRUE(ValidUtf8(chunk));
    streamed += chunk;
  }
  streamed += d.Flush();
  // Streaming keeps the prefix space SentencePiece added (a generated
  // continuation needs its spaces); Decode drops it at the start of a text.
  EXPECT_EQ(streamed, " " + text);
  EXPECT_EQ(tok->Decode(ids, true), text);
}

TEST(IncrementalDetokenizerTest, DefaultModelStreamsWholeCharacters) {
  auto gguf = GgufFile::Open(STRATA_DEFAULT_MODEL);
  if (!gguf.ok()) {
    if (std::getenv("CI")) FAIL() << gguf.status();
    GTEST_SKIP() << "default model not available: " << gguf.status();
  }
  auto tok = Tokenizer::FromGguf(**gguf);
  ASSERT_TRUE(tok.ok()) << tok.status();
  const std::string text =
      "Emoji 😀👍🏽👨‍👩‍👧‍👦🏳️‍🌈, 日本語のテキスト, 한국어, עברית, Ελληνικά, math ∑∫√∞<|im_end|>";
  const auto ids = (*tok)->Encode(text, false, true);
  int held_back = 0;
  IncrementalDetokenizer d(tok->get(), /*skip_special=*/false);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string chunk = d.Push(id);
    EXPECT_TRUE(ValidUtf8(chunk)) << "after token " << id;
    held_back += chunk.empty();
    streamed += chunk;
  }
  streamed += d.Flush();
  EXPECT_EQ(streamed, text);
  EXPECT_GT(held_back, 0) << "the text should contain characters split across tokens";
}

}  // namespace
}  // namespace strata
