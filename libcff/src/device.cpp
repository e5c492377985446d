#include "cff/device.h"

#include <stdexcept>
#include <thread>

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

void set_threads(int threads) {
  if (threads <= 0) {
    threads = static_cast<int>(std::thread::hardware_concurrency());
    if (threads <= 0) threads = 1;
  }
  at::set_num_threads(threads);
}

std::string describe_device(const c10::Device &device) {
  if (device.is_cpu()) return "cpu (" + std::to_string(at::get_num_threads()) + " threads)";
  return device.str();
}

}  // namespace cff
