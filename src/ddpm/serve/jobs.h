// jobs.h — the server's jobs: a bounded FIFO queue for the one worker thread, every job's state (status,
// progress, the latest preview, result or error), cancellation, and a change signal that the event streams wait
// on. Finished jobs are kept (the newest `keep_finished`) so their results can still be read. Thread-safe: HTTP
// threads submit, read and cancel; the worker takes jobs and reports on them. Not here: what a job computes
// (run_job.h) or HTTP (server.h).
#pragma once

#include "ddpm/serve/job.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ddpm::serve {

enum class JobStatus { Queued, Running, Completed, Failed, Cancelled };
const char* to_string(JobStatus s);
inline bool finished(JobStatus s) { return s == JobStatus::Completed || s == JobStatus::Failed || s == JobStatus::Cancelled; }

struct Job {
  std::string id;
  JobSpec spec;
  std::atomic<bool> cancel_requested{false};
  // Guarded by the store's mutex:
  JobStatus status = JobStatus::Queued;
  double created = 0, started = 0, finished_at = 0;  // Unix seconds
  int64_t step = 0, steps = 0, images_done = 0, images = 0;
  uint64_t version = 0;          // bumps on every change
  uint64_t progress_version = 0, preview_version = 0, status_version = 0;
  std::string preview_png;       // base64 PNG of the latest x̂_0 grid
  int64_t preview_step = 0, preview_steps = 0;
  nlohmann::json result;         // when completed
  std::string error;             // when failed
};

// Thrown by submit when the queue is full (HTTP 429).
struct QueueFull : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct JobCounters {
  std::map<std::string, int64_t> by_status;  // jobs that reached each final status, and submitted
  int64_t images = 0, nfe = 0;               // served by completed jobs (NFE: model calls per image × images)
  double seconds = 0;                        // running time of finished jobs
  int64_t timed = 0;                         // jobs counted in seconds
};

class JobStore {
 public:
  JobStore(size_t max_queue, size_t keep_finished = 256);

  // Queues a job; throws QueueFull. -> the job (id assigned).
  std::shared_ptr<Job> submit(JobSpec spec);
  std::shared_ptr<Job> get(const std::string& id) const;  // null when unknown
  // A queued job becomes cancelled at once; a running one is asked to stop (the worker marks it). -> false when
  // the id is unknown.
  bool cancel(const std::string& id);
  // The worker: blocks for the next queued job; null once close() was called.
  std::shared_ptr<Job> next();
  // Stops next() and cancels every queued job and the running one.
  void close();
  bool closed() const;

  // The worker's reports.
  void set_running(Job& j);
  void set_progress(Job& j, int64_t step, int64_t steps, int64_t images_done, int64_t images);
  void set_preview(Job& j, std::string png_b64, int64_t step, int64_t steps);
  void set_completed(Job& j, nlohmann::json result, int64_t images, int64_t nfe);
  void set_failed(Job& j, const std::string& error);
  void set_cancelled(Job& j);

  // JSON of a job (GET /v1/jobs/{id}); with_result false leaves out the images.
  nlohmann::json to_json(const Job& j, bool with_result = true) const;
  nlohmann::json list() const;  // GET /v1/jobs
  size_t queue_length() const;
  int64_t queue_position(const Job& j) const;  // −1 when not queued
  JobCounters counters() const;

  // The event streams: waits until the job's version differs from `seen`, the store closes, or `timeout`.
  // -> the job's version now.
  uint64_t wait_change(const Job& j, uint64_t seen, std::chrono::milliseconds timeout) const;
  // Runs fn under the store's lock (to read several fields of a job consistently).
  template <class F> auto locked(F&& fn) const {
    std::lock_guard<std::mutex> g(mu_);
    return fn();
  }

 private:
  void bump(Job& j);  // under mu_
  void forget_old();  // under mu_: drops the oldest finished jobs beyond keep_finished_
  size_t max_queue_, keep_finished_;
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;  // any job changed, a job was queued, or the store closed
  std::deque<std::shared_ptr<Job>> queue_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  std::deque<std::string> order_;  // ids, oldest first
  std::shared_ptr<Job> running_;
  uint64_t next_id_ = 1;
  bool closed_ = false;
  JobCounters counters_;
};

double unix_now();

}  // namespace ddpm::serve
