#include "coordinator/block_allocator.h"

#include <algorithm>
#include <vector>

#include "gtest/gtest.h"

namespace strata::coordinator {
namespace {

std::unique_ptr<BlockAllocator> Make(int32_t n) {
  auto a = BlockAllocator::Create({.num_blocks = n});
  EXPECT_TRUE(a.ok()) << a.status();
  return std::move(a).value();
}

TEST(BlockAllocatorTest, RejectsTooFewBlocks) {
  EXPECT_FALSE(BlockAllocator::Create({.num_blocks = 1}).ok());
  EXPECT_FALSE(BlockAllocator::Create({.num_blocks = -3}).ok());
}

TEST(BlockAllocatorTest, NullBlockNeverHandedOut) {
  auto a = Make(5);
  EXPECT_EQ(a->num_free(), 4);
  auto blocks = a->Allocate(4);
  ASSERT_TRUE(blocks.has_value());
  EXPECT_EQ(std::count(blocks->begin(), blocks->end(), kNullBlock), 0);
  EXPECT_EQ(a->num_used(), 4);
  EXPECT_FALSE(a->Ref(kNullBlock).ok());
  EXPECT_FALSE(a->Unref(kNullBlock).ok());
  EXPECT_EQ(a->ref_count(kNullBlock), 0);
}

TEST(BlockAllocatorTest, ExhaustionReturnsNulloptAndAllocatesNothing) {
  auto a = Make(4);
  EXPECT_FALSE(a->Allocate(4).has_value());
  EXPECT_EQ(a->num_free(), 3);
  ASSERT_TRUE(a->Allocate(2).has_value());
  EXPECT_FALSE(a->Allocate(2).has_value());
  EXPECT_EQ(a->num_free(), 1);
  EXPECT_FALSE(a->Allocate(-1).has_value());
  auto none = a->Allocate(0);
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
}

TEST(BlockAllocatorTest, NoDoubleFree) {
  auto a = Make(4);
  auto b = a->Allocate(1).value();
  EXPECT_TRUE(a->Unref(b[0]).ok());
  EXPECT_EQ(a->num_free(), 3);
  EXPECT_FALSE(a->Unref(b[0]).ok());
  EXPECT_EQ(a->num_free(), 3);
  EXPECT_EQ(a->FreeQueue().size(), 3u);
  EXPECT_FALSE(a->Unref(99).ok());
}

TEST(BlockAllocatorTest, RefCountsKeepSharedBlocksUsed) {
  auto a = Make(4);
  auto b = a->Allocate(1).value();
  ASSERT_TRUE(a->Ref(b[0]).ok());
  EXPECT_EQ(a->ref_count(b[0]), 2);
  ASSERT_TRUE(a->Unref(b[0]).ok());
  EXPECT_EQ(a->num_used(), 1);
  ASSERT_TRUE(a->Unref(b[0]).ok());
  EXPECT_EQ(a->num_used(), 0);
  // Ref of a free block revives it (prefix-cache hit).
  ASSERT_TRUE(a->Ref(b[0]).ok());
  EXPECT_EQ(a->ref_count(b[0]), 1);
  EXPECT_EQ(a->num_free(), 2);
  auto q = a->FreeQueue();
  EXPECT_EQ(std::count(q.begin(), q.end(), b[0]), 0);
}

TEST(BlockAllocatorTest, LruOrderAndTailFirstFree) {
  auto a = Make(7);
  auto s1 = a->Allocate(3).value();  // 1 2 3
  auto s2 = a->Allocate(3).value();  // 4 5 6
  EXPECT_EQ(s1, (std::vector<int32_t>{1, 2, 3}));
  ASSERT_TRUE(a->FreeSequence(s2).ok());
  ASSERT_TRUE(a->FreeSequence(s1).ok());
  // s2 freed first (least recently freed first), each sequence tail-first.
  EXPECT_EQ(a->FreeQueue(), (std::vector<int32_t>{6, 5, 4, 3, 2, 1}));
  EXPECT_EQ(a->Allocate(2).value(), (std::vector<int32_t>{6, 5}));
}

TEST(BlockAllocatorTest, HashSlotSurvivesFreeClearedOnReuse) {
  auto a = Make(3);
  auto b = a->Allocate(1).value();
  ASSERT_TRUE(a->SetBlockHash(b[0], 42).ok());
  ASSERT_TRUE(a->Unref(b[0]).ok());
  EXPECT_EQ(a->BlockHash(b[0]), 42u);
  auto all = a->Allocate(2).value();
  for (int32_t x : all) EXPECT_FALSE(a->BlockHash(x).has_value());
  EXPECT_FALSE(a->SetBlockHash(kNullBlock, 1).ok());
}

}  // namespace
}  // namespace strata::coordinator
