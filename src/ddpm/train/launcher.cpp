// launcher.cpp — see launcher.h.
#include "ddpm/train/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <map>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace ddpm {
namespace {

std::atomic<int> g_forward_int{0}, g_forward_term{0};
void on_launcher_signal(int sig) {
  if (sig == SIGINT) g_forward_int.fetch_add(1);
  else g_forward_term.fetch_add(1);
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                                  strsignal(WTERMSIG(status)) + ")";
  return "ended (status " + std::to_string(status) + ")";
}

}  // namespace

int free_tcp_port(const std::string& addr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = 0;
  if (::inet_pton(AF_INET, addr == "localhost" ? "127.0.0.1" : addr.c_str(), &sa.sin_addr) != 1) {
    ::close(fd);
    throw std::runtime_error("--master-addr '" + addr + "' is not an IPv4 address (needed to pick a free port)");
  }
  socklen_t len = sizeof(sa);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("cannot find a free port on " + addr + ": " + err);
  }
  ::close(fd);
  return ntohs(sa.sin_port);
}

int launch_local_workers(const std::vector<std::string>& argv, const LaunchOptions& opt) {
  if (opt.nproc < 1) throw std::runtime_error("--nproc must be at least 1");
  if (argv.empty()) throw std::runtime_error("launch_local_workers: empty argv");
  const int port = opt.master_port > 0 ? opt.master_port : free_tcp_port(opt.master_addr);
  auto log = [&](const std::string& s) {
    if (opt.log) *opt.log << "launcher: " << s << "\n" << std::flush;
  };

  // Everything the children need is built before fork(): after it, only async-signal-safe calls.
  std::vector<std::string> base_env;
  for (char** e = environ; *e; ++e) {
    const std::string kv(*e);
    const std::string key = kv.substr(0, kv.find('='));
    if (key == "RANK" || key == "LOCAL_RANK" || key == "WORLD_SIZE" || key == "LOCAL_WORLD_SIZE" ||
        key == "MASTER_ADDR" || key == "MASTER_PORT" || key == "GROUP_RANK")
      continue;
    base_env.push_back(kv);
  }
  std::vector<std::vector<std::string>> envs(opt.nproc, base_env);
  for (int r = 0; r < opt.nproc; ++r) {
    envs[r].push_back("RANK=" + std::to_string(r));
    envs[r].push_back("LOCAL_RANK=" + std::to_string(r));
    envs[r].push_back("WORLD_SIZE=" + std::to_string(opt.nproc));
    envs[r].push_back("LOCAL_WORLD_SIZE=" + std::to_string(opt.nproc));
    envs[r].push_back("GROUP_RANK=0");
    envs[r].push_back("MASTER_ADDR=" + opt.master_addr);
    envs[r].push_back("MASTER_PORT=" + std::to_string(port));
  }
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<std::vector<char*>> cenvs(opt.nproc);
  for (int r = 0; r < opt.nproc; ++r) {
    for (const auto& kv : envs[r]) cenvs[r].push_back(const_cast<char*>(kv.c_str()));
    cenvs[r].push_back(nullptr);
  }

  g_forward_int = 0;
  g_forward_term = 0;
  struct sigaction sa{}, old_int{}, old_term{};
  sa.sa_handler = on_launcher_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  const pid_t parent = ::getpid();
  std::map<pid_t, int> alive;  // pid -> rank
  for (int r = 0; r < opt.nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      for (auto& [p, _] : alive) ::kill(p, SIGKILL);
      throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
      ::setpgid(0, 0);                     // a terminal's Ctrl-C reaches the launcher only
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // ... and the workers stop if the launcher dies
      if (::getppid() != parent) _exit(1);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      ::execve("/proc/self/exe", cargv.data(), cenvs[r].data());
      _exit(127);
    }
    alive[pid] = r;
  }
  log("started " + std::to_string(opt.nproc) + " workers (MASTER_ADDR=" + opt.master_addr +
      " MASTER_PORT=" + std::to_string(port) + ")");

  using clock = std::chrono::steady_clock;
  int first_failed_rank = -1, first_failed_status = 0;
  bool all_interrupted = true, any_interrupted = false;
  int sent_int = 0, sent_term = 0;
  clock::time_point failed_at{};
  bool termed = false, killed = false;
  while (!alive.empty()) {
    // Forward each received signal once.
    while (sent_int < g_forward_int.load()) {
      for (auto& [p, _] : alive) ::kill(p, SIGINT);
      ++sent_int;
    }
    while (sent_term < g_forward_term.load()) {
      for (auto& [p, _] : alive) ::kill(p, SIGTERM);
      ++sent_term;
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0 && alive.count(pid)) {
      const int rank = alive[pid];
      alive.erase(pid);
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      const bool interrupted = WIFEXITED(status) && WEXITSTATUS(status) == 130;
      any_interrupted = any_interrupted || interrupted;
      if (!ok && !interrupted) all_interrupted = false;
      if (!ok && !interrupted && first_failed_rank < 0) {
        first_failed_rank = rank;
        first_failed_status = status;
        failed_at = clock::now();
        if (!alive.empty())
          log("worker rank " + std::to_string(rank) + " (pid " + std::to_string(pid) + ") " + describe(status) +
              "; the others stop on their own or get SIGTERM in " + std::to_string(static_cast<int>(opt.grace_s)) + " s");
      }
      continue;
    }
    if (pid < 0 && errno == ECHILD) break;
    if (first_failed_rank >= 0) {
      const double since = std::chrono::duration<double>(clock::now() - failed_at).count();
      if (!termed && since > opt.grace_s) {
        log("sending SIGTERM to the remaining workers");
        for (auto& [p, _] : alive) ::kill(p, SIGTERM);
        termed = true;
      } else if (!killed && since > 2 * opt.grace_s) {
        log("sending SIGKILL to the remaining workers");
        for (auto& [p, _] : alive) ::kill(p, SIGKILL);
        killed = true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);

  if (first_failed_rank >= 0)
    throw std::runtime_error("worker rank " + std::to_string(first_failed_rank) + " " + describe(first_failed_status) +
                             "; all " + std::to_string(opt.nproc) + " workers have ended (its own error is above)");
  if (any_interrupted && all_interrupted) return 130;
  return 0;
}

}  // namespace ddpm
