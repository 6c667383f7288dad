// communicator.h — what the trainer needs from a process group: rank, world size, and a few collectives.
// World size 1 is LocalCommunicator (no communication at all); many processes are C10dCommunicator
// (distributed.h: PyTorch's c10d with Gloo or NCCL). The trainer is written against this interface only.
// Not here: rendezvous and process launching (distributed.h, launcher.h), gradient bucketing (grad_buckets.h).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace ddpm {

// A collective in flight. wait() blocks until it is done (or throws: a dead peer, a timeout).
struct PendingCollective {
  virtual ~PendingCollective() = default;
  virtual void wait() = 0;
};

struct Communicator {
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string backend() const = 0;  // "local", "gloo", "nccl"
  // Starts an in-place sum of `t` over all ranks; `t` must not be read or written until wait() returns.
  virtual std::unique_ptr<PendingCollective> all_reduce_sum_async(torch::Tensor t) = 0;
  // In place: every rank gets root's values.
  virtual void broadcast(std::vector<torch::Tensor>& tensors, int root) = 0;
  // Every rank's `t` stacked: [world_size, ...t.sizes()].
  virtual torch::Tensor all_gather(const torch::Tensor& t) = 0;
};

struct LocalCommunicator : Communicator {
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string backend() const override { return "local"; }
  std::unique_ptr<PendingCollective> all_reduce_sum_async(torch::Tensor) override;
  void broadcast(std::vector<torch::Tensor>&, int) override {}
  torch::Tensor all_gather(const torch::Tensor& t) override { return t.unsqueeze(0); }
};

// A collective that is already complete (what LocalCommunicator returns).
struct DoneCollective : PendingCollective {
  void wait() override {}
};

}  // namespace ddpm
