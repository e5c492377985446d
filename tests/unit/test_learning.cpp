// Learning tests: a tiny CFF network trained for seconds on a mixture of prototype images must
// classify, flag far-away inputs by energy, and walk noise back onto the class modes.
#include <chrono>
#include <cstdio>

#include <gtest/gtest.h>

#include "test_helpers.h"

using namespace cff;

namespace {

struct TrainedMixture {
  cff_test::PrototypeMixture data;
  Classifier net{nullptr};
  LogitsFunction f;
  CosineSchedule schedule;
  double seconds = 0;
  double first_loss = 0, last_loss = 0;

  TrainedMixture() {
    // One thread: meson runs the suites side by side on 2 cores, and oversubscribed OpenMP threads spin.
    set_threads(1);
    torch::manual_seed(0);
    auto config = cff_test::tiny_config(1, 8, 8, 4);
    config.widths = {16, 32};
    net = Classifier(config);
    auto n = net;
    f = [n](const torch::Tensor &x) mutable { return n->forward(x); };
    torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(3e-3));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(123);
    const auto start = std::chrono::steady_clock::now();
    const int steps = 400;
    double running = 0;
    for (int step = 0; step < steps; ++step) {
      auto [x, y] = data.draw(64, 1000 + step);
      auto terms = cff_loss(f, x, y, schedule, CffLossOptions{}, gen);
      optimizer.zero_grad();
      terms.total.backward();
      optimizer.step();
      const double loss = terms.total.item<double>();
      if (step < 20) first_loss += loss / 20;
      if (step >= steps - 20) last_loss += loss / 20;
      running = loss;
    }
    (void)running;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    net->eval();
    freeze(*net);
  }
};

TrainedMixture &trained() {
  static TrainedMixture model;
  return model;
}

}  // namespace

TEST(Learning, LossFallsAndClassifiesTheMixture) {
  auto &m = trained();
  std::printf("[learning] trained 400 steps in %.1f s, loss %.3f -> %.3f\n", m.seconds, m.first_loss, m.last_loss);
  EXPECT_LT(m.last_loss, 0.7 * m.first_loss);
  auto [x, y] = m.data.draw(1000, 99);
  auto accuracy = (m.f(x).argmax(1) == y).to(torch::kDouble).mean().item<double>();
  std::printf("[learning] accuracy %.4f\n", accuracy);
  EXPECT_GT(accuracy, 0.95);
}

TEST(Learning, EnergyIsLowerOnDataThanOnFarAwayPoints) {
  auto &m = trained();
  auto [x, y] = m.data.draw(500, 98);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(97);
  auto far = torch::rand({500, 1, 8, 8}, gen) * 2 - 1;  // uniform noise images
  auto in_scores = to_vector(free_energy(m.f(x)));
  auto out_scores = to_vector(free_energy(m.f(far)));
  const double area = auroc(in_scores, out_scores);
  std::printf("[learning] energy AUROC data vs uniform noise %.4f\n", area);
  EXPECT_GT(area, 0.95);
}

TEST(Learning, CentripetalStepsMoveNoiseOntoModes) {
  auto &m = trained();
  CentripetalOptions options;
  options.steps = 50;
  options.seed = 5;
  const int64_t n = 200;
  auto start = seeded_normal({n, 1, 8, 8}, 77, c10::Device(c10::kCPU));
  auto t = torch::full({n}, options.t_start, torch::kDouble);
  auto samples = run_centripetal(m.f, m.schedule, start, t, options);
  const double before = m.data.nearest_mode_distance(start).mean().item<double>();
  const double after = m.data.nearest_mode_distance(samples).mean().item<double>();
  std::printf("[learning] unconditional: mean distance to nearest mode %.3f -> %.3f (%.1fx)\n", before, after,
              before / after);
  EXPECT_GT(before / after, 5.0);
}

TEST(Learning, ConditionalSamplesHaveTheRequestedClass) {
  auto &m = trained();
  CentripetalOptions options;
  options.steps = 50;
  options.seed = 6;
  options.labels = torch::arange(200, torch::kLong) % 4;
  auto samples = sample_centripetal(m.f, m.schedule, 200, {1, 8, 8}, options);
  auto predicted = m.f(samples).argmax(1);
  const double agreement = (predicted == options.labels).to(torch::kDouble).mean().item<double>();
  // The samples must also sit at the requested mode, not just fool the classifier: the nearest
  // prototype is the requested one, and the distance to it is far below the modes' separation (9.05).
  auto distances = (samples.unsqueeze(1) - m.data.modes.unsqueeze(0)).flatten(2).norm(2, 2);  // [N, K]
  const double on_mode = (distances.argmin(1) == options.labels).to(torch::kDouble).mean().item<double>();
  const double to_requested = distances.gather(1, options.labels.view({-1, 1})).mean().item<double>();
  std::printf("[learning] conditional: classifier agreement %.3f, nearest mode is the requested one %.3f, "
              "mean distance to it %.3f\n", agreement, on_mode, to_requested);
  EXPECT_LT(to_requested, 3.0);
  EXPECT_GE(agreement, 0.90);
  EXPECT_GE(on_mode, 0.90);
}

TEST(Learning, DenoisingImprovesNoisyImages) {
  auto &m = trained();
  auto [x, y] = m.data.draw(100, 96, 0.0);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(95);
  const double sigma = 0.3;
  auto noisy = x + sigma * torch::randn(x.sizes(), gen);
  auto restored = denoise(m.f, m.schedule, noisy, torch::full({100}, sigma));
  const double before = (noisy - x).pow(2).mean().item<double>();
  const double after = (restored - x).pow(2).mean().item<double>();
  std::printf("[learning] one-shot denoise MSE %.4f -> %.4f\n", before, after);
  EXPECT_LT(after, 0.5 * before);
}
