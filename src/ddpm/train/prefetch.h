// prefetch.h — one background thread that computes item i + 1 of a sequence while the caller works on item i
// (the trainer's batches: gathering, scaling, flips, noise and label dropout happen off the training thread).
// Header-only, no LibTorch. Not a queue: one item ahead is enough when making an item is much cheaper than using
// it, and it keeps the order and the content of the items exactly what make(i) returns.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

namespace ddpm {

template <class T>
class Prefetcher {
 public:
  // make(i) must be safe to call from another thread; it is never called by two threads at once.
  explicit Prefetcher(std::function<T(int64_t)> make) : make_(std::move(make)), worker_([this] { loop(); }) {}
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  // make(i): the item made in the background if it was i (an exception thrown there is rethrown here), else made
  // now. Then starts making i + 1.
  T get(int64_t i) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [this] { return !busy_; });
    std::optional<T> item;
    std::exception_ptr err;
    if (ready_ && ready_index_ == i) {
      item = std::move(result_);
      err = error_;
    }
    result_.reset();
    error_ = nullptr;
    ready_ = false;
    if (!item && !err) {
      lk.unlock();
      item = make_(i);  // the worker is idle: no concurrent make_
      lk.lock();
    }
    request_ = i + 1;
    busy_ = true;
    lk.unlock();
    cv_.notify_all();
    if (err) std::rethrow_exception(err);
    return std::move(*item);
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      cv_.wait(lk, [this] { return busy_ || stop_; });
      if (stop_) return;
      const int64_t i = request_;
      lk.unlock();
      std::optional<T> item;
      std::exception_ptr err;
      try {
        item = make_(i);
      } catch (...) {
        err = std::current_exception();
      }
      lk.lock();
      result_ = std::move(item);
      error_ = err;
      ready_index_ = i;
      ready_ = true;
      busy_ = false;
      cv_.notify_all();
    }
  }

  std::function<T(int64_t)> make_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool busy_ = false, ready_ = false, stop_ = false;
  int64_t request_ = 0, ready_index_ = -1;
  std::optional<T> result_;
  std::exception_ptr error_;
  std::thread worker_;  // last: started after every other member exists
};

}  // namespace ddpm
