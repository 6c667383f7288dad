// grad_buckets.h — gradient averaging over ranks in buckets, overlapped with the backward pass (the scheme of
// PyTorch's DistributedDataParallel reducer, Li et al. 2020, "PyTorch Distributed", §3.2).
//
// Parameters are grouped, in reverse registration order (the order in which backward produces their
// gradients), into buckets of about `bucket_bytes`. A hook on every parameter copies its gradient into the
// bucket's flat buffer as soon as autograd has it; when a bucket is complete its all-reduce is started
// asynchronously, so communication of the last layers runs while backward still computes the first ones.
// Buckets are launched strictly in index order — every rank issues the same collectives in the same order,
// which Gloo and NCCL require. finish() launches what is left (a parameter without a gradient counts as zero,
// the same on every rank), waits, divides by the world size and points each p.grad() at its slice of the bucket.
//
// Not here: the process group (communicator.h) or the optimizer (optim.h).
#pragma once

#include "ddpm/train/communicator.h"

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace ddpm {

class GradBuckets {
 public:
  // Registers the gradient hooks (removed again by the destructor); `comm` must outlive this object. bucket_bytes <= 0: one bucket for all.
  GradBuckets(std::vector<torch::Tensor> params, Communicator& comm, int64_t bucket_bytes);
  ~GradBuckets();
  GradBuckets(const GradBuckets&) = delete;
  GradBuckets& operator=(const GradBuckets&) = delete;

  void begin();   // before backward(): arms the hooks for one step
  void finish();  // after backward(): waits for every bucket; p.grad() then holds the average over ranks

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Buckets whose all-reduce was started from a hook, i.e. during backward (the rest start in finish()).
  int64_t launched_in_backward() const { return launched_in_backward_; }
  double wait_seconds() const { return wait_seconds_; }  // time finish() spent waiting (exposed communication)
  void reset_wait_seconds() { wait_seconds_ = 0; }

 private:
  struct Bucket {
    std::vector<size_t> params;   // indices into params_
    std::vector<int64_t> offset;  // element offset of each in flat
    torch::Tensor flat;           // [numel] the bucket's gradients
    size_t ready = 0;
    std::unique_ptr<PendingCollective> pending;
  };
  void on_grad(size_t param, const torch::Tensor& grad);
  void launch_ready();

  std::vector<torch::Tensor> params_;
  Communicator& comm_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_, slot_of_;  // param -> (bucket, position in it)
  std::vector<char> have_grad_;
  size_t next_launch_ = 0;
  bool armed_ = false;
  int64_t launched_in_backward_ = 0;
  double wait_seconds_ = 0;
  std::vector<unsigned> hooks_;  // removed by the destructor
};

}  // namespace ddpm
