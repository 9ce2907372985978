// QuoteForError (issue 15 finding 4): client text in errors is short,
// escaped and valid UTF-8 whatever was sent.
#include "coordinator/frontend/quote.h"

#include <string>

#include <gtest/gtest.h>

#include "common/tokenizer/unicode_bytes.h"

namespace strata::coordinator::frontend {
namespace {

bool IsValidUtf8(const std::string& s) { return tokenizer_internal::SanitizeUtf8(s) == s; }

TEST(QuoteForErrorTest, ShortTextIsQuotedAsIs) {
  EXPECT_EQ(QuoteForError("tiny"), "'tiny'");
  EXPECT_EQ(QuoteForError(""), "''");
  EXPECT_EQ(QuoteForError("héllo"), "'héllo'");
}

TEST(QuoteForErrorTest, LongTextIsCutWithItsSize) {
  const std::string big(100000, 'k');
  const std::string q = QuoteForError(big);
  EXPECT_LT(q.size(), 100u);
  EXPECT_EQ(q, "'" + std::string(64, 'k') + "'\xE2\x80\xA6 (100000 bytes)");
  // Never cut inside a character: 40 two-byte characters, cut after 32.
  std::string accents;
  for (int i = 0; i < 40; ++i) accents += "é";
  const std::string qa = QuoteForError(accents);
  EXPECT_TRUE(IsValidUtf8(qa)) << qa;
  EXPECT_NE(qa.find("(80 bytes)"), std::string::npos) << qa;
}

TEST(QuoteForErrorTest, ControlsQuotesAndInvalidBytesAreEscaped) {
  EXPECT_EQ(QuoteForError("a\nb\tc'd\\e\x01"), "'a\\nb\\tc\\'d\\\\e\\x01'");
  const std::string q = QuoteForError(std::string("x\xff\xc3(y", 5));
  EXPECT_EQ(q, "'x\\xFF\\xC3(y'");
  EXPECT_TRUE(IsValidUtf8(q));
}

}  // namespace
}  // namespace strata::coordinator::frontend
