// distributed.h — many processes, one training run: rendezvous from the environment (torchrun / Slurm / by
// hand) and a Communicator on PyTorch's c10d process groups — Gloo for CPU tensors, NCCL for CUDA tensors when
// the LibTorch build has it. Nothing here is home-made communication: c10d's TCPStore does the rendezvous and
// its ProcessGroupGloo / ProcessGroupNCCL run the collectives.
//
// Environment (the torchrun contract; Slurm's variables are the fallback):
//   WORLD_SIZE  (SLURM_NTASKS)   number of processes            RANK        (SLURM_PROCID)  this process, 0-based
//   LOCAL_RANK  (SLURM_LOCALID)  index on this machine (GPU)    LOCAL_WORLD_SIZE (SLURM_NTASKS_PER_NODE)
//   MASTER_ADDR, MASTER_PORT     where rank 0's TCPStore listens (default 127.0.0.1:29500)
//   TORCHELASTIC_USE_AGENT_STORE=True   torchrun's agent already hosts the store: every rank is a client
//   GLOO_SOCKET_IFNAME           network interface for Gloo (else the address MASTER_ADDR routes through)
// Not here: the trainer (trainer.h), gradient bucketing (grad_buckets.h), launching local workers (launcher.h).
#pragma once

#include "ddpm/train/communicator.h"

#include <torch/torch.h>

#include <memory>
#include <string>

namespace ddpm {

struct DistEnv {
  bool active = false;  // launched as one of several processes (WORLD_SIZE or SLURM_NTASKS in the environment)
  int rank = 0, world_size = 1, local_rank = 0, local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;  // TORCHELASTIC_USE_AGENT_STORE=True
  int restart_count = 0;     // TORCHELASTIC_RESTART_COUNT (keys of a restarted attempt do not collide)
  std::string source;        // where the values came from: "torchrun/env" or "slurm" (logged by rank 0)
};

// Reads the variables above. Throws with the variable's name on a malformed or inconsistent value.
DistEnv dist_env_from_environment();

struct DistOptions {
  std::string backend = "auto";  // auto (nccl for CUDA if built in, else gloo) | gloo | nccl
  double timeout_s = 300;        // bound on rendezvous and on every collective: a dead or hung peer ends the run
  int64_t bucket_mb = 25;        // gradient bucket size (grad_buckets.h), DDP's default
};

bool have_gloo();  // this build has c10d's Gloo backend (USE_C10D_GLOO)
bool have_nccl();  // ... and NCCL (a CUDA LibTorch with ProcessGroupNCCL)
// "auto" -> "nccl" for a CUDA device when available, else "gloo". Throws if the backend is not built in or does
// not suit the device (NCCL with CPU tensors).
std::string resolve_backend(const std::string& name, const torch::Device& device);

// world_size 1 without an explicit backend -> LocalCommunicator; otherwise a c10d process group (blocks until
// all ranks have joined, at most timeout_s). Throws on a rendezvous failure, naming MASTER_ADDR:MASTER_PORT.
std::shared_ptr<Communicator> make_communicator(const DistEnv& env, const DistOptions& opt, const torch::Device& device);

}  // namespace ddpm
