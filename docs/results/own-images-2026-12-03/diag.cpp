// Per-t diagnostics of the force: how well x0_hat removes noise on background vs foreground pixels, then the
// pixel histogram of the x0 estimates along the default sampler. Usage: diag MODEL IMAGES.f32 (from dump.py)
#include <cstdio>
#include <fstream>
#include <vector>
#include <cstring>
#include <torch/torch.h>
#include "cff/energy.h"
#include "cff/model_file.h"
#include "cff/schedule.h"
#include "cff/sampler.h"
int main(int argc, char **argv) {
  torch::set_num_threads(1);
  auto model = cff::load_model(argv[1]);
  std::ifstream in(argv[2], std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), {});
  std::vector<float> buf(raw.size() / 4); memcpy(buf.data(), raw.data(), buf.size() * 4);
  int64_t c = model.channels(), h = model.height(), w = model.width();
  int64_t n = buf.size() / (c * h * w + 1);
  auto all = torch::from_blob(buf.data(), {n, c * h * w + 1}, torch::kFloat32).clone();
  auto x0 = all.slice(1, 0, c * h * w).view({n, c, h, w});
  auto y = all.select(1, c * h * w).to(torch::kLong);
  auto f = model.logits_function();
  cff::CosineSchedule sched(1000);
  torch::manual_seed(0);
  // background: pixels whose clean value is within 0.1 of the image's darkest value
  auto bg = (x0 - x0.flatten(1).amin(1).view({-1, 1, 1, 1})) < 0.1;
  printf("n %ld, background share %.3f\n", n, bg.to(torch::kFloat).mean().item<float>());
  printf("   t  abar   cos(all) cos(bg) cos(fg) |eh_bg|/|e_bg| |eh_fg|/|e_fg|  rmse_x0hat bg/fg   id-rmse bg/fg  bg mean x0hat (true %.2f)\n",
         (x0 * bg).sum().item<float>() / bg.sum().item<float>());
  for (int t : {50, 100, 200, 300, 500, 700, 900, 1000}) {
    double a = sched.alpha_bar(double(t));
    auto eps = torch::randn_like(x0);
    auto xt = std::sqrt(a) * x0 + std::sqrt(1 - a) * eps;
    cff::ForceOptions o; o.labels = y;
    auto eh = cff::force_direction(f, xt, o).noise_estimate().detach();
    auto bgf = bg.to(torch::kFloat), fgf = 1 - bgf;
    auto cosm = [&](const torch::Tensor &m) {
      auto a1 = (eh * m).flatten(1), b1 = (eps * m).flatten(1);
      return ((a1 * b1).sum(1) / (a1.norm(2, 1) * b1.norm(2, 1) + 1e-8)).mean().item<float>();
    };
    auto ratio = [&](const torch::Tensor &m) {
      return ((eh * m).flatten(1).norm(2, 1) / ((eps * m).flatten(1).norm(2, 1) + 1e-8)).mean().item<float>();
    };
    auto x0h = ((xt - std::sqrt(1 - a) * eh) / std::sqrt(a)).clamp(-1, 1);
    auto idh = (xt / std::sqrt(a)).clamp(-1, 1);
    auto rmse = [&](const torch::Tensor &e, const torch::Tensor &m) {
      return std::sqrt((((e - x0) * m).pow(2).sum() / m.sum()).item<float>());
    };
    printf("%4d %.3f   %.3f   %.3f   %.3f   %.3f   %.3f   %.3f/%.3f   %.3f/%.3f   %.3f\n", t, a, cosm(torch::ones_like(bgf)), cosm(bgf), cosm(fgf),
           ratio(bgf), ratio(fgf), rmse(x0h, bgf), rmse(x0h, fgf), rmse(idh, bgf), rmse(idh, fgf),
           ((x0h * bgf).sum() / bgf.sum()).item<float>());
  }
  // Samples: the pixel histogram against the data's.
  auto stats = [&](const char *name, const torch::Tensor &s) {
    auto lo = s.min().item<float>();
    printf("%-8s mean %.3f  <-0.9: %.3f  <-0.5: %.3f  >0.5: %.3f  (data min %.2f)\n", name, s.mean().item<float>(),
           (s < -0.9).to(torch::kFloat).mean().item<float>(), (s < -0.5).to(torch::kFloat).mean().item<float>(),
           (s > 0.5).to(torch::kFloat).mean().item<float>(), lo);
  };
  stats("data", x0);
  cff::CentripetalOptions so;
  so.labels = torch::arange(100) % model.num_classes();
  so.on_step = [&](int64_t step, const torch::Tensor &x0h) { char b[32]; snprintf(b, 32, "step %ld", step); stats(b, x0h); };
  auto smp = cff::sample_centripetal(f, sched, 100, {c, h, w}, so, torch::kCPU);
}
