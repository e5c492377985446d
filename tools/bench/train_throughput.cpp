// Training throughput of the CFF objective against plain cross-entropy on the same network,
// measured in one run, interleaved so that load from other processes hits both alike.
// Each CFF variant (the --force-fraction list, default 1 and 0.5) is timed against CE in the same rounds.
// Usage: bench-train-throughput [--widths 32,64,128] [--channels 1] [--size 28x28] [--batch 128] [--rounds 5]
//                               [--steps 10] [--threads N] [--force-fraction 1,0.5] [--json FILE]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <tuple>

#include <torch/torch.h>

#include "cff/cff.h"
#include "support/cli.h"
#include "support/files.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

int main(int argc, char **argv) {
  cff::keep_freed_memory();  // as cff-train does
  cff::NetworkConfig config;
  int64_t batch = 128, rounds = 5, steps = 10;
  int threads = 0;
  std::vector<double> fractions = {1.0, 0.5};
  std::string json_path;
  const auto non_empty_list = [](const std::string &name, const std::string &v) {
    std::vector<std::string> items = cff::cli::split(v);
    if (items.empty()) throw cff::cli::UsageError("--" + name + ": empty list");
    return items;
  };
  const std::vector<cff::cli::Option> options = {
      {"widths", "LIST", "channel widths of the network, comma-separated [32,64,128]", [&](auto v) {
         config.widths.clear();
         for (const auto &w : non_empty_list("widths", v)) config.widths.push_back(cff::cli::to_int("widths", w, 1));
       }},
      {"channels", "N", "image channels (1 grey, 3 colour) [1]", [&](auto v) { config.channels = cff::cli::to_int("channels", v, 1); }},
      {"size", "WxH", "image size [28x28]", [&](auto v) { std::tie(config.width, config.height) = cff::cli::to_size("size", v); }},
      {"batch", "N", "images per step [128]", [&](auto v) { batch = cff::cli::to_int("batch", v, 1); }},
      {"rounds", "N", "interleaved rounds [5]", [&](auto v) { rounds = cff::cli::to_int("rounds", v, 1); }},
      {"steps", "N", "training steps per objective and round [10]", [&](auto v) { steps = cff::cli::to_int("steps", v, 1); }},
      {"threads", "N", "LibTorch CPU threads (0 = all cores) [0]", [&](auto v) { threads = static_cast<int>(cff::cli::to_int("threads", v, 0)); }},
      {"force-fraction", "LIST", "force fractions of the CFF variants, each in (0, 1] [1,0.5]", [&](auto v) {
         fractions.clear();
         for (const auto &item : non_empty_list("force-fraction", v)) {
           const double r = cff::cli::to_double("force-fraction", item);
           if (!(r > 0.0 && r <= 1.0)) throw cff::cli::UsageError("--force-fraction: each must be in (0, 1], got " + item);
           fractions.push_back(r);
         }
       }},
      {"json", "FILE", "also write the results as JSON", [&](auto v) { json_path = v; }},
  };
  const cff::cli::Program program{
      "bench-train-throughput", "[options]",
      "Times training steps of the CFF objective (one per force fraction) against plain cross-entropy on the\n"
      "same network, interleaved in the same rounds, and prints images/s and the cost ratios CFF/CE."};
  cff::cli::parse_or_exit(argc, argv, options, program);
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
  std::printf("network widths %s, %ld parameters, input %ldx%ldx%ld, batch %ld, %s\n", config.to_json()["widths"].dump().c_str(),
              static_cast<long>(net->parameter_count()), static_cast<long>(config.channels), static_cast<long>(config.height),
              static_cast<long>(config.width), static_cast<long>(batch), cff::describe_device(c10::Device(c10::kCPU)).c_str());
  std::printf("ce   training:                       %8.1f img/s\n", images / ce_time);
  nlohmann::json results = {{"benchmark", "train_throughput"}, {"batch", batch}, {"widths", config.widths},
                            {"input", {config.channels, config.height, config.width}},
                            {"ce_images_per_second", images / ce_time}, {"cff", nlohmann::json::array()}};
  for (size_t k = 0; k < fractions.size(); ++k) {
    const double ratio = cff_time[k] / ce_time;
    std::printf("cff  training, force fraction %.2f: %8.1f img/s, cost ratio cff/ce per image %.2f (target <= 2.5)\n",
                fractions[k], images / cff_time[k], ratio);
    results["cff"].push_back({{"force_fraction", fractions[k]}, {"images_per_second", images / cff_time[k]}, {"ratio", ratio}});
  }
  if (!json_path.empty()) cff::files::write_atomically(json_path, results.dump(2) + "\n");
  return 0;
}
