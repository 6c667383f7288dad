// communicator.cpp — see communicator.h.
#include "ddpm/train/communicator.h"

namespace ddpm {

std::unique_ptr<PendingCollective> LocalCommunicator::all_reduce_sum_async(torch::Tensor) {
  return std::make_unique<DoneCollective>();
}

}  // namespace ddpm
