#include "fixture.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include <ATen/CPUGeneratorImpl.h>
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "cff/cff.h"
#include "data/datasets.h"

namespace cff_gst_test {
namespace {

constexpr int64_t kTrainImages = 4000;
constexpr int64_t kSteps = 120;
constexpr int64_t kBatch = 64;
constexpr int64_t kCalibrationImages = 1000;  // test images [0, 1000): calibration
constexpr int64_t kSampleImages = 100;        // test images [1000, 1100): the samples

TestModel train() {
  namespace fs = std::filesystem;
  TestModel model;
  char pattern[] = "/tmp/cff-gst-test-XXXXXX";
  if (!::mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
  model.directory = pattern;
  model.path = model.directory + "/fashion.cff";
  static std::string cleanup_dir = model.directory;
  std::atexit([] { std::error_code ignored; fs::remove_all(cleanup_dir, ignored); });

  const auto folder = cff::data::fashion_mnist_dir();
  auto test_images = cff::data::read_idx_images(folder + "/t10k-images-idx3-ubyte.gz")
                         .slice(0, 0, kCalibrationImages + kSampleImages);
  auto test_labels = cff::data::read_idx_labels(folder + "/t10k-labels-idx1-ubyte.gz")
                         .slice(0, 0, kCalibrationImages + kSampleImages);
  auto normalise = [](const torch::Tensor &u8) { return u8.to(torch::kFloat32).div(127.5).sub(1.0); };

  // One thread: on a shared, loaded CPU two OpenMP threads spin at barriers and run several times slower.
  cff::set_threads(1);
  // CFF_GST_TEST_MODEL names a model file to reuse (written by the first run that trains it), so
  // slow runs such as valgrind's skip training.
  const char *reuse = std::getenv("CFF_GST_TEST_MODEL");
  if (reuse && *reuse && fs::exists(reuse)) {
    fs::copy_file(reuse, model.path, fs::copy_options::overwrite_existing);
    const auto metadata = cff::read_model_metadata(model.path);
    model.labels = metadata.labels;
    model.threshold = metadata.ood.threshold("energy").value();
  } else {
    auto train_images =
        cff::data::read_idx_images(folder + "/train-images-idx3-ubyte.gz").slice(0, 0, kTrainImages);
    auto train_labels =
        cff::data::read_idx_labels(folder + "/train-labels-idx1-ubyte.gz").slice(0, 0, kTrainImages);
    torch::manual_seed(7);
    cff::NetworkConfig config;
    config.widths = {16, 32};
    config.groups = 4;
    cff::Classifier net(config);
    cff::LogitsFunction f = [net](const torch::Tensor &x) mutable { return net->forward(x); };
    torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(3e-3));
    auto generator = at::make_generator<at::CPUGeneratorImpl>(11);
    cff::CosineSchedule schedule;
    const auto start = std::chrono::steady_clock::now();
    auto x_train = normalise(train_images);
    for (int64_t step = 0; step < kSteps; ++step) {
      auto index = torch::randint(0, kTrainImages, {kBatch}, generator, torch::kLong);
      auto x = x_train.index_select(0, index);
      auto y = train_labels.index_select(0, index);
      // The CFF loss, not cross-entropy: trained with CE alone (or CE first), a net of this size gives
      // uniform noise a *lower* free energy than the data (measured: 0% of noise frames flagged).
      // 120 steps reach only ~45% accuracy; the tests compare the element with libcff, not with labels.
      auto terms = cff::cff_loss(f, x, y, schedule, cff::CffLossOptions{}, generator);
      optimizer.zero_grad();
      terms.total.backward();
      optimizer.step();
    }
    model.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    net->eval();
    cff::freeze(*net);

    cff::ModelMetadata metadata;
    metadata.network = config;
    metadata.labels = cff::data::fashion_mnist_classes();
    metadata.normalization.mean = {0.5};
    metadata.normalization.std = {0.5};
    {
      // Every OOD score, fitted on the training images and calibrated on test images; energy stays the
      // recommended one.
      cff::Model fitted;
      fitted.metadata = metadata;
      fitted.network = net;
      const auto train_in = fitted.ood_inputs(x_train, /*everything=*/true);
      const auto calib_in = fitted.ood_inputs(normalise(test_images.slice(0, 0, kCalibrationImages)), true);
      metadata.ood = cff::OodDetector::fit(train_in, train_labels, 10, calib_in, {});
    }
    cff::save_model(model.path, net, metadata);
    model.labels = metadata.labels;
    model.threshold = metadata.ood.threshold("energy").value();
    if (reuse && *reuse) fs::copy_file(model.path, reuse, fs::copy_options::overwrite_existing);
  }

  // References through libcff's own loader and forward pass, on the same uint8 pixels.
  auto loaded = cff::load_model(model.path);
  auto samples = test_images.slice(0, kCalibrationImages).contiguous();
  auto sample_labels = test_labels.slice(0, kCalibrationImages);
  torch::InferenceMode guard;
  auto logits = loaded.logits_function()(normalise(samples)).to(torch::kFloat64);
  auto energy = cff::free_energy(logits);
  auto [confidence, predicted] = cff::class_posterior(logits).max(1);
  int correct = 0;
  for (int64_t i = 0; i < samples.size(0); ++i) {
    Sample s;
    const auto *p = samples[i].data_ptr<uint8_t>();
    s.pixels.assign(p, p + kSide * kSide);
    s.label = static_cast<int>(sample_labels[i].item<int64_t>());
    s.reference_class = static_cast<int>(predicted[i].item<int64_t>());
    s.reference_confidence = confidence[i].item<double>();
    s.reference_energy = energy[i].item<double>();
    correct += s.label == s.reference_class;
    model.samples.push_back(std::move(s));
  }
  model.accuracy = static_cast<double>(correct) / static_cast<double>(model.samples.size());
  std::printf("[fixture] trained %lld steps in %.1f s: accuracy %.2f on %zu held-out images, threshold %.3f\n",
              static_cast<long long>(kSteps), model.train_seconds, model.accuracy, model.samples.size(),
              model.threshold);
  return model;
}

}  // namespace

const TestModel &test_model() {
  static const TestModel model = train();
  return model;
}

const std::string &colour_model_path() {
  static const std::string path = [] {
    const std::string file = test_model().directory + "/colour.cff";
    torch::manual_seed(3);
    cff::NetworkConfig config;
    config.channels = 3;
    config.height = 12;
    config.width = 16;
    config.widths = {8};
    config.groups = 4;
    cff::Classifier net(config);
    net->eval();
    cff::freeze(*net);
    cff::ModelMetadata metadata;
    metadata.network = config;
    for (int i = 0; i < 10; ++i) metadata.labels.push_back("colour" + std::to_string(i));
    metadata.normalization.mean = {0.5, 0.5, 0.5};
    metadata.normalization.std = {0.5, 0.5, 0.5};
    cff::save_model(file, net, metadata);
    return file;
  }();
  return path;
}

void ensure_gst() {
  static std::once_flag once;
  std::call_once(once, [] {
    gst_init(nullptr, nullptr);
    // The test environment hides the system plugins (so an installed cff plugin cannot shadow the
    // build's); load the few stock ones the pipelines use by file.
    for (const char *name : {"coreelements", "videotestsrc", "app"}) {
      const std::string file = std::string(CFF_GST_SYSTEM_PLUGINS_DIR) + "/libgst" + name + ".so";
      if (gst_registry_find_plugin(gst_registry_get(), name)) continue;
      GError *error = nullptr;
      if (GstPlugin *plugin = gst_plugin_load_file(file.c_str(), &error)) {
        gst_object_unref(plugin);
      } else {
        std::fprintf(stderr, "cannot load %s: %s\n", file.c_str(), error ? error->message : "?");
        g_clear_error(&error);
      }
    }
  });
}

std::string temporary_path(const std::string &name) { return test_model().directory + "/" + name; }

int state_cycles(int fallback) {
  const char *env = std::getenv("CFF_STATE_CYCLES");
  if (!env || !*env) return fallback;
  const int cycles = std::atoi(env);
  return cycles > 0 ? cycles : fallback;
}

namespace {

// VmRSS of this process in kB (0 if /proc cannot tell).
long resident_kb() {
  std::FILE *status = std::fopen("/proc/self/status", "r");
  if (!status) return 0;
  char line[256];
  long kb = 0;
  while (std::fgets(line, sizeof line, status)) {
    if (std::sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  }
  std::fclose(status);
  return kb;
}

}  // namespace

void cycle_states(const std::string &pipeline_description, int cycles) {
  GstElement *pipeline = gst_parse_launch(pipeline_description.c_str(), nullptr);
  ASSERT_NE(pipeline, nullptr);
  // CFF_STATE_RSS=1: the resident set before the first cycle, every 100 cycles and after the last
  // (tools/stress.sh reads these lines to check that memory stays flat).
  const char *rss_env = std::getenv("CFF_STATE_RSS");
  const bool log_rss = rss_env && *rss_env && std::string(rss_env) != "0";
  const auto log = [&](int cycle) {
    if (log_rss) std::printf("[ rss      ] cycle %d: VmRSS %ld kB\n", cycle, resident_kb());
    std::fflush(stdout);
  };
  // The pipeline flushes its bus on the way to NULL, so errors are looked for in every cycle.
  GstBus *bus = gst_element_get_bus(pipeline);
  for (int i = 0; i < cycles; ++i) {
    if (i % 100 == 0) log(i);
    ASSERT_NE(gst_element_set_state(pipeline, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE) << "cycle " << i;
    ASSERT_EQ(gst_element_get_state(pipeline, nullptr, nullptr, 20 * GST_SECOND), GST_STATE_CHANGE_SUCCESS)
        << "cycle " << i;
    if (GstMessage *error = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
      GError *e = nullptr;
      gst_message_parse_error(error, &e, nullptr);
      ADD_FAILURE() << "cycle " << i << ": " << (e ? e->message : "error");
      g_clear_error(&e);
      gst_message_unref(error);
    }
    ASSERT_EQ(gst_element_set_state(pipeline, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS) << "cycle " << i;
  }
  log(cycles);
  EXPECT_EQ(gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR), nullptr);
  gst_object_unref(bus);
  gst_object_unref(pipeline);
}

}  // namespace cff_gst_test
