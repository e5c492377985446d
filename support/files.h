// Writing files so that a crash or a full disk never leaves a partial file in place of a good one.
// Torch-free: the model files, checkpoints, metrics, reports, PNGs and benchmark results all go through it.
#pragma once

#include <string>
#include <vector>

namespace cff::files {

// Writes `contents` to `path` through a temporary file in the same folder, flushed to disk, and an atomic
// rename. On failure the temporary file is removed, the old `path` is left as it was, and
// std::runtime_error names the path and the system error.
void write_atomically(const std::string &path, const std::string &contents);

// Removes the temporary files that write_atomically left in `folder` when its process was killed mid-write
// (NAME.tmp.PID) and returns their paths. Files of other names are left alone.
std::vector<std::string> remove_interrupted_writes(const std::string &folder);

// Appends `text` to `path` (created if missing) and flushes it to disk. A write that does not reach the disk
// (a full disk, a read-only file system) throws std::runtime_error naming the path and the system error.
void append_durably(const std::string &path, const std::string &text);

}  // namespace cff::files
