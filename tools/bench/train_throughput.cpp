// Training throughput of the CFF objective against plain cross-entropy on the same network,
// measured in one run, interleaved so that load from other processes hits both alike.
// Usage: bench-train-throughput [--widths 32,64,128] [--batch 128] [--rounds 5] [--steps 10] [--threads N]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

#include <torch/torch.h>

#include "cff/cff.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

int main(int argc, char **argv) {
  cff::NetworkConfig config;
  int64_t batch = 128, rounds = 5, steps = 10;
  int threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--widths") {
      config.widths.clear();
      std::stringstream s(v);
      std::string w;
      while (std::getline(s, w, ',')) config.widths.push_back(std::stoll(w));
    } else if (a == "--batch") {
      batch = std::stoll(v);
    } else if (a == "--rounds") {
      rounds = std::stoll(v);
    } else if (a == "--steps") {
      steps = std::stoll(v);
    } else if (a == "--threads") {
      threads = std::stoi(v);
    } else {
      std::fprintf(stderr, "bench-train-throughput: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  cff::set_threads(threads);
  torch::manual_seed(0);
  cff::Classifier net(config);
  auto f = [net](const torch::Tensor &x) mutable { return net->forward(x); };
  torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(1e-3));
  const cff::CosineSchedule schedule;
  auto x = torch::rand({batch, config.channels, config.height, config.width}) * 2 - 1;
  auto y = torch::randint(0, config.num_classes, {batch}, torch::kLong);

  auto step = [&](bool cff_objective) {
    auto terms = cff_objective ? cff::cff_loss(f, x, y, schedule, {}) : cff::cross_entropy_loss(f, x, y);
    optimizer.zero_grad();
    terms.total.backward();
    optimizer.step();
  };
  step(true);
  step(false);  // warm-up: first calls allocate
  double cff_time = 0, ce_time = 0;
  for (int64_t r = 0; r < rounds; ++r) {
    auto t = Clock::now();
    for (int64_t s = 0; s < steps; ++s) step(false);
    ce_time += seconds_since(t);
    t = Clock::now();
    for (int64_t s = 0; s < steps; ++s) step(true);
    cff_time += seconds_since(t);
  }
  const double images = static_cast<double>(rounds * steps * batch);
  std::printf("network widths %s, %ld parameters, batch %ld, %s\n", config.to_json()["widths"].dump().c_str(),
              static_cast<long>(net->parameter_count()), static_cast<long>(batch), cff::describe_device(c10::Device(c10::kCPU)).c_str());
  std::printf("ce   training: %8.1f img/s\n", images / ce_time);
  std::printf("cff  training: %8.1f img/s\n", images / cff_time);
  std::printf("ratio cff cost / ce cost per image: %.2f (target <= 2.5)\n", cff_time / ce_time);
  return 0;
}
