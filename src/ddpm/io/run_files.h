// run_files.h — the files of a run directory that must survive crashes: the checkpoint (written crash-safely,
// with the last K step-numbered copies), leftovers of writes that a crash interrupted, and metrics.jsonl after a
// resume. No LibTorch: bytes and paths only.
//
//   DIR/checkpoint.safetensors            the latest checkpoint (what --resume and ddpm sample read)
//   DIR/checkpoint-00001000.safetensors   step-numbered copies, the last K kept (--keep-checkpoints K); the
//                                          latest one is a hard link of checkpoint.safetensors (no second write)
//   DIR/*.tmp.<pid>                       a write in progress; removed at the next start if <pid> is gone
#pragma once

#include <cstdint>
#include <string>

namespace ddpm {

// "checkpoint-00001000.safetensors" (8 digits, more when the step needs them).
std::string numbered_checkpoint_name(int64_t step);

// Writes checkpoint bytes of `step` into `dir`: crash-safely (temporary file, fsync, rename, directory fsync),
// so that checkpoint.safetensors is always either the previous or the new complete file. With keep > 0 the
// bytes go to the numbered file, checkpoint.safetensors is atomically replaced by a hard link to it, and all but
// the `keep` newest numbered files are deleted. On failure (disk full, ...) throws; existing files are intact.
void save_run_checkpoint(const std::string& dir, int64_t step, const std::string& bytes, int64_t keep);

// Removes "*.tmp.<pid>" files in `dir` left by a process that no longer exists (a killed writer). Returns how
// many it removed.
int remove_stale_temp_files(const std::string& dir);

// Keeps only the metrics.jsonl records with "step" <= `step` (and drops a half-written last line), so that a
// resumed run does not repeat the records of the steps it redoes. Rewrites the file atomically if it changes.
void trim_metrics(const std::string& path, int64_t step);

}  // namespace ddpm
