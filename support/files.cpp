#include "support/files.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <unistd.h>

namespace cff::files {
namespace {

constexpr const char *kTemporaryMark = ".tmp.";  // NAME.tmp.PID

}  // namespace

void write_atomically(const std::string &path, const std::string &contents) {
  const std::string temp = path + kTemporaryMark + std::to_string(::getpid());
  FILE *file = std::fopen(temp.c_str(), "wb");
  if (!file) throw std::runtime_error(path + ": cannot write (" + std::strerror(errno) + ")");
  const bool written = std::fwrite(contents.data(), 1, contents.size(), file) == contents.size();
  const bool flushed = std::fflush(file) == 0 && ::fsync(fileno(file)) == 0;
  const bool closed = std::fclose(file) == 0;
  if (!written || !flushed || !closed) {
    const std::string reason = std::strerror(errno);
    std::remove(temp.c_str());
    throw std::runtime_error(path + ": write failed (" + reason + ")");
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(temp.c_str());
    throw std::runtime_error(path + ": cannot replace (" + reason + ")");
  }
}

std::vector<std::string> remove_interrupted_writes(const std::string &folder) {
  std::vector<std::string> removed;
  for (const auto &entry : std::filesystem::directory_iterator(folder)) {
    if (entry.is_regular_file() && entry.path().filename().string().find(kTemporaryMark) != std::string::npos) {
      std::filesystem::remove(entry.path());
      removed.push_back(entry.path().string());
    }
  }
  return removed;
}

void append_durably(const std::string &path, const std::string &text) {
  FILE *file = std::fopen(path.c_str(), "ab");
  if (!file) throw std::runtime_error(path + ": cannot append (" + std::strerror(errno) + ")");
  const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  const bool flushed = written && std::fflush(file) == 0 && ::fsync(fileno(file)) == 0;
  const std::string reason = std::strerror(errno);
  const bool closed = std::fclose(file) == 0;
  if (!written || !flushed || !closed) throw std::runtime_error(path + ": append failed (" + reason + ")");
}

}  // namespace cff::files
