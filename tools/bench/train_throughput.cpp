// Training throughput of the CFF objective against plain cross-entropy on the same network,
// measured in one run, interleaved so that load from other processes hits both alike.
// Each CFF variant (the --force-fraction list, default 1 and 0.5) is timed against CE in the same rounds.
// Usage: bench-train-throughput [--widths 32,64,128] [--batch 128] [--rounds 5] [--steps 10] [--threads N]
//                               [--force-fraction 1,0.5] [--json FILE]
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

constexpr const char *kUsage =
    "usage: bench-train-throughput [--widths 32,64,128] [--batch 128] [--rounds 5] [--steps 10] [--threads N]\n"
    "                              [--force-fraction 1,0.5] [--json FILE]\n"
    "Times training steps of the CFF objective (one per force fraction) against plain cross-entropy on the\n"
    "same network, interleaved in the same rounds, and prints images/s and the cost ratios CFF/CE.\n";

}  // namespace

int main(int argc, char **argv) {
  cff::NetworkConfig config;
  int64_t batch = 128, rounds = 5, steps = 10;
  int threads = 0;
  std::vector<double> fractions = {1.0, 0.5};
  std::string json_path;
  for (int i = 1; i < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bench-train-throughput: option %s needs a value\n%s", a.c_str(), kUsage);
      return 2;
    }
    const std::string v = argv[i + 1];
    try {
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
      } else if (a == "--force-fraction") {
        fractions.clear();
        std::stringstream s(v);
        std::string w;
        while (std::getline(s, w, ',')) fractions.push_back(std::stod(w));
      } else if (a == "--json") {
        json_path = v;
      } else {
        std::fprintf(stderr, "bench-train-throughput: unknown option %s\n%s", a.c_str(), kUsage);
        return 2;
      }
    } catch (const std::exception &) {  // std::stoll / std::stod on a value that is not a number
      std::fprintf(stderr, "bench-train-throughput: bad value '%s' for %s\n", v.c_str(), a.c_str());
      return 2;
    }
  }
  bool fractions_ok = !fractions.empty();
  for (double r : fractions) fractions_ok = fractions_ok && r > 0.0 && r <= 1.0;
  if (batch < 1 || rounds < 1 || steps < 1 || threads < 0 || config.widths.empty() || !fractions_ok) {
    std::fprintf(stderr, "bench-train-throughput: --batch, --rounds and --steps must be >= 1, --threads >= 0, "
                         "--widths not empty, every --force-fraction in (0, 1]\n");
    return 2;
  }
  cff::set_threads(threads);
  torch::manual_seed(0);
  cff::Classifier net(config);
  auto f = [net](const torch::Tensor &x) mutable { return net->forward(x); };
  torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(1e-3));
  const cff::CosineSchedule schedule;
  auto x = torch::rand({batch, config.channels, config.height, config.width}) * 2 - 1;
  auto y = torch::randint(0, config.num_classes, {batch}, torch::kLong);

  auto step = [&](double fraction) {  // fraction 0 = the CE objective
    cff::CffLossOptions options;
    options.force_fraction = fraction > 0 ? fraction : 1.0;
    auto terms = fraction > 0 ? cff::cff_loss(f, x, y, schedule, options) : cff::cross_entropy_loss(f, x, y);
    optimizer.zero_grad();
    terms.total.backward();
    optimizer.step();
  };
  step(0.0);  // warm-up: first calls allocate
  for (double fr : fractions) step(fr);
  double ce_time = 0;
  std::vector<double> cff_time(fractions.size(), 0.0);
  for (int64_t r = 0; r < rounds; ++r) {
    auto t = Clock::now();
    for (int64_t s = 0; s < steps; ++s) step(0.0);
    ce_time += seconds_since(t);
    for (size_t k = 0; k < fractions.size(); ++k) {
      t = Clock::now();
      for (int64_t s = 0; s < steps; ++s) step(fractions[k]);
      cff_time[k] += seconds_since(t);
    }
  }
  const double images = static_cast<double>(rounds * steps * batch);
  std::printf("network widths %s, %ld parameters, batch %ld, %s\n", config.to_json()["widths"].dump().c_str(),
              static_cast<long>(net->parameter_count()), static_cast<long>(batch), cff::describe_device(c10::Device(c10::kCPU)).c_str());
  std::printf("ce   training:                       %8.1f img/s\n", images / ce_time);
  nlohmann::json results = {{"benchmark", "train_throughput"}, {"batch", batch}, {"widths", config.widths},
                            {"ce_images_per_second", images / ce_time}, {"cff", nlohmann::json::array()}};
  for (size_t k = 0; k < fractions.size(); ++k) {
    const double ratio = cff_time[k] / ce_time;
    std::printf("cff  training, force fraction %.2f: %8.1f img/s, cost ratio cff/ce per image %.2f (target <= 2.5)\n",
                fractions[k], images / cff_time[k], ratio);
    results["cff"].push_back({{"force_fraction", fractions[k]}, {"images_per_second", images / cff_time[k]}, {"ratio", ratio}});
  }
  if (!json_path.empty()) cff::write_file_atomically(json_path, results.dump(2) + "\n");
  return 0;
}
