// test_prefetch.cpp — the one-ahead background Prefetcher (prefetch.h), without LibTorch: items equal make(i) in
// any request order, i + 1 is made on another thread before it is asked for, errors reach the caller.
#include "ddpm/train/prefetch.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

using ddpm::Prefetcher;

TEST(Prefetcher, ItemsAreMakeOfTheIndexInAnyOrder) {
  Prefetcher<int64_t> p([](int64_t i) { return i * i + 1; });
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(p.get(i), i * i + 1);
  for (int64_t i : {7, 3, 3, 100, 101, 0}) EXPECT_EQ(p.get(i), i * i + 1);  // jumps: made on the spot
}

TEST(Prefetcher, NextItemIsMadeInTheBackground) {
  std::atomic<int64_t> made{-1};
  std::thread::id main_id = std::this_thread::get_id(), made_on;
  Prefetcher<int64_t> p([&](int64_t i) {
    if (i == 5) made_on = std::this_thread::get_id();
    made = i;
    return i;
  });
  p.get(4);  // starts making 5
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (made.load() != 5 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(made.load(), 5) << "item 5 was not made before it was asked for";
  EXPECT_EQ(p.get(5), 5);
  EXPECT_NE(made_on, main_id);
}

TEST(Prefetcher, AnErrorInTheBackgroundReachesTheCaller) {
  Prefetcher<int> p([](int64_t i) {
    if (i == 3) throw std::runtime_error("bad item 3");
    return static_cast<int>(i);
  });
  EXPECT_EQ(p.get(2), 2);  // 3 fails in the background
  try {
    p.get(3);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "bad item 3");
  }
  EXPECT_EQ(p.get(4), 4);  // and the prefetcher goes on
  EXPECT_THROW(p.get(3), std::runtime_error);  // made on the spot this time
}

TEST(Prefetcher, DestroyedWhileMakingJoinsCleanly) {
  std::atomic<int> calls{0};
  {
    Prefetcher<int> p([&](int64_t i) {
      ++calls;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      return static_cast<int>(i);
    });
    p.get(0);  // item 1 is requested: the destructor either waits for it or cancels it before it starts
  }
  EXPECT_GE(calls.load(), 1);
  EXPECT_LE(calls.load(), 2);
}
