// cff-demo: shows what one CFF model does, without GStreamer: classify Fashion-MNIST test images,
// flag out-of-distribution inputs by energy, generate one image per class, and denoise noisy images.
// Usage: cff-demo MODEL [OUTPUT_DIR]
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <torch/torch.h>

#include "cff/cff.h"
#include "data/datasets.h"
#include "data/evaluation.h"
#include "data/png_writer.h"
#ifdef CFF_HAVE_PLOT
#include "plot.h"
#endif

namespace {

void print_ascii(const torch::Tensor &image, const std::string &title) {
  static const char *shades = " .:-=+*#%@";
  auto img = image.to(torch::kCPU).squeeze(0);
  std::printf("%s\n", title.c_str());
  for (int64_t y = 0; y < img.size(0); y += 2) {
    std::string line = "    ";
    for (int64_t x = 0; x < img.size(1); ++x) {
      const double v = (img[y][x].item<double>() + 1) / 2;
      line += shades[std::clamp(static_cast<int>(v * 9.99), 0, 9)];
    }
    std::printf("%s\n", line.c_str());
  }
}

double psnr(const torch::Tensor &a, const torch::Tensor &b) {
  const double mse = (a - b).pow(2).mean().item<double>() / 4.0;  // [-1, 1] -> [0, 1] units
  return 10 * std::log10(1.0 / mse);
}

}  // namespace

int main(int argc, char **argv) {
  cff::keep_freed_memory();
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: cff-demo MODEL [OUTPUT_DIR]\n");
    return 2;
  }
  try {
    const std::string out_dir = argc == 3 ? argv[2] : "demo-output";
    std::filesystem::create_directories(out_dir);
    cff::set_threads(0);
    const auto device = cff::parse_device("auto");
    auto model = cff::load_model(argv[1], device);
    auto f = model.logits_function();
    const auto &meta = model.metadata;
    std::printf("model %s: %ldx%ldx%ld, %ld classes, device %s\n", argv[1], static_cast<long>(model.channels()),
                static_cast<long>(model.height()), static_cast<long>(model.width()), static_cast<long>(model.num_classes()),
                cff::describe_device(device).c_str());

    // 1. Classify.
    auto test = cff::data::load_idx_folder(cff::data::fashion_mnist_dir(), "test");
    auto x = test.normalized().slice(0, 0, 2000);
    auto y = test.labels.slice(0, 0, 2000);
    auto logits = cff::data::batched_logits(f, x, device);
    std::printf("\n1. classify: accuracy on 2000 Fashion-MNIST test images: %.2f%%\n", 100 * cff::data::accuracy(logits, y));

    // 2. Out-of-distribution by energy.
    const auto calibrated = meta.ood.threshold("energy");
    const double threshold = calibrated.value_or(std::numeric_limits<double>::infinity());
    std::printf("\n2. out-of-distribution (energy U = -logsumexp f(x); flagged when U > %.3f%s)\n", threshold,
                calibrated ? ", calibrated by the trainer" : ", NOT calibrated");
    auto in_u = cff::free_energy(logits);
    std::printf("   %-22s mean U %7.3f   flagged %5.1f%%\n", "fashion-mnist test", in_u.mean().item<double>(),
                100 * in_u.gt(threshold).to(torch::kDouble).mean().item<double>());
#ifdef CFF_HAVE_PLOT
    std::vector<cff::plot::HistogramSeries> histograms = {
        {"fashion-mnist test", cff::to_vector(in_u), cff::plot::palette(0)}};
#endif
    for (const char *set : {"uniform", "gaussian", "inverted", "vflip"}) {
      auto out_logits = cff::data::batched_logits(f, cff::data::make_ood_set(set, x, 1000, 7), device);
      auto out_u = cff::free_energy(out_logits);
#ifdef CFF_HAVE_PLOT
      histograms.push_back({set, cff::to_vector(out_u), cff::plot::palette(histograms.size())});
#endif
      const auto scores = cff::data::score_ood(logits.slice(0, 0, 1000), out_logits);
      std::printf("   %-22s mean U %7.3f   flagged %5.1f%%   AUROC %.3f\n", set, out_u.mean().item<double>(),
                  100 * out_u.gt(threshold).to(torch::kDouble).mean().item<double>(), scores.energy_auroc);
    }

#ifdef CFF_HAVE_PLOT
    std::optional<cff::plot::Marker> marker;
    if (std::isfinite(threshold)) marker = cff::plot::Marker{threshold, "threshold"};
    cff::plot::write_png(out_dir + "/ood.png",
                         cff::plot::histogram_chart("Free energy U(x): Fashion-MNIST test vs out-of-distribution sets",
                                                    "U(x) = -logsumexp f(x)  (higher = less like the training data)",
                                                    histograms, 60, marker, {800, 440}));
    std::printf("   energy histograms -> %s/ood.png\n", out_dir.c_str());
#endif

    // 3. Generate one row per class.
    const std::vector<int64_t> chw = {model.channels(), model.height(), model.width()};
    auto samples = cff::data::class_samples(f, meta.schedule, model.num_classes(), 8, chw,
                                            cff::CentripetalDefaults::steps, 2026, device);
    const auto grid_path = out_dir + "/samples.png";
    cff::data::write_png(grid_path, cff::data::make_grid(samples, 8, 3));
    auto sample_logits = cff::data::batched_logits(f, samples, device);
    auto requested = torch::arange(model.num_classes(), torch::kLong).repeat_interleave(8);
    std::printf("\n3. generate: 8 samples per class, %lld centripetal steps, %lld corrector step(s) after each but the last -> %s\n",
                static_cast<long long>(cff::CentripetalDefaults::steps),
                static_cast<long long>(cff::CentripetalDefaults::corrector_steps), grid_path.c_str());
    std::printf("   the model itself classifies %.1f%% of them as the requested class\n",
                100 * cff::data::accuracy(sample_logits, requested));
    print_ascii(samples[8 * 1], "   a generated '" + meta.labels[1] + "':");

    // 4. Denoise.
    auto clean = x.slice(0, 0, 200);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
    const double sigma = 50.0 / 127.5;  // sigma 50 in 0..255 units
    auto noisy = (clean + sigma * torch::randn(clean.sizes(), gen));
    auto sigma_hat = cff::estimate_noise_sigma(noisy);
    auto restored = cff::denoise(f, meta.schedule, noisy.to(device), sigma_hat, {}).to(torch::kCPU);
    std::printf("\n4. denoise: 200 test images with Gaussian noise sigma 50/255 (estimated %.1f/255)\n",
                sigma_hat.mean().item<double>() * 127.5);
    std::printf("   PSNR noisy %.2f dB -> restored %.2f dB\n", psnr(noisy.clamp(-1, 1), clean), psnr(restored, clean));
    auto pairs = torch::cat({clean.slice(0, 0, 8), noisy.slice(0, 0, 8), restored.slice(0, 0, 8)});
    cff::data::write_png(out_dir + "/denoise.png", cff::data::make_grid(pairs, 8, 3));
    std::printf("   clean / noisy / restored rows -> %s/denoise.png\n", out_dir.c_str());
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "cff-demo: error: %s\n", e.what());
    return 1;
  }
}
