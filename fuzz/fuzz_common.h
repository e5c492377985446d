// Shared by the fuzz targets: a private scratch folder, and what to do with an exception the code under test
// is not documented to throw (a finding: abort, so that libFuzzer saves the input).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace cff_fuzz {

// A folder of this process's own under $TMPDIR (removed at exit), for readers that take a path.
inline const std::filesystem::path &scratch() {
  static const std::filesystem::path dir = [] {
    const char *tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/cff-fuzz-XXXXXX";
    if (!mkdtemp(pattern.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    static struct Remover {
      std::filesystem::path p;
      ~Remover() {
        std::error_code e;
        std::filesystem::remove_all(p, e);
      }
    } remover{pattern};
    return std::filesystem::path(pattern);
  }();
  return dir;
}

inline void write_file(const std::filesystem::path &path, const uint8_t *data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char *>(data), static_cast<std::streamsize>(size));
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

[[noreturn]] inline void unexpected(const char *what, const std::exception &e) {
  std::fprintf(stderr, "fuzz finding: %s threw an undocumented exception: %s\n", what, e.what());
  std::abort();
}

[[noreturn]] inline void broken(const char *what) {
  std::fprintf(stderr, "fuzz finding: %s\n", what);
  std::abort();
}

}  // namespace cff_fuzz
