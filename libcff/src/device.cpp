#include "cff/device.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <torch/cuda.h>
#include <ATen/Parallel.h>

namespace cff {

c10::Device parse_device(const std::string &spec) {
  if (spec == "auto") {
    return torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  }
  if (spec == "cpu") return c10::Device(c10::kCPU);
  if (spec == "cuda" || spec.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (spec != "cuda") {
      const std::string digits = spec.substr(5);
      if (digits.empty() || digits.size() > 3 || digits.find_first_not_of("0123456789") != std::string::npos) {
        throw std::invalid_argument("device '" + spec + "': expected auto, cpu, cuda or cuda:N");
      }
      index = std::stoi(digits);
    }
    if (!torch::cuda::is_available()) {
      throw std::invalid_argument("device '" + spec + "': this LibTorch has no CUDA support or no GPU is visible");
    }
    if (index >= static_cast<int>(torch::cuda::device_count())) {
      throw std::invalid_argument("device '" + spec + "': only " + std::to_string(torch::cuda::device_count()) +
                                  " CUDA device(s) visible");
    }
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw std::invalid_argument("device '" + spec + "': expected auto, cpu, cuda or cuda:N");
}

namespace {
// The positive count last asked for in this process (0: none yet).
std::atomic<int> requested_threads{0};
}  // namespace

int set_threads(int threads) {
  if (threads > 0) {
    const int before = requested_threads.exchange(threads);
    at::set_num_threads(threads);
    return before;
  }
  const int before = requested_threads.load();
  // LibTorch starts with a single thread in some builds, so automatic means one per core.
  if (before == 0) at::set_num_threads(std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  return before;
}

bool keep_freed_memory() {
#if defined(__GLIBC__)
  // Both values are ints. Setting the mmap threshold also turns off glibc's dynamic one, which stops at
  // 32 MiB: a convolution's unfolded input (151 MiB for a batch of 128 at 32x32, 32 channels) stays above
  // it, and capping the threshold there left training 27% slower than 1 GiB.
  const bool mmap_set = mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1;
  const bool trim_set = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
  return mmap_set && trim_set;
#else
  return false;
#endif
}

std::string describe_device(const c10::Device &device) {
  if (device.is_cpu()) return "cpu (" + std::to_string(at::get_num_threads()) + " threads)";
  return device.str();
}

}  // namespace cff
