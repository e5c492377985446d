// gen2 MODEL JUDGE N THREADS [centre override e.g. -0.72 or "none"]
#include <cstdio>
#include <string>
#include <torch/torch.h>
#include "cff/denoise.h"
#include "cff/model_file.h"
#include "cff/sampler.h"
int main(int argc, char **argv) {
  torch::set_num_threads(std::stoi(argv[4]));
  auto model = cff::load_model(argv[1]);
  auto judge = cff::load_model(argv[2]);
  const int64_t n = std::stoi(argv[3]);
  int64_t c = model.channels(), h = model.height(), w = model.width(), k = model.num_classes();
  auto f = model.logits_function(), jf = judge.logits_function();
  cff::CosineSchedule sched = model.metadata.schedule;
  if (argc > 5) {
    std::string a = argv[5];
    if (a == "none") sched.set_centre({});
    else sched.set_centre(std::vector<double>(c, std::stod(a)));
  }
  printf("centre:"); for (double v : sched.centre()) printf(" %.3f", v); printf("\n");
  auto labels = torch::arange(n) % k;
  auto report = [&](const std::string &name, const torch::Tensor &s) {
    torch::NoGradGuard g;
    auto agree = (jf(s).argmax(1) == labels).to(torch::kFloat).mean().item<float>();
    auto own = (f(s).argmax(1) == labels).to(torch::kFloat).mean().item<float>();
    printf("%-24s judge %.3f own %.3f  mean %.3f  <-0.9 %.3f  sigma-est %.3f\n", name.c_str(), agree, own,
           s.mean().item<float>(), (s < -0.9).to(torch::kFloat).mean().item<float>(),
           cff::estimate_noise_sigma(s).mean().item<float>());
    fflush(stdout);
  };
  cff::CentripetalOptions o;
  o.labels = labels;
  auto s0 = cff::sample_centripetal(f, sched, n, {c, h, w}, o, torch::kCPU);
  report("default", s0);
  auto sig = cff::estimate_noise_sigma(s0);
  cff::DenoiseOptions d; d.steps = 1;
  report("default+denoise(est)", cff::denoise(f, sched, s0, sig, d));
  torch::save(s0, std::string(argv[1]) + ".samples.pt");
}
