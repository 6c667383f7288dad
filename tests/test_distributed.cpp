// test_distributed.cpp — data parallelism on c10d Gloo over loopback: 2 ranks with global batch B end with the
// same weights as 1 rank with batch B; the ranks stay bit-identical; a dead peer ends the run within the
// timeout; gradient buckets average like one all-reduce and start during backward; the environment contract.
//
// Workers are this test binary re-executed (posix_spawn of /proc/self/exe) with --gtest_filter=DistWorker.Run
// and the torchrun variables in their environment, so every rank is a fresh process as in real use.
#include "ddpm/io/checkpoint.h"
#include "ddpm/io/safetensors.h"
#include "ddpm/nn/unet.h"
#include "ddpm/train/distributed.h"
#include "ddpm/train/grad_buckets.h"
#include "ddpm/train/launcher.h"
#include "ddpm/train/trainer.h"
#include "ddpm/util/runtime.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

extern char** environ;

using namespace ddpm;
namespace fs = std::filesystem;

namespace {

// 16 smooth 28×28 images with labels (discs and bars), uint8 [N,1,28,28].
Dataset shapes_dataset(int64_t n) {
  auto yy = torch::arange(28).view({28, 1}).expand({28, 28}).to(torch::kFloat32);
  auto xx = torch::arange(28).view({1, 28}).expand({28, 28}).to(torch::kFloat32);
  std::vector<torch::Tensor> imgs;
  for (int64_t i = 0; i < n; ++i) {
    torch::Tensor m;
    if (i % 2 == 0) m = ((yy - 4 - i).pow(2) + (xx - 14).pow(2) < 20.0 + 4 * i);
    else m = (xx > 2 + i) & (xx < 8 + i);
    imgs.push_back((m.to(torch::kFloat32) * 255).to(torch::kUInt8).unsqueeze(0));
  }
  Dataset d;
  d.name = "shapes";
  d.images = torch::stack(imgs);
  d.labels = torch::arange(n, torch::kLong) % 2;
  return d;
}

// No dropout (its masks are drawn per rank) and flips on, so slicing the flips is exercised too.
Config dist_config(int64_t batch) {
  Config c;
  c.preset = "tiny";
  c.model = preset_model("tiny");
  c.model.dropout = 0.0;
  c.train.batch_size = batch;
  c.train.lr = 2e-3;
  c.train.warmup = 2;
  c.train.ema_decay = 0.9;
  c.train.seed = 11;
  c.train.flip = true;
  return c;
}

constexpr int kSteps = 4;
constexpr int64_t kBatch = 8;

std::string tmp_dir(const std::string& name) {
  const char* base = std::getenv("DDPM_TEST_TMP");
  auto dir = fs::path(base ? base : fs::temp_directory_path().string()) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

SafeTensors weights_of(Trainer& tr) {
  SafeTensors st;
  add_module_state(st, *tr.model(), "model.");
  add_module_state(st, *tr.ema(), "ema.");
  return st;
}

struct Worker {
  pid_t pid;
  int rank;
};

// Starts `world` copies of this binary as ranks of one run; `extra` adds environment entries.
std::vector<Worker> spawn_workers(int world, int port, const std::string& out, const std::vector<std::string>& extra = {}) {
  std::vector<Worker> ws;
  for (int r = 0; r < world; ++r) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
    for (const auto& kv : std::vector<std::string>{"RANK=" + std::to_string(r), "LOCAL_RANK=" + std::to_string(r),
                           "WORLD_SIZE=" + std::to_string(world), "LOCAL_WORLD_SIZE=" + std::to_string(world),
                           "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port), "DDPM_DIST_OUT=" + out})
      env.push_back(kv);
    for (const auto& kv : extra) env.push_back(kv);
    std::vector<char*> envp;
    for (auto& kv : env) envp.push_back(kv.data());
    envp.push_back(nullptr);
    std::string a0 = "test_distributed", a1 = "--gtest_filter=DistWorker.Run";
    char* argv[] = {a0.data(), a1.data(), nullptr};
    pid_t pid = 0;
    posix_spawn_file_actions_t fa;  // the worker's own gtest chatter goes to its file, not into this output
    posix_spawn_file_actions_init(&fa);
    const std::string chatter = out + "/rank_" + std::to_string(r) + ".stdout";
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, chatter.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_EQ(posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv, envp.data()), 0);
    posix_spawn_file_actions_destroy(&fa);
    ws.push_back({pid, r});
  }
  return ws;
}

// Waits for a worker, killing it after `limit_s`; returns its exit status (or -1 if it had to be killed).
int wait_worker(const Worker& w, double limit_s) {
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    int status = 0;
    if (waitpid(w.pid, &status, WNOHANG) == w.pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > limit_s) {
      kill(w.pid, SIGKILL);
      waitpid(w.pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

// The worker body (skipped unless launched by the tests below): kSteps training steps as one rank, then the
// weights of this rank to DDPM_DIST_OUT/rank_R.safetensors. DDPM_DIST_DIE_AT=S: rank 1 exits at step S.
TEST(DistWorker, Run) {
  const char* out = std::getenv("DDPM_DIST_OUT");
  if (!out) GTEST_SKIP() << "a worker process of the Distributed tests";
  set_threads(1);
  const auto env = dist_env_from_environment();
  DistOptions opt;
  opt.backend = "gloo";
  opt.timeout_s = std::getenv("DDPM_DIST_TIMEOUT") ? std::atof(std::getenv("DDPM_DIST_TIMEOUT")) : 60;
  opt.bucket_mb = 1;  // several buckets for a 0.7M-parameter model
  const int die_at = std::getenv("DDPM_DIST_DIE_AT") ? std::atoi(std::getenv("DDPM_DIST_DIE_AT")) : -1;
  std::ofstream log(std::string(out) + "/rank_" + std::to_string(env.rank) + ".log");
  try {
    auto comm = make_communicator(env, opt, torch::kCPU);
    Trainer tr(dist_config(kBatch), shapes_dataset(16), torch::kCPU, comm);
    tr.set_grad_bucket_mb(opt.bucket_mb);
    for (int s = 0; s < kSteps; ++s) {
      if (env.rank == 1 && s == die_at) _exit(3);
      const auto st = tr.train_step();
      log << "step " << s << " loss " << st.loss << " comm_s " << st.comm_s << "\n";
    }
    log << "checksum " << tr.check_replicas() << "\n";
    safetensors_save(std::string(out) + "/rank_" + std::to_string(env.rank) + ".safetensors", weights_of(tr));
  } catch (const std::exception& e) {
    log << "error: " << e.what() << "\n";
    log.close();
    _exit(2);
  }
}

TEST(Distributed, TwoRanksEqualOneRankWithTheSameGlobalBatch) {
  if (!have_gloo()) GTEST_SKIP() << "built without Gloo";
  const auto dir = tmp_dir("dist_equiv");
  auto ws = spawn_workers(2, free_tcp_port("127.0.0.1"), dir);
  // The reference: one process, the same global batch, while the workers run.
  set_threads(1);
  Trainer one(dist_config(kBatch), shapes_dataset(16), torch::kCPU);
  for (int s = 0; s < kSteps; ++s) one.train_step();
  for (auto& w : ws) ASSERT_EQ(wait_worker(w, 120), 0) << read_text(dir + "/rank_" + std::to_string(w.rank) + ".log");
  auto r0 = safetensors_load(dir + "/rank_0.safetensors"), r1 = safetensors_load(dir + "/rank_1.safetensors");
  auto ref = weights_of(one);
  ASSERT_EQ(r0.tensors.size(), ref.tensors.size());
  double max_diff = 0, max_abs = 0, sum_diff = 0;
  int64_t count = 0;
  for (size_t i = 0; i < ref.tensors.size(); ++i) {
    const auto& [name, t] = ref.tensors[i];
    // The two ranks: bit for bit (the all-reduce hands every rank the same sums).
    EXPECT_TRUE(torch::equal(r0.tensors[i].second, r1.tensors[i].second)) << name;
    const auto d = (r0.tensors[i].second - t).abs();
    max_diff = std::max(max_diff, d.max().item<double>());
    sum_diff += d.sum().item<double>();
    count += d.numel();
    max_abs = std::max(max_abs, t.abs().max().item<double>());
  }
  // One rank vs two: the same mathematics, another float summation order (a mean over 8 samples vs the mean of
  // two means over 4, then a sum over ranks), so agreement to float rounding amplified by 4 Adam steps. Adam
  // moves a weight by up to lr per step whatever its gradient's size, so a weight whose gradient is float
  // noise can move differently by a fraction of lr: the largest difference is a few % of the ≈ 7e-3 that 4 steps
  // can move a weight (seen: 1.04e-4 on a Zen 5, < 1e-4 elsewhere); the mean difference stays at rounding level.
  // A wrong batch slice moves most weights by O(lr) (mean ≫ 1e-6).
  const double mean_diff = sum_diff / static_cast<double>(count);
  std::cout << "[ measured ] max |w(2 ranks) - w(1 rank)| after " << kSteps << " steps = " << max_diff
            << ", mean " << mean_diff << " (largest weight " << max_abs << ")\n";
  EXPECT_LT(max_diff, 3e-4);
  EXPECT_LT(mean_diff, 1e-6);
  EXPECT_NE(read_text(dir + "/rank_0.log").find("checksum"), std::string::npos);
}

TEST(Distributed, ADeadPeerEndsTheRunWithinTheTimeout) {
  if (!have_gloo()) GTEST_SKIP() << "built without Gloo";
  const auto dir = tmp_dir("dist_dead");
  const auto t0 = std::chrono::steady_clock::now();
  auto ws = spawn_workers(2, free_tcp_port("127.0.0.1"), dir, {"DDPM_DIST_DIE_AT=2", "DDPM_DIST_TIMEOUT=30"});
  EXPECT_EQ(wait_worker(ws[1], 60), 3);
  const int rc0 = wait_worker(ws[0], 60);  // must not hang: 30 s timeout, and a closed socket is seen sooner
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(rc0, 2) << "rank 0 should have stopped with an error";
  const auto log0 = read_text(dir + "/rank_0.log");
  EXPECT_NE(log0.find("error: rank 0/2: "), std::string::npos) << log0;
  std::cout << "[ measured ] rank 0 stopped " << secs << " s after the start; its error: "
            << log0.substr(log0.find("error:"), 160) << "\n";
  EXPECT_LT(secs, 45);
}

// A stand-in process group for GradBuckets: world size 2 whose other rank holds the same gradients, so the
// sum is 2g; records the order in which buckets are started and whether backward was still running.
struct RecordingComm : Communicator {
  std::vector<int64_t> started_sizes;
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  std::string backend() const override { return "recording"; }
  std::unique_ptr<PendingCollective> all_reduce_sum_async(torch::Tensor t) override {
    started_sizes.push_back(t.numel());
    t.mul_(2);
    return std::make_unique<DoneCollective>();
  }
  void broadcast(std::vector<torch::Tensor>&, int) override {}
  torch::Tensor all_gather(const torch::Tensor& t) override { return torch::stack({t, t}); }
};

TEST(Distributed, GradBucketsAverageLikeOneAllReduceAndStartDuringBackward) {
  torch::manual_seed(0);
  UNet net(preset_model("tiny"));
  auto params = net->parameters();
  auto x = torch::randn({2, 1, 28, 28});
  auto t = torch::tensor({3, 500}, torch::kLong);
  // Plain gradients.
  net->forward(x, t, {}).square().mean().backward();
  std::vector<torch::Tensor> plain;
  for (auto& p : params) plain.push_back(p.grad().clone());
  for (auto& p : params) p.mutable_grad() = torch::Tensor();

  RecordingComm comm;
  {
    GradBuckets buckets(params, comm, 256 * 1024);  // 256 KiB: many buckets
    EXPECT_GT(buckets.num_buckets(), 3);
    buckets.begin();
    net->forward(x, t, {}).square().mean().backward();
    buckets.finish();
    for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::allclose(params[i].grad(), plain[i], 0, 0)) << i;
    // All but (at most) the bucket holding the first layers started from the hooks, i.e. during backward.
    EXPECT_GE(buckets.launched_in_backward(), buckets.num_buckets() - 1);
    EXPECT_EQ(static_cast<int64_t>(comm.started_sizes.size()), buckets.num_buckets());
    int64_t total = 0;
    for (auto n : comm.started_sizes) total += n;
    EXPECT_EQ(total, count_parameters(*net));
    std::cout << "[ measured ] " << buckets.num_buckets() << " buckets, " << buckets.launched_in_backward()
              << " started during backward\n";
  }
  // Hooks are gone with the buckets: plain backward is untouched.
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  net->forward(x, t, {}).square().mean().backward();
  EXPECT_TRUE(torch::allclose(params[0].grad(), plain[0], 0, 0));
}

namespace {
struct EnvGuard {
  std::vector<std::string> names;
  explicit EnvGuard(std::vector<std::string> n) : names(std::move(n)) {
    for (auto& k : names) unsetenv(k.c_str());
  }
  ~EnvGuard() {
    for (auto& k : names) unsetenv(k.c_str());
  }
};
}  // namespace

TEST(Distributed, EnvironmentContract) {
  EnvGuard g({"WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SLURM_NTASKS",
              "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE", "TORCHELASTIC_USE_AGENT_STORE",
              "TORCHELASTIC_RESTART_COUNT"});
  EXPECT_FALSE(dist_env_from_environment().active);  // one process

  setenv("WORLD_SIZE", "4", 1);
  setenv("RANK", "3", 1);
  setenv("LOCAL_RANK", "1", 1);
  setenv("LOCAL_WORLD_SIZE", "2", 1);
  setenv("MASTER_ADDR", "node0", 1);
  setenv("MASTER_PORT", "1234", 1);
  setenv("TORCHELASTIC_USE_AGENT_STORE", "True", 1);
  auto e = dist_env_from_environment();
  EXPECT_TRUE(e.active);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "node0");
  EXPECT_EQ(e.master_port, 1234);
  EXPECT_TRUE(e.agent_store);

  auto expect_error = [](const std::string& part) {
    try {
      dist_env_from_environment();
      ADD_FAILURE() << "no error; expected one with: " << part;
    } catch (const std::runtime_error& err) {
      EXPECT_NE(std::string(err.what()).find(part), std::string::npos) << err.what();
    }
  };
  setenv("RANK", "4", 1);
  expect_error("RANK 4 is not below WORLD_SIZE 4");
  setenv("RANK", "x1", 1);
  expect_error("environment variable RANK='x1' is not an integer");
  setenv("RANK", "0", 1);
  setenv("MASTER_PORT", "70000", 1);
  expect_error("MASTER_PORT='70000'");
  unsetenv("MASTER_PORT");
  unsetenv("RANK");
  expect_error("WORLD_SIZE is set but RANK is not");

  // Slurm (srun) when WORLD_SIZE is absent.
  unsetenv("WORLD_SIZE");
  unsetenv("LOCAL_RANK");
  unsetenv("LOCAL_WORLD_SIZE");
  setenv("SLURM_NTASKS", "8", 1);
  setenv("SLURM_PROCID", "5", 1);
  setenv("SLURM_LOCALID", "1", 1);
  setenv("SLURM_NTASKS_PER_NODE", "4(x2)", 1);
  e = dist_env_from_environment();
  EXPECT_EQ(e.source, "slurm");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 4);
  EXPECT_EQ(e.master_port, 29500);
  unsetenv("MASTER_ADDR");
  expect_error("MASTER_ADDR is not set");

  // Backends: names checked, NCCL only for CUDA.
  EXPECT_THROW(resolve_backend("mpi", torch::kCPU), std::runtime_error);
  EXPECT_THROW(resolve_backend("nccl", torch::kCPU), std::runtime_error);
  if (have_gloo()) EXPECT_EQ(resolve_backend("auto", torch::kCPU), "gloo");
}
