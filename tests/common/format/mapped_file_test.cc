#include "common/format/mapped_file.h"

#include <sys/stat.h>

#include <fstream>
#include <string>

#include "common/format/gguf_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/gguf_builder.h"

namespace strata {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) { return ::testing::TempDir() + "/" + name; }

TEST(MappedFileTest, MapsWholeFile) {
  const std::string path = TempPath("mapped_file_test.bin");
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << "hello world";
  }
  auto m = MappedFile::Open(path);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->size(), 11u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>((*m)->data()), (*m)->size()), "hello world");
  EXPECT_EQ((*m)->path(), path);
}

TEST(MappedFileTest, MissingFileIsNotFoundNamingPath) {
  auto m = MappedFile::Open(TempPath("does/not/exist.gguf"));
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(m.status().message(), HasSubstr("does/not/exist.gguf"));
}

TEST(MappedFileTest, DirectoryAndEmptyFileAreInvalid) {
  auto dir = MappedFile::Open(::testing::TempDir());
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dir.status().message(), HasSubstr("directory"));

  const std::string empty = TempPath("mapped_file_test_empty.bin");
  { std::ofstream f(empty, std::ios::binary | std::ios::trunc); }
  auto e = MappedFile::Open(empty);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(e.status().message(), HasSubstr("empty"));
}

TEST(MappedFileTest, GgufOpenFromDiskPointsIntoMap) {
  const std::string path = TempPath("mapped_file_test.gguf");
  testing::GgufBuilder b;
  b.AddString("general.architecture", "llama").AddF32Tensor("w", {4}, {1, 2, 3, 4});
  b.WriteTo(path);
  auto g = GgufFile::Open(path);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ((*g)->name(), path);
  const GgufTensorInfo* w = (*g)->FindTensor("w");
  ASSERT_NE(w, nullptr);
  float v[4];
  std::memcpy(v, w->data, sizeof(v));
  EXPECT_EQ(v[3], 4.0f);

  auto missing = GgufFile::Open(TempPath("missing.gguf"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("missing.gguf"));
}

}  // namespace
}  // namespace strata
