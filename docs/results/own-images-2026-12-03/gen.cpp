// Generation variants judged by a CE classifier: which sampler change cleans the background.
// Usage: gen MODEL JUDGE [all|none|pow,snr,steps,corr2,guid,noclip] [THREADS]; 300 samples, 30 a class.
#include <cstdio>
#include <cstring>
#include <string>
#include <torch/torch.h>
#include "cff/denoise.h"
#include "cff/energy.h"
#include "cff/model_file.h"
#include "cff/sampler.h"
#include "cff/schedule.h"
int main(int argc, char **argv) {
  torch::set_num_threads(argc > 4 ? std::stoi(argv[4]) : 1);
  auto model = cff::load_model(argv[1]);
  auto judge = cff::load_model(argv[2]);
  const std::string which = argc > 3 ? argv[3] : "all";
  int64_t c = model.channels(), h = model.height(), w = model.width(), k = model.num_classes();
  auto f = model.logits_function(), jf = judge.logits_function();
  cff::CosineSchedule sched(1000);
  const int64_t n = 300;
  auto labels = torch::arange(n) % k;
  auto report = [&](const std::string &name, const torch::Tensor &s) {
    torch::NoGradGuard g;
    auto agree = (jf(s).argmax(1) == labels).to(torch::kFloat).mean().item<float>();
    auto own = (f(s).argmax(1) == labels).to(torch::kFloat).mean().item<float>();
    printf("%-28s judge %.3f own %.3f  mean %.3f  <-0.9 %.3f  >0.5 %.3f  sigma-est %.3f\n", name.c_str(), agree, own,
           s.mean().item<float>(), (s < -0.9).to(torch::kFloat).mean().item<float>(),
           (s > 0.5).to(torch::kFloat).mean().item<float>(), cff::estimate_noise_sigma(s).mean().item<float>());
    fflush(stdout);
  };
  auto base = [&](auto tweak) {
    cff::CentripetalOptions o;
    o.labels = labels;
    tweak(o);
    return cff::sample_centripetal(f, sched, n, {c, h, w}, o, torch::kCPU);
  };
  auto run = [&](const std::string &name) { return which == "all" || which.find(name) != std::string::npos; };
  torch::Tensor s0 = base([](cff::CentripetalOptions &) {});
  report("default", s0);
  {
    auto sig = cff::estimate_noise_sigma(s0);
    cff::DenoiseOptions d; d.steps = 1;
    report("default+denoise(est)", cff::denoise(f, sched, s0, sig, d));
    d.steps = 3;
    report("default+denoise(est,3)", cff::denoise(f, sched, s0, sig, d));
    for (double sg : {0.1, 0.2, 0.3}) {
      d.steps = 2;
      report("default+denoise(" + std::to_string(sg).substr(0, 4) + ",2)", cff::denoise(f, sched, s0, torch::full({n}, sg), d));
    }
  }
  if (run("pow")) for (double p : {1.5, 2.0, 3.0}) report("spacing " + std::to_string(p).substr(0, 3), base([&](cff::CentripetalOptions &o) { o.spacing_power = p; }));
  if (run("snr")) for (double r : {0.1, 0.3, 0.4}) report("snr " + std::to_string(r).substr(0, 3), base([&](cff::CentripetalOptions &o) { o.corrector_snr = r; }));
  if (run("steps")) report("20 steps", base([&](cff::CentripetalOptions &o) { o.steps = 20; }));
  if (run("corr2")) report("corrector 2", base([&](cff::CentripetalOptions &o) { o.corrector_steps = 2; }));
  if (run("guid")) for (double g : {2.0, 4.0}) report("guidance " + std::to_string(g).substr(0, 3), base([&](cff::CentripetalOptions &o) { o.guidance = g; }));
  if (run("noclip")) report("no clip", base([&](cff::CentripetalOptions &o) { o.clip = false; }).clamp(-1, 1));
}
