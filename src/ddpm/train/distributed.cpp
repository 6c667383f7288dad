// distributed.cpp — see distributed.h. The c10d parts compile only where the build found them
// (DDPM_HAVE_GLOO: Gloo headers + USE_C10D_GLOO; DDPM_HAVE_NCCL: a CUDA LibTorch with ProcessGroupNCCL).
#include "ddpm/train/distributed.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(DDPM_HAVE_GLOO) || defined(DDPM_HAVE_NCCL)
#define DDPM_HAVE_C10D 1
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef DDPM_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef DDPM_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace ddpm {
namespace {

const char* env_or_null(const char* name) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : nullptr;
}

int env_int(const char* name, int fallback, int lo, int hi) {
  const char* v = env_or_null(name);
  if (!v) return fallback;
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  if (errno || end == v || *end != '\0' || x < lo || x > hi)
    throw std::runtime_error(std::string("environment variable ") + name + "='" + v + "' is not an integer in [" +
                             std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int>(x);
}

}  // namespace

DistEnv dist_env_from_environment() {
  DistEnv e;
  constexpr int kMax = 1 << 20;
  if (env_or_null("WORLD_SIZE")) {  // torchrun, or set by hand / by `ddpm train --nproc`
    e.source = "torchrun/env";
    e.world_size = env_int("WORLD_SIZE", 1, 1, kMax);
    if (!env_or_null("RANK")) throw std::runtime_error("environment variable WORLD_SIZE is set but RANK is not");
    e.rank = env_int("RANK", 0, 0, kMax);
    e.local_rank = env_int("LOCAL_RANK", e.rank, 0, kMax);
    e.local_world_size = env_int("LOCAL_WORLD_SIZE", e.world_size, 1, kMax);
  } else if (env_or_null("SLURM_NTASKS") && env_or_null("SLURM_PROCID")) {  // srun
    e.source = "slurm";
    e.world_size = env_int("SLURM_NTASKS", 1, 1, kMax);
    e.rank = env_int("SLURM_PROCID", 0, 0, kMax);
    e.local_rank = env_int("SLURM_LOCALID", 0, 0, kMax);
    // SLURM_NTASKS_PER_NODE may read "4(x2)" on heterogeneous allocations: take the leading number.
    if (const char* v = env_or_null("SLURM_NTASKS_PER_NODE")) e.local_world_size = std::max(1, std::atoi(v));
    if (e.world_size > 1 && !env_or_null("MASTER_ADDR"))
      throw std::runtime_error("running under Slurm with SLURM_NTASKS=" + std::to_string(e.world_size) +
                               " but MASTER_ADDR is not set (export MASTER_ADDR=<first node's host name>)");
  } else {
    return e;  // one process
  }
  e.active = true;
  if (e.rank >= e.world_size)
    throw std::runtime_error("RANK " + std::to_string(e.rank) + " is not below WORLD_SIZE " + std::to_string(e.world_size));
  if (e.local_rank >= e.local_world_size)
    throw std::runtime_error("LOCAL_RANK " + std::to_string(e.local_rank) + " is not below LOCAL_WORLD_SIZE " +
                             std::to_string(e.local_world_size));
  if (const char* a = env_or_null("MASTER_ADDR")) e.master_addr = a;
  e.master_port = env_int("MASTER_PORT", 29500, 1, 65535);
  if (const char* v = env_or_null("TORCHELASTIC_USE_AGENT_STORE")) e.agent_store = std::string(v) == "True";
  e.restart_count = env_int("TORCHELASTIC_RESTART_COUNT", 0, 0, kMax);
  return e;
}

bool have_gloo() {
#ifdef DDPM_HAVE_GLOO
  return true;
#else
  return false;
#endif
}

bool have_nccl() {
#ifdef DDPM_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

std::string resolve_backend(const std::string& name, const torch::Device& device) {
  if (name == "auto") {
    if (device.is_cuda() && have_nccl()) return "nccl";
    if (have_gloo()) return "gloo";
    if (have_nccl()) throw std::runtime_error("this build has only NCCL, which needs --device cuda");
    throw std::runtime_error("this build of ddpm has no c10d backend (Gloo headers were not found at build time: "
                             "install libgloo-dev and rebuild)");
  }
  if (name == "gloo") {
    if (!have_gloo())
      throw std::runtime_error("--dist-backend gloo: this build has no Gloo (install libgloo-dev and rebuild)");
    return name;
  }
  if (name == "nccl") {
    if (!have_nccl()) throw std::runtime_error("--dist-backend nccl: this build has no NCCL (it needs a CUDA LibTorch)");
    if (!device.is_cuda()) throw std::runtime_error("--dist-backend nccl needs --device cuda (NCCL reduces GPU tensors)");
    return name;
  }
  throw std::runtime_error("unknown --dist-backend '" + name + "' (expected auto, gloo or nccl)");
}

#ifdef DDPM_HAVE_C10D
namespace {

// The few operations we use, over Gloo's or NCCL's process group class (a c10d::ProcessGroup in LibTorch 1.13,
// a c10d::Backend in 2.x: the same method names, hence a template rather than a common base).
struct ProcessGroupOps {
  virtual ~ProcessGroupOps() = default;
  virtual c10::intrusive_ptr<c10d::Work> allreduce_sum(std::vector<at::Tensor>& t) = 0;
  virtual c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& t, int root) = 0;
  virtual c10::intrusive_ptr<c10d::Work> allgather(std::vector<std::vector<at::Tensor>>& out,
                                                    std::vector<at::Tensor>& in) = 0;
};

template <class PG>
struct ProcessGroupOpsImpl : ProcessGroupOps {
  c10::intrusive_ptr<PG> pg;
  std::chrono::milliseconds timeout;
  ProcessGroupOpsImpl(c10::intrusive_ptr<PG> p, std::chrono::milliseconds to) : pg(std::move(p)), timeout(to) {}
  c10::intrusive_ptr<c10d::Work> allreduce_sum(std::vector<at::Tensor>& t) override {
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    o.timeout = timeout;
    return pg->allreduce(t, o);
  }
  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& t, int root) override {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = timeout;
    return pg->broadcast(t, o);
  }
  c10::intrusive_ptr<c10d::Work> allgather(std::vector<std::vector<at::Tensor>>& out, std::vector<at::Tensor>& in) override {
    c10d::AllgatherOptions o;
    o.timeout = timeout;
    return pg->allgather(out, in, o);
  }
};

class C10dCommunicator;

struct C10dPending : PendingCollective {
  c10::intrusive_ptr<c10d::Work> work;
  const C10dCommunicator* comm;
  C10dPending(c10::intrusive_ptr<c10d::Work> w, const C10dCommunicator* c) : work(std::move(w)), comm(c) {}
  void wait() override;
};

class C10dCommunicator : public Communicator {
 public:
  C10dCommunicator(const DistEnv& env, const DistOptions& opt, const std::string& backend)
      : rank_(env.rank), world_(env.world_size), backend_(backend),
        timeout_(std::chrono::milliseconds(static_cast<int64_t>(opt.timeout_s * 1000.0))) {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = env.rank == 0 && !env.agent_store;
    so.numWorkers = env.agent_store ? c10::nullopt : c10::optional<std::size_t>(env.world_size);
    so.waitWorkers = !env.agent_store;
    so.timeout = timeout_;
    c10::intrusive_ptr<c10d::Store> store;
    try {
      store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    } catch (const std::exception& e) {
      throw std::runtime_error(where() + "rendezvous at " + env.master_addr + ":" + std::to_string(env.master_port) +
                               " failed (" + first_line(e) + "); check MASTER_ADDR/MASTER_PORT and that all " +
                               std::to_string(env.world_size) + " processes were started");
    }
    // Our keys apart from whatever else uses the store (torchrun's agent), one namespace per restart.
    store = c10::make_intrusive<c10d::PrefixStore>("ddpm/attempt_" + std::to_string(env.restart_count), store);
    try {
      if (backend == "gloo") {
#ifdef DDPM_HAVE_GLOO
        auto o = c10d::ProcessGroupGloo::Options::create(timeout_);
        if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
          o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
        else if (is_loopback(env.master_addr))
          o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        else
          o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        o->threads = 2;
        ops_ = std::make_unique<ProcessGroupOpsImpl<c10d::ProcessGroupGloo>>(
            c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank_, world_, o), timeout_);
#else
        throw std::runtime_error("Gloo is not built in");
#endif
      } else {
#ifdef DDPM_HAVE_NCCL
        auto o = c10d::ProcessGroupNCCL::Options::create();
        o->timeout = timeout_;
        ops_ = std::make_unique<ProcessGroupOpsImpl<c10d::ProcessGroupNCCL>>(
            c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank_, world_, o), timeout_);
#else
        throw std::runtime_error("NCCL is not built in");
#endif
      }
    } catch (const std::exception& e) {
      throw std::runtime_error(where() + "creating the " + backend + " process group failed: " + first_line(e));
    }
  }

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string backend() const override { return backend_; }

  std::unique_ptr<PendingCollective> all_reduce_sum_async(torch::Tensor t) override {
    TORCH_CHECK(t.is_contiguous(), "all_reduce_sum_async needs a contiguous tensor");
    std::vector<at::Tensor> v{t};
    return std::make_unique<C10dPending>(guard("all-reduce", [&] { return ops_->allreduce_sum(v); }), this);
  }

  void broadcast(std::vector<torch::Tensor>& tensors, int root) override {
    if (tensors.empty()) return;
    // One flat buffer per call (Gloo takes one CPU tensor per collective); tensors of one dtype and device here.
    torch::NoGradGuard ng;
    std::vector<torch::Tensor> flat_parts;
    for (auto& t : tensors) flat_parts.push_back(t.detach().reshape({-1}));
    auto flat = torch::cat(flat_parts);  // [sum numel]
    std::vector<at::Tensor> v{flat};
    C10dPending(guard("broadcast", [&] { return ops_->broadcast(v, root); }), this).wait();
    int64_t off = 0;
    for (auto& t : tensors) {
      t.detach().copy_(flat.narrow(0, off, t.numel()).view(t.sizes()));
      off += t.numel();
    }
  }

  torch::Tensor all_gather(const torch::Tensor& t) override {
    auto in = t.contiguous();
    std::vector<at::Tensor> inv{in};
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < world_; ++r) out[0].push_back(torch::empty_like(in));
    C10dPending(guard("all-gather", [&] { return ops_->allgather(out, inv); }), this).wait();
    return torch::stack(out[0]);  // [W, ...]
  }

  // "rank R/W: " — every message of a worker says which one it is.
  std::string where() const { return "rank " + std::to_string(rank_) + "/" + std::to_string(world_) + ": "; }
  std::string failure(const std::string& what, const std::exception& e) const {
    return where() + what + " failed — another process died, hung or was stopped (timeout " +
           std::to_string(static_cast<int64_t>(timeout_.count() / 1000)) + " s): " + first_line(e);
  }

  static std::string first_line(const std::exception& e) {
    const auto* c10e = dynamic_cast<const c10::Error*>(&e);
    std::string s = c10e ? c10e->what_without_backtrace() : e.what();
    const auto nl = s.find('\n');
    return nl == std::string::npos ? s : s.substr(0, nl);
  }

 private:
  template <class F>
  c10::intrusive_ptr<c10d::Work> guard(const char* what, F&& f) {
    try {
      return f();
    } catch (const std::exception& e) {
      throw std::runtime_error(failure(what, e));
    }
  }
  static bool is_loopback(const std::string& a) { return a == "localhost" || a.rfind("127.", 0) == 0 || a == "::1"; }

  int rank_, world_;
  std::string backend_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<ProcessGroupOps> ops_;
};

void C10dPending::wait() {
  try {
    work->wait();
  } catch (const std::exception& e) {
    throw std::runtime_error(comm->failure("collective", e));
  }
}

}  // namespace
#endif  // DDPM_HAVE_C10D

std::shared_ptr<Communicator> make_communicator(const DistEnv& env, const DistOptions& opt, const torch::Device& device) {
  if (!(opt.timeout_s > 0)) throw std::runtime_error("--dist-timeout must be positive");
  if (opt.bucket_mb < 0) throw std::runtime_error("--bucket-mb must be >= 0 (0: one bucket for all gradients)");
  // One process needs no process group, unless a backend was asked for by name (to measure its overhead).
  if (env.world_size == 1 && opt.backend == "auto") return std::make_shared<LocalCommunicator>();
  const std::string backend = resolve_backend(opt.backend, device);
#ifdef DDPM_HAVE_C10D
  return std::make_shared<C10dCommunicator>(env, opt, backend);
#else
  (void)backend;
  throw std::runtime_error("this build of ddpm has no c10d backend");
#endif
}

}  // namespace ddpm
