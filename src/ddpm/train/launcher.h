// launcher.h — `ddpm train --nproc N`: starts N local copies of this program as ranks 0..N-1 of one run, the
// way torchrun's --standalone mode does (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT in each worker's environment), and supervises them:
//   - a worker that fails (non-zero exit or killed by a signal) gets the others a SIGTERM after `grace_s`
//     (they normally stop by themselves first: their next collective fails when the peer's sockets close),
//     and a SIGKILL `grace_s` later;
//   - SIGINT/SIGTERM sent to the launcher are forwarded once per signal to every worker (the workers run in
//     their own process group, so a terminal's Ctrl-C reaches them only through the launcher, exactly once);
//   - if the launcher itself dies, the workers get SIGTERM (PR_SET_PDEATHSIG).
// Not here: the rendezvous (distributed.h) or anything about training.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace ddpm {

struct LaunchOptions {
  int nproc = 2;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;   // 0: a free port on master_addr
  double grace_s = 30;   // after a failure: wait this long, then SIGTERM, then SIGKILL after as long again
  std::ostream* log = nullptr;
};

// A TCP port on `addr` that was free a moment ago (bind to port 0).
int free_tcp_port(const std::string& addr);

// Runs `argv` (argv[0] is executed as /proc/self/exe) as nproc workers and waits for all of them. Returns 0 if
// every worker exited 0, 130 if they stopped on a forwarded interrupt (every worker 130 or 0); throws naming
// the first worker that failed otherwise, after all have ended.
int launch_local_workers(const std::vector<std::string>& argv, const LaunchOptions& opt);

}  // namespace ddpm
