// ApiKeys: the file format, the answers for no/wrong/right keys and reloading
// (a changed file applies; a broken one keeps the last good keys).
#include "coordinator/frontend/api_key_auth.h"

#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace strata::coordinator::frontend {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKeyA[] = "sk-aaaaaaaaaaaaaaaaaaaa";
constexpr char kKeyB[] = "sk-bbbbbbbbbbbbbbbbbbbb";

class ApiKeysTest : public ::testing::Test {
 protected:
  // One file per test: ctest runs the cases as parallel processes.
  std::string path_ = ::testing::TempDir() + "/api_keys_test_" +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name();
  void Write(const std::string& text) {
    std::ofstream out(path_ + ".tmp");
    out << text;
    out.close();
    std::rename((path_ + ".tmp").c_str(), path_.c_str());
  }
  ApiKeys::Options Fast(std::vector<std::string>* logs) {
    ApiKeys::Options o;
    o.recheck = absl::ZeroDuration();
    o.log = [logs](const std::string& line) { logs->push_back(line); };
    return o;
  }
};

TEST_F(ApiKeysTest, FileFormatAndAnswers) {
  Write(absl::StrCat("# keys\n\n  alice:", kKeyA, "  \n", kKeyB, "\n"));
  auto keys = ApiKeys::Load(path_);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_THAT((*keys)->names(), ::testing::ElementsAre("alice", "key 2"));
  EXPECT_TRUE((*keys)->CheckKey(kKeyA).ok());
  EXPECT_TRUE((*keys)->CheckKey(kKeyB).ok());
  const absl::Status none = (*keys)->CheckKey("");
  EXPECT_EQ(none.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(none.message(), "missing API key: send 'authorization: Bearer <key>'");
  const absl::Status wrong = (*keys)->CheckKey("sk-aaaaaaaaaaaaaaaaaaab");
  EXPECT_EQ(wrong.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(wrong.message()), Not(HasSubstr("sk-")));
  EXPECT_FALSE((*keys)->CheckKey(std::string(kKeyA) + "x").ok());
  EXPECT_FALSE((*keys)->CheckKey("sk-aaaaaaaaaaaaaaaaaaa").ok());
}

TEST_F(ApiKeysTest, BadFilesAreRefusedWithoutEchoingKeys) {
  Write("# nothing\n");
  EXPECT_EQ(ApiKeys::Load(path_).status().code(), absl::StatusCode::kInvalidArgument);
  Write("short-secret\n");
  const absl::Status s = ApiKeys::Load(path_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("line 1"));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("short-secret")));
  EXPECT_EQ(ApiKeys::Load(path_ + ".missing").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ApiKeysTest, ReloadsAChangedFileAndKeepsKeysWhenItBreaks) {
  Write(absl::StrCat(kKeyA, "\n"));
  std::vector<std::string> logs;
  auto keys = ApiKeys::Load(path_, Fast(&logs));
  ASSERT_TRUE(keys.ok());
  EXPECT_TRUE((*keys)->CheckKey(kKeyA).ok());
  Write(absl::StrCat("bob:", kKeyB, "\n"));
  EXPECT_TRUE((*keys)->CheckKey(kKeyB).ok());
  EXPECT_FALSE((*keys)->CheckKey(kKeyA).ok());
  // Unreadable (removed) and then malformed: the last good keys stay, one log line each time it breaks.
  std::remove(path_.c_str());
  EXPECT_TRUE((*keys)->CheckKey(kKeyB).ok());
  EXPECT_TRUE((*keys)->CheckKey(kKeyB).ok());
  Write("bad key with spaces\n");
  EXPECT_TRUE((*keys)->CheckKey(kKeyB).ok());
  int failures = 0;
  for (const std::string& l : logs) {
    failures += l.find("keeping the last good") != std::string::npos ? 1 : 0;
    EXPECT_THAT(l, Not(HasSubstr("sk-"))) << "keys are never logged";
  }
  EXPECT_EQ(failures, 1);
  Write(absl::StrCat(kKeyA, "\n"));
  EXPECT_TRUE((*keys)->CheckKey(kKeyA).ok());
}

}  // namespace
}  // namespace strata::coordinator::frontend
