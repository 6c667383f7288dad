// grad_buckets.cpp — see grad_buckets.h.
#include "ddpm/train/grad_buckets.h"

#include <chrono>
#include <stdexcept>

namespace ddpm {

GradBuckets::GradBuckets(std::vector<torch::Tensor> params, Communicator& comm, int64_t bucket_bytes)
    : params_(std::move(params)), comm_(comm) {
  const size_t n = params_.size();
  bucket_of_.assign(n, 0);
  slot_of_.assign(n, 0);
  have_grad_.assign(n, 0);
  // Reverse order: backward produces the gradients of the last layers first.
  int64_t bucket_used = 0;  // bytes in the newest bucket
  for (size_t k = n; k-- > 0;) {
    const auto& p = params_[k];
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    bool new_bucket = buckets_.empty();
    if (!new_bucket) {
      const auto& first = params_[buckets_.back().params.front()];
      new_bucket = first.scalar_type() != p.scalar_type() || first.device() != p.device() ||
                   (bucket_bytes > 0 && bucket_used + bytes > bucket_bytes);
    }
    if (new_bucket) {
      buckets_.emplace_back();
      bucket_used = 0;
    }
    auto& b = buckets_.back();
    bucket_of_[k] = buckets_.size() - 1;
    slot_of_[k] = b.params.size();
    b.offset.push_back(b.params.empty() ? 0 : b.offset.back() + params_[b.params.back()].numel());
    b.params.push_back(k);
    bucket_used += bytes;
  }
  for (auto& b : buckets_) {
    const auto& last = params_[b.params.back()];
    b.flat = torch::zeros({b.offset.back() + last.numel()}, last.options().requires_grad(false));  // [numel]
  }
  for (size_t k = 0; k < n; ++k) {
    if (!params_[k].requires_grad()) continue;
    hooks_.push_back(params_[k].register_hook([this, k](torch::Tensor g) { on_grad(k, g); }));
  }
}

GradBuckets::~GradBuckets() {
  size_t h = 0;
  for (size_t k = 0; k < params_.size() && h < hooks_.size(); ++k)
    if (params_[k].requires_grad()) params_[k].remove_hook(hooks_[h++]);
}

void GradBuckets::begin() {
  for (auto& b : buckets_) {
    b.ready = 0;
    b.pending.reset();
  }
  std::fill(have_grad_.begin(), have_grad_.end(), 0);
  next_launch_ = 0;
  launched_in_backward_ = 0;
  armed_ = true;
}

void GradBuckets::on_grad(size_t k, const torch::Tensor& grad) {
  if (!armed_ || have_grad_[k]) return;  // not a training step of ours (or a second call for the same tensor)
  auto& b = buckets_[bucket_of_[k]];
  torch::NoGradGuard ng;
  b.flat.narrow(0, b.offset[slot_of_[k]], grad.numel()).copy_(grad.reshape({-1}));
  have_grad_[k] = 1;
  ++b.ready;
  const size_t before = next_launch_;
  launch_ready();
  launched_in_backward_ += static_cast<int64_t>(next_launch_ - before);
}

void GradBuckets::launch_ready() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].ready == buckets_[next_launch_].params.size()) {
    auto& b = buckets_[next_launch_++];
    b.pending = comm_.all_reduce_sum_async(b.flat);
  }
}

void GradBuckets::finish() {
  if (!armed_) throw std::logic_error("GradBuckets::finish() without begin()");
  armed_ = false;
  torch::NoGradGuard ng;
  // Parameters that got no gradient this step count as zero on this rank (every rank runs the same graph).
  for (auto& b : buckets_) {
    for (size_t s = 0; s < b.params.size(); ++s) {
      const size_t k = b.params[s];
      if (have_grad_[k]) continue;
      b.flat.narrow(0, b.offset[s], params_[k].numel()).zero_();
      have_grad_[k] = 1;
      ++b.ready;
    }
  }
  launch_ready();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& b : buckets_) b.pending->wait();
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double inv = 1.0 / static_cast<double>(comm_.world_size());
  for (auto& b : buckets_) {
    b.flat.mul_(inv);
    for (size_t s = 0; s < b.params.size(); ++s) {
      auto& p = params_[b.params[s]];
      p.mutable_grad() = b.flat.narrow(0, b.offset[s], p.numel()).view(p.sizes());  // a view into the bucket
    }
    b.pending.reset();
  }
}

}  // namespace ddpm
