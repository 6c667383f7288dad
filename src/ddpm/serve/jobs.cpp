// jobs.cpp — see jobs.h.
#include "ddpm/serve/jobs.h"

#include <algorithm>

namespace ddpm::serve {

const char* to_string(JobStatus s) {
  switch (s) {
    case JobStatus::Queued: return "queued";
    case JobStatus::Running: return "running";
    case JobStatus::Completed: return "completed";
    case JobStatus::Failed: return "failed";
    case JobStatus::Cancelled: return "cancelled";
  }
  return "?";
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

JobStore::JobStore(size_t max_queue, size_t keep_finished) : max_queue_(max_queue), keep_finished_(keep_finished) {}

void JobStore::bump(Job& j) {
  ++j.version;
  changed_.notify_all();
}

std::shared_ptr<Job> JobStore::submit(JobSpec spec) {
  std::lock_guard<std::mutex> g(mu_);
  if (closed_) throw QueueFull("the server is shutting down");
  if (queue_.size() >= max_queue_)
    throw QueueFull("the queue is full (" + std::to_string(max_queue_) + " jobs waiting); try again later");
  auto j = std::make_shared<Job>();
  j->id = "j" + std::to_string(next_id_++);
  j->spec = std::move(spec);
  j->created = unix_now();
  j->images = j->spec.total_images();
  queue_.push_back(j);
  jobs_[j->id] = j;
  order_.push_back(j->id);
  ++counters_.by_status["submitted"];
  bump(*j);
  forget_old();
  return j;
}

std::shared_ptr<Job> JobStore::get(const std::string& id) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second;
}

bool JobStore::cancel(const std::string& id) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return false;
  auto& j = *it->second;
  if (j.status == JobStatus::Queued) {
    queue_.erase(std::remove(queue_.begin(), queue_.end(), it->second), queue_.end());
    j.status = JobStatus::Cancelled;
    j.finished_at = unix_now();
    ++j.status_version;
    ++counters_.by_status["cancelled"];
    bump(j);
    for (auto& q : queue_) bump(*q);  // their queue positions moved
  } else if (j.status == JobStatus::Running) {
    j.cancel_requested = true;
  }
  return true;
}

std::shared_ptr<Job> JobStore::next() {
  std::unique_lock<std::mutex> l(mu_);
  changed_.wait(l, [&] { return closed_ || !queue_.empty(); });
  if (closed_) return nullptr;
  auto j = queue_.front();
  queue_.pop_front();
  running_ = j;
  for (auto& q : queue_) bump(*q);
  return j;
}

void JobStore::close() {
  std::lock_guard<std::mutex> g(mu_);
  closed_ = true;
  for (auto& j : queue_) {
    j->status = JobStatus::Cancelled;
    j->finished_at = unix_now();
    ++j->status_version;
    ++counters_.by_status["cancelled"];
    bump(*j);
  }
  queue_.clear();
  if (running_) running_->cancel_requested = true;
  changed_.notify_all();
}

bool JobStore::closed() const {
  std::lock_guard<std::mutex> g(mu_);
  return closed_;
}

void JobStore::set_running(Job& j) {
  std::lock_guard<std::mutex> g(mu_);
  j.status = JobStatus::Running;
  j.started = unix_now();
  ++j.status_version;
  bump(j);
}

void JobStore::set_progress(Job& j, int64_t step, int64_t steps, int64_t images_done, int64_t images) {
  std::lock_guard<std::mutex> g(mu_);
  j.step = step;
  j.steps = steps;
  j.images_done = images_done;
  j.images = images;
  ++j.progress_version;
  bump(j);
}

void JobStore::set_preview(Job& j, std::string png, int64_t step, int64_t steps) {
  std::lock_guard<std::mutex> g(mu_);
  j.preview_png = std::move(png);
  j.preview_step = step;
  j.preview_steps = steps;
  ++j.preview_version;
  bump(j);
}

namespace {
void finish_job(Job& j, JobStatus s, JobCounters& c) {
  j.status = s;
  j.finished_at = unix_now();
  ++j.status_version;
  ++c.by_status[to_string(s)];
  if (j.started > 0) {
    c.seconds += j.finished_at - j.started;
    ++c.timed;
  }
}
}  // namespace

void JobStore::set_completed(Job& j, nlohmann::json result, int64_t images, int64_t nfe) {
  std::lock_guard<std::mutex> g(mu_);
  j.result = std::move(result);
  j.images_done = j.images;
  finish_job(j, JobStatus::Completed, counters_);
  counters_.images += images;
  counters_.nfe += nfe;
  if (running_.get() == &j) running_.reset();
  bump(j);
  forget_old();
}

void JobStore::set_failed(Job& j, const std::string& error) {
  std::lock_guard<std::mutex> g(mu_);
  j.error = error;
  finish_job(j, JobStatus::Failed, counters_);
  if (running_.get() == &j) running_.reset();
  bump(j);
  forget_old();
}

void JobStore::set_cancelled(Job& j) {
  std::lock_guard<std::mutex> g(mu_);
  finish_job(j, JobStatus::Cancelled, counters_);
  if (running_.get() == &j) running_.reset();
  bump(j);
  forget_old();
}

void JobStore::forget_old() {
  size_t finished_count = 0;
  for (const auto& id : order_) finished_count += finished(jobs_.at(id)->status) ? 1 : 0;
  for (auto it = order_.begin(); finished_count > keep_finished_ && it != order_.end();) {
    if (finished(jobs_.at(*it)->status)) {
      jobs_.erase(*it);
      it = order_.erase(it);
      --finished_count;
    } else {
      ++it;
    }
  }
}

int64_t JobStore::queue_position(const Job& j) const {
  for (size_t i = 0; i < queue_.size(); ++i)
    if (queue_[i].get() == &j) return static_cast<int64_t>(i);
  return -1;
}

nlohmann::json JobStore::to_json(const Job& j, bool with_result) const {
  std::lock_guard<std::mutex> g(mu_);
  nlohmann::json o = {{"id", j.id},           {"status", to_string(j.status)}, {"task", j.spec.task},
                      {"model", j.spec.model}, {"created", j.created},         {"request", j.spec.request}};
  if (j.status == JobStatus::Queued) o["queue_position"] = queue_position(j);
  if (j.started > 0) o["started"] = j.started;
  if (j.finished_at > 0) o["finished"] = j.finished_at;
  o["progress"] = {{"step", j.step}, {"steps", j.steps}, {"images_done", j.images_done}, {"images", j.images}};
  if (j.status == JobStatus::Running && j.cancel_requested) o["cancel_requested"] = true;
  if (j.status == JobStatus::Completed) {
    if (with_result) {
      o["result"] = j.result;
    } else {
      nlohmann::json r = j.result;
      r.erase("images");
      r.erase("grid");
      r.erase("inputs");
      o["result"] = r;
    }
  }
  if (j.status == JobStatus::Failed) o["error"] = j.error;
  return o;
}

nlohmann::json JobStore::list() const {
  std::lock_guard<std::mutex> g(mu_);
  nlohmann::json a = nlohmann::json::array();
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    const auto& j = *jobs_.at(*it);
    nlohmann::json o = {{"id", j.id}, {"status", to_string(j.status)}, {"task", j.spec.task}, {"model", j.spec.model},
                        {"created", j.created}};
    if (j.status == JobStatus::Queued) o["queue_position"] = queue_position(j);
    if (j.started > 0 && j.finished_at > 0) o["seconds"] = j.finished_at - j.started;
    a.push_back(o);
  }
  return {{"jobs", a}};
}

size_t JobStore::queue_length() const {
  std::lock_guard<std::mutex> g(mu_);
  return queue_.size();
}

JobCounters JobStore::counters() const {
  std::lock_guard<std::mutex> g(mu_);
  return counters_;
}

uint64_t JobStore::wait_change(const Job& j, uint64_t seen, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> l(mu_);
  changed_.wait_for(l, timeout, [&] { return closed_ || j.version != seen; });
  return j.version;
}

}  // namespace ddpm::serve
