// The force's response to a uniform brightness shift: states x_t from a black image, shifted by +-0.2;
// a force that treats the shift as noise moves the mean of eps_hat by 0.2 / sqrt(1 - abar). Usage: dc MODEL
#include <cstdio>
#include <torch/torch.h>
#include "cff/energy.h"
#include "cff/model_file.h"
#include "cff/schedule.h"
int main(int argc, char **argv) {
  torch::set_num_threads(2);
  auto model = cff::load_model(argv[1]);
  auto f = model.logits_function();
  cff::CosineSchedule sched(1000);
  int64_t c = model.channels(), h = model.height(), w = model.width();
  torch::manual_seed(0);
  // pure-noise-ish states and mid-t states built from a flat black image plus noise
  for (int t : {100, 300, 500, 700, 900}) {
    double a = sched.alpha_bar(double(t));
    auto x0 = -torch::ones({64, c, h, w});
    auto eps = torch::randn_like(x0);
    auto xt = std::sqrt(a) * x0 + std::sqrt(1 - a) * eps;
    cff::ForceOptions o; o.labels = torch::arange(64) % model.num_classes();
    auto m0 = cff::force_direction(f, xt, o).noise_estimate().mean().item<float>();
    auto m1 = cff::force_direction(f, xt + 0.2, o).noise_estimate().mean().item<float>();
    auto m2 = cff::force_direction(f, xt - 0.2, o).noise_estimate().mean().item<float>();
    printf("t %4d  mean eps_hat %.3f  +0.2 -> %.3f  -0.2 -> %.3f   ideal change %.3f\n", t, m0, m1, m2, 0.2 / std::sqrt(1 - a));
  }
}
