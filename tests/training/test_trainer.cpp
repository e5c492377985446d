// cff-train end to end on a small slice of Fashion-MNIST: loss falls, resume equals an
// uninterrupted run bit for bit, the export reproduces its recorded accuracy, bad data fails clearly.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "cff/model_file.h"
#include "data/datasets.h"
#include "fuzz/tiny_network.h"
#include "data/evaluation.h"
#include "support/files.h"
#include "training/trainer.h"

namespace fs = std::filesystem;
using cff::data::DatasetError;

namespace {

void write_u32(std::ofstream &out, uint32_t v) {
  const unsigned char b[4] = {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16),
                              static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
  out.write(reinterpret_cast<const char *>(b), 4);
}

void write_idx_images(const std::string &path, const torch::Tensor &images) {
  std::ofstream out(path, std::ios::binary);
  write_u32(out, 0x00000803);
  write_u32(out, static_cast<uint32_t>(images.size(0)));
  write_u32(out, static_cast<uint32_t>(images.size(2)));
  write_u32(out, static_cast<uint32_t>(images.size(3)));
  auto c = images.contiguous();
  out.write(reinterpret_cast<const char *>(c.data_ptr<uint8_t>()), c.numel());
}

void write_idx_labels(const std::string &path, const torch::Tensor &labels) {
  std::ofstream out(path, std::ios::binary);
  write_u32(out, 0x00000801);
  write_u32(out, static_cast<uint32_t>(labels.size(0)));
  auto c = labels.to(torch::kUInt8).contiguous();
  out.write(reinterpret_cast<const char *>(c.data_ptr<uint8_t>()), c.numel());
}

// The metadata of a tiny model of 8x8 grey images, one class per label.
cff::ModelMetadata tiny_metadata(const std::vector<std::string> &labels) {
  cff::ModelMetadata meta;
  meta.network.channels = 1;
  meta.network.height = meta.network.width = 8;
  meta.network.num_classes = static_cast<int64_t>(labels.size());
  meta.network.widths = {8};
  meta.network.groups = 4;
  meta.labels = labels;
  meta.normalization.mean = {0.5};
  meta.normalization.std = {0.5};
  return meta;
}

class Trainer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("cff_trainer_" + std::to_string(::getpid()));
    data_ = root_ / "fashion-slice";
    fs::create_directories(data_);
    auto train = cff::data::load_idx_folder(cff::data::fashion_mnist_dir(), "train");
    auto test = cff::data::load_idx_folder(cff::data::fashion_mnist_dir(), "test");
    write_idx_images((data_ / "train-images-idx3-ubyte").string(), train.images.slice(0, 0, 1400));
    write_idx_labels((data_ / "train-labels-idx1-ubyte").string(), train.labels.slice(0, 0, 1400));
    write_idx_images((data_ / "t10k-images-idx3-ubyte").string(), test.images.slice(0, 0, 300));
    write_idx_labels((data_ / "t10k-labels-idx1-ubyte").string(), test.labels.slice(0, 0, 300));
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static cff::train::TrainOptions small_options(const std::string &run) {
    cff::train::TrainOptions o;
    o.data = data_.string();
    o.run_dir = (root_ / run).string();
    // The smallest network that still learns the CFF objective in a few epochs: at widths {8, 16}
    // the force term swamps the cross-entropy and accuracy stays at chance.
    o.network.widths = {16, 32, 64};
    o.network.groups = 8;
    o.epochs = 3;
    o.batch = 32;
    o.lr = 5e-3;
    // About 100 steps: the force term needs all of them, so these mechanics tests keep the paper's
    // schedule (force from the first step). CE first is for full-length runs (the own-images test).
    o.warmup_accuracy = 0;
    o.force_warmup = 0;
    // With the force from the first step the paper's weight and process: at the recipe's beta 3 the force
    // swamps the cross-entropy of this small network for all of these ~100 steps, and with the centred
    // process at lr 5e-3 one of these runs fell back to chance (CE first is what lets the recipe learn).
    o.loss.beta = 1;
    o.centre = "zero";
    o.augment = "none";
    o.holdout = 200;
    o.threads = 1;
    o.device = "cpu";
    o.samples_every = 0;
    o.ood_sets = {"uniform"};
    o.progress_seconds = 1e9;
    return o;
  }

  static std::vector<nlohmann::json> metrics(const std::string &run) {
    std::ifstream in(root_ / run / "metrics.jsonl");
    std::vector<nlohmann::json> lines;
    std::string line;
    while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }

  // A metrics object without what the clock decides (durations, speeds).
  static nlohmann::json without_timings(nlohmann::json j) {
    for (const char *key : {"epoch_seconds", "images_per_second"}) j.erase(key);
    return j;
  }

  static inline fs::path root_, data_;
};

}  // namespace

TEST_F(Trainer, LossFallsAndExportReproducesItsAccuracy) {
  auto o = small_options("plain");
  o.samples_every = 3;
  o.sample_steps = 5;
  const auto final_metrics = cff::train::train(o);
  const auto lines = metrics("plain");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_LT(lines[2]["train_loss"].get<double>(), 0.9 * lines[0]["train_loss"].get<double>());
  EXPECT_GT(lines[2]["train_accuracy"].get<double>(), lines[0]["train_accuracy"].get<double>() + 0.1);
  EXPECT_TRUE(fs::exists(lines[2]["sample_grid"].get<std::string>()));

  auto model = cff::load_model(o.run_dir + "/model.cff");
  auto test = cff::data::load_idx_folder(data_.string(), "test");
  auto logits = cff::data::batched_logits(model.logits_function(), test.normalized(), model.device);
  const double acc = cff::data::accuracy(logits, test.labels);
  EXPECT_DOUBLE_EQ(acc, model.metadata.metrics["test_accuracy"].get<double>());
  EXPECT_DOUBLE_EQ(acc, final_metrics["test_accuracy"].get<double>());
  EXPECT_GT(acc, 0.3);  // 10 classes: chance is 0.1
  // Every score fitted and calibrated, and one recommended from the run's OOD sets.
  EXPECT_EQ(model.metadata.ood.available(), cff::ood_score_names());
  for (const auto &name : cff::ood_score_names()) EXPECT_TRUE(model.metadata.ood.threshold(name).has_value()) << name;
  EXPECT_EQ(model.metadata.metrics["ood_selection"]["recommended"], model.metadata.ood.recommended());
  EXPECT_EQ(model.metadata.labels.size(), 10u);
  EXPECT_EQ(model.metadata.labels[9], "Ankle boot");
  EXPECT_FALSE(model.metadata.provenance["dataset_checksum_crc32"].get<std::string>().empty());
}

// The defaults scale with the set: Fashion-MNIST keeps the recipe's 16 epochs and 2000 held-out
// images; a small set trains for at least --min-steps steps and holds out a tenth (at least 200).
TEST(TrainingPlan, DefaultsScaleWithTheSetSize) {
  cff::train::TrainOptions o;
  auto p = cff::train::plan_training(o, 60000);
  EXPECT_EQ(p.holdout, 2000);
  EXPECT_EQ(p.epochs, 16);
  EXPECT_EQ(p.steps_per_epoch, (58000 + 127) / 128);
  p = cff::train::plan_training(o, 4000);
  EXPECT_EQ(p.holdout, 400);
  EXPECT_EQ(p.steps_per_epoch, 29);  // 3600 images
  EXPECT_EQ(p.epochs, (o.min_steps + 28) / 29);
  EXPECT_GE(p.epochs * p.steps_per_epoch, o.min_steps);
  EXPECT_NE(p.epochs_reason.find("--min-steps"), std::string::npos) << p.epochs_reason;
  EXPECT_EQ(cff::train::plan_training(o, 1000).holdout, 200);
  EXPECT_EQ(cff::train::plan_training(o, 500).holdout, 100);  // at most a fifth
  o.holdout = 300;
  EXPECT_EQ(cff::train::plan_training(o, 4000).holdout, 300);
  o.holdout = 0;
  EXPECT_EQ(cff::train::plan_training(o, 4000).holdout, 0);
  o.epochs = 3;
  EXPECT_EQ(cff::train::plan_training(o, 4000).epochs, 3);
  o.epochs = 0;
  o.limit = 1000;
  EXPECT_EQ(cff::train::plan_training(o, 60000).steps_per_epoch, 8);
}

// The crop shifts each image by up to 2 pixels and fills the border from the image itself: a plain
// coloured image stays that colour (a fixed pad colour would put strips of it on it), an image is moved, not
// changed, away from its border, and "none" leaves the batch alone.
TEST(Augment, CropShiftsAndMirrorsTheBorderInsteadOfPaddingWithAColour) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto plain = torch::full({16, 3, 12, 10}, 0.4f);
  EXPECT_TRUE(torch::equal(cff::train::augment_batch(plain, "crop", gen), plain));
  const auto x = torch::rand({64, 1, 12, 10}, gen) * 2 - 1;
  const auto out = cff::train::augment_batch(x, "crop", gen);
  ASSERT_EQ(out.sizes(), x.sizes());
  int64_t moved = 0;
  for (int64_t i = 0; i < x.size(0); ++i) {
    bool found = false;
    for (int64_t dy = -2; dy <= 2 && !found; ++dy) {
      for (int64_t dx = -2; dx <= 2 && !found; ++dx) {
        // The inside (2 pixels from each edge) is the input's, shifted by (dy, dx).
        found = torch::equal(out[i].slice(1, 2, 10).slice(2, 2, 8), x[i].slice(1, 2 + dy, 10 + dy).slice(2, 2 + dx, 8 + dx));
        if (found && (dy != 0 || dx != 0)) ++moved;
      }
    }
    EXPECT_TRUE(found) << "image " << i << " is not a shift of its input";
  }
  EXPECT_GT(moved, 48);  // 24 of 25 shifts move the image
  EXPECT_TRUE(torch::equal(cff::train::augment_batch(x, "none", gen), x));
  const auto flipped = cff::train::augment_batch(x, "flip", gen);
  for (int64_t i = 0; i < x.size(0); ++i) {
    EXPECT_TRUE(torch::equal(flipped[i], x[i]) || torch::equal(flipped[i], x[i].flip({2})));
  }
}

// The near-OOD built-ins: shapes, ranges and what each one is; folder sets are named after what they are.
TEST(OodSets, NearOodBuiltInsAreWhatTheySay) {
  auto x = torch::rand({50, 3, 20, 24}) * 2 - 1;
  for (const auto &name : cff::data::builtin_ood_sets()) {
    auto set = cff::data::make_ood_set(name, x, 40, 5);
    ASSERT_EQ(set.sizes(), (std::vector<int64_t>{40, 3, 20, 24})) << name;
    EXPECT_GE(set.min().item<float>(), -1.0f - 1e-5f) << name;
    EXPECT_LE(set.max().item<float>(), 1.0f + 1e-5f) << name;
    EXPECT_TRUE(torch::equal(set, cff::data::make_ood_set(name, x, 40, 5))) << name << " is not repeatable";
  }
  auto constant = cff::data::make_ood_set("constant", x, 40, 5);
  EXPECT_LT((constant - constant.mean({2, 3}, true)).abs().max().item<float>(), 1e-6f);
  EXPECT_GT(constant.mean({2, 3}).std().item<float>(), 0.2f);  // levels differ between frames
  auto low = cff::data::make_ood_set("low-contrast", x, 40, 5);
  EXPECT_NEAR(low.std().item<float>() / x.slice(0, 0, 40).std().item<float>(), 0.3f, 0.03f);
  auto blur = cff::data::make_ood_set("blur", x, 40, 5);
  EXPECT_LT(blur.std().item<float>(), 0.5f * x.std().item<float>());
  EXPECT_NEAR(blur.mean().item<float>(), x.slice(0, 0, 40).mean().item<float>(), 0.02f);
  // Glyphs: light strokes on a dark background, and each image has some stroke.
  auto glyphs = cff::data::make_ood_set("glyphs", x.slice(1, 0, 1), 30, 5);
  EXPECT_LT(glyphs.median().item<float>(), -0.4f);
  EXPECT_TRUE((glyphs.flatten(1).amax(1) > 0.0f).all().item<bool>());
  EXPECT_FALSE(torch::equal(glyphs[0], glyphs[1]));

  EXPECT_EQ(cff::data::ood_set_label("glyphs"), "glyphs");
  EXPECT_EQ(cff::data::ood_set_label("/data/digits/test"), "digits/test");
  EXPECT_EQ(cff::data::ood_set_label("/data/digits/test/"), "digits/test");
  EXPECT_EQ(cff::data::ood_set_label("/data/mnist"), "mnist");
  EXPECT_EQ(cff::data::ood_set_label("clips/vtest.avi"), "vtest.avi");
}

TEST(TrainingPlan, NearChance) {
  EXPECT_TRUE(cff::train::near_chance(0.12, 10));
  EXPECT_FALSE(cff::train::near_chance(0.2, 10));
  EXPECT_TRUE(cff::train::near_chance(0.55, 2));
  EXPECT_FALSE(cff::train::near_chance(0.7, 2));
}

// Shuffled labels cannot be learnt: the chance-level warning is printed and recorded in the metrics.
// The same run on the true labels learns and gives no warning.
TEST_F(Trainer, ChanceLevelWarningFiresOnShuffledLabels) {
  const auto shuffled = root_ / "fashion-shuffled";
  fs::create_directories(shuffled);
  for (const char *name : {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
    fs::copy_file(data_ / name, shuffled / name, fs::copy_options::overwrite_existing);
  }
  auto labels = cff::data::read_idx_labels((data_ / "train-labels-idx1-ubyte").string());
  write_idx_labels((shuffled / "train-labels-idx1-ubyte").string(),
                   labels.index_select(0, torch::randperm(labels.size(0), torch::kLong)));
  for (const bool shuffle : {true, false}) {
    const std::string run = shuffle ? "shuffled" : "true-labels";
    auto o = small_options(run);
    if (shuffle) o.data = shuffled.string();
    o.centre = "data";  // the recipe's process: it learns too, and its centre is the data's mean brightness
    o.batch = 16;  // 1200 images: 75 steps an epoch, past the check's 200 steps in the third
    o.eval_every = 0;
    cff::train::train(o);
    const auto last = metrics(run).back();
    ASSERT_GE(last["steps"].get<int64_t>(), cff::train::chance_check_steps);
    EXPECT_EQ(last.contains("warnings"), shuffle) << run << ": " << last.dump();
    if (shuffle && last.contains("warnings")) {
      EXPECT_NE(last["warnings"][0].get<std::string>().find("near chance"), std::string::npos);
    }
  }
  const auto centre = cff::read_model_metadata((root_ / "true-labels" / "model.cff").string()).schedule.centre();
  const auto train = cff::data::load_idx_folder(data_.string(), "train").normalized();
  ASSERT_EQ(centre.size(), 1u);
  EXPECT_NEAR(centre[0], train.mean().item<double>(), 0.02);
  EXPECT_LT(centre[0], -0.2);
}

TEST_F(Trainer, ResumeEqualsUninterruptedRunBitForBit) {
  auto whole = small_options("whole");
  whole.epochs = 2;
  cff::train::train(whole);

  auto parts = small_options("parts");
  parts.epochs = 2;
  parts.stop_after = 1;
  const auto stopped = cff::train::train(parts);
  EXPECT_TRUE(stopped.value("stopped", false));
  EXPECT_FALSE(fs::exists(parts.run_dir + "/model.cff"));
  // A run killed after writing epoch 2's metrics line (and half of another) but before its checkpoint:
  // the resume trains epoch 2 again and the file ends with one line per epoch.
  {
    std::ofstream out(parts.run_dir + "/metrics.jsonl", std::ios::app);
    out << nlohmann::json{{"epoch", 2}, {"train_loss", 9.0}}.dump() << "\n{\"epoch\": 3, \"tra";
  }
  // ... and killed in the middle of a checkpoint write (issue 19, defect 3): its temporary file is removed.
  std::ofstream(parts.run_dir + "/checkpoint.pt.tmp.99999") << "half a checkpoint";
  parts.stop_after = 0;
  parts.resume = true;
  cff::train::train(parts);
  EXPECT_FALSE(fs::exists(parts.run_dir + "/checkpoint.pt.tmp.99999"));
  const auto lines = metrics("parts");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["epoch"], 1);
  EXPECT_EQ(lines[1]["epoch"], 2);
  EXPECT_NE(lines[1]["train_loss"], 9.0);
  // Every figure equals the uninterrupted run's, but the clock's.
  const auto whole_lines = metrics("whole");
  ASSERT_EQ(whole_lines.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(without_timings(lines[i]), without_timings(whole_lines[i])) << i;

  auto a = cff::load_model(whole.run_dir + "/model.cff");
  const auto expect_same_model = [&](const std::string &path) {
    auto b = cff::load_model(path);
    auto pa = a.network->named_parameters();
    auto pb = b.network->named_parameters();
    ASSERT_EQ(pa.size(), pb.size());
    for (const auto &item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
    EXPECT_EQ(without_timings(b.metadata.metrics), without_timings(a.metadata.metrics));
    EXPECT_EQ(b.metadata.ood.to_json(), a.metadata.ood.to_json());
    EXPECT_EQ(b.metadata.provenance["dataset_checksum_crc32"], a.metadata.provenance["dataset_checksum_crc32"]);
  };
  expect_same_model(parts.run_dir + "/model.cff");
  // Killed after the last checkpoint, before the export: the resume exports the same model, with the
  // last epoch's whole metrics line (not a re-evaluated accuracy alone).
  fs::remove(parts.run_dir + "/model.cff");
  cff::train::train(parts);
  expect_same_model(parts.run_dir + "/model.cff");
}

// Robust training (issue 20): each mode trains with the CFF terms; its term is in the metrics, and the
// run's options (and so a resume's check) carry it.
TEST_F(Trainer, RobustTermsTrainWithTheForceTerms) {
  for (const std::string mode : {"pgd", "trades", "weat"}) {
    auto o = small_options("robust-" + mode);
    o.epochs = 1;
    o.limit = 256;
    o.network.widths = {8, 16};
    o.network.groups = 4;
    o.robust.mode = mode;
    o.robust.steps = 2;
    o.robust.eps = 0.1;
    const auto m = cff::train::train(o);
    EXPECT_GT(m["train_robust"].get<double>(), 0.0) << mode;
    EXPECT_GT(m["train_force"].get<double>(), 0.0) << mode;
    const auto options = cff::read_model_metadata(o.run_dir + "/model.cff").provenance["options"];
    EXPECT_EQ(options["robust"], mode);
    EXPECT_EQ(options["robust_steps"], 2);
  }
}

// Divergence stops with a clear message and leaves no model (issue 19).
TEST_F(Trainer, DivergenceStopsWithAClearMessageAndExportsNothing_n) {
  auto o = small_options("diverge");
  o.epochs = 1;
  o.lr = 1e12;
  try {
    cff::train::train(o);
    FAIL() << "training at lr 1e12 did not diverge";
  } catch (const std::runtime_error &e) {
    EXPECT_NE(std::string(e.what()).find("training diverged"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(o.run_dir + "/model.cff"));
  EXPECT_FALSE(fs::exists(cff::train::checkpoint_path(o.run_dir)));
}

TEST_F(Trainer, CorruptCheckpointIsRefused_n) {
  auto o = small_options("corrupt-ckpt");
  o.epochs = 2;
  o.stop_after = 1;
  cff::train::train(o);
  const auto ckpt = cff::train::checkpoint_path(o.run_dir);
  // Other options than the checkpoint's: the message names the option and both values (issue 19, defect 9).
  auto other = o;
  other.resume = true;
  other.lr = 1e-3;
  try {
    cff::train::train(other);
    FAIL() << "resumed with another learning rate";
  } catch (const std::runtime_error &e) {
    EXPECT_NE(std::string(e.what()).find("different options: lr: 0.005 in the checkpoint, 0.001 now ("),
              std::string::npos) << e.what();
  }
  {
    std::fstream f(ckpt, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  o.resume = true;
  o.stop_after = 0;
  try {
    cff::train::train(o);
    FAIL() << "resumed from a corrupt checkpoint";
  } catch (const std::runtime_error &e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint is corrupt"), std::string::npos) << e.what();
  }
}

TEST_F(Trainer, CorruptDatasetFilesGiveClearErrors_n) {
  const auto bad = root_ / "bad";
  fs::create_directories(bad);
  const auto images = (bad / "train-images-idx3-ubyte").string();
  auto expect_error = [](const std::function<void()> &load, const std::vector<std::string> &parts) {
    try {
      load();
      ADD_FAILURE() << "no error";
    } catch (const DatasetError &e) {
      for (const auto &p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  };
  // Truncated: header says 100 images, file holds 10 and a half.
  {
    std::ofstream out(images, std::ios::binary);
    write_u32(out, 0x803);
    write_u32(out, 100);
    write_u32(out, 28);
    write_u32(out, 28);
    out << std::string(28 * 28 * 10 + 100, '\0');
  }
  expect_error([&] { cff::data::read_idx_images(images); }, {images, "truncated at record 10 of 100"});
  // Wrong magic.
  { std::ofstream(images, std::ios::binary) << "GIF89a, certainly not an IDX file"; }
  expect_error([&] { cff::data::read_idx_images(images); }, {images, "bad magic"});
  // Labels file where images were expected.
  write_idx_labels(images, torch::zeros({5}, torch::kLong));
  expect_error([&] { cff::data::read_idx_images(images); }, {"has 1 dimensions, expected 3"});
  // Image and label counts differ; then an out-of-range label.
  write_idx_images(images, torch::zeros({5, 1, 28, 28}, torch::kUInt8));
  write_idx_labels((bad / "train-labels-idx1-ubyte").string(), torch::zeros({4}, torch::kLong));
  expect_error([&] { cff::data::load_idx_folder(bad.string(), "train"); }, {"5 images but 4 labels"});
  write_idx_labels((bad / "train-labels-idx1-ubyte").string(), torch::tensor({0, 1, 12, 3, 4}, torch::kLong));
  expect_error([&] { cff::data::load_idx_folder(bad.string(), "train"); }, {"record 2 has label 12"});
  // Missing files and folders.
  expect_error([&] { cff::data::load_idx_folder(bad.string(), "test"); }, {"t10k-images-idx3-ubyte"});
  expect_error([&] { cff::data::load_dataset((root_ / "nowhere").string(), "train"); }, {"nowhere", "not found"});
  // CIFAR-10 batch whose size is not a whole number of records.
  { std::ofstream(bad / "test_batch.bin", std::ios::binary) << std::string(3073 * 2 + 5, '\1'); }
  expect_error([&] { cff::data::load_cifar10(bad.string(), "test"); }, {"test_batch.bin", "truncated at record 2"});
}

// --init (issue 20: robust fine-tuning of a trained model): the run takes the model's network, whatever the
// network options say, and starts from its weights; a resume needs the same --init; a model of another
// input or class count is refused by name.
TEST_F(Trainer, InitStartsFromTheModelsNetworkAndWeights) {
  auto base = small_options("init-base");
  base.epochs = 1;
  base.limit = 256;
  base.network.widths = {8, 16};
  base.network.groups = 4;
  cff::train::train(base);
  const auto base_path = base.run_dir + "/model.cff";
  auto a = cff::load_model(base_path);

  auto tuned = small_options("init-tuned");  // widths {16, 32, 64} asked: the model's {8, 16} win
  tuned.init = base_path;
  tuned.epochs = 1;
  tuned.limit = 256;
  tuned.lr = 1e-12;  // the weights barely move: the export must be the initial model's
  tuned.ema = 0;
  const auto m = cff::train::train(tuned);
  auto b = cff::load_model(tuned.run_dir + "/model.cff");
  EXPECT_EQ(b.metadata.network.to_json(), a.metadata.network.to_json());
  auto pa = a.network->named_parameters();
  auto pb = b.network->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto &item : pa) EXPECT_TRUE(torch::allclose(item.value(), pb[item.key()], 0, 1e-6)) << item.key();
  EXPECT_NEAR(m["test_accuracy"].get<double>(), a.metadata.metrics["test_accuracy"].get<double>(), 0.01);
  EXPECT_EQ(b.metadata.provenance["options"]["init"], base_path);

  // A resume without --init is another run's options.
  auto resumed = tuned;
  resumed.init.clear();
  resumed.resume = true;
  try {
    cff::train::train(resumed);
    ADD_FAILURE() << "resume without --init accepted";
  } catch (const std::runtime_error &e) {
    EXPECT_NE(std::string(e.what()).find("init: "), std::string::npos) << e.what();
  }

  // A model for 3 classes of 8x8 images does not fit 10 classes of 28x28.
  const auto meta = tiny_metadata({"a", "b", "c"});
  const auto other_path = (root_ / "other.cff").string();
  cff::save_model(other_path, cff::Classifier(meta.network), meta);
  auto wrong = small_options("init-wrong");
  wrong.init = other_path;
  try {
    cff::train::train(wrong);
    ADD_FAILURE() << "a model of another shape accepted";
  } catch (const std::runtime_error &e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("1x8x8 images in 3 classes"), std::string::npos) << what;
    EXPECT_NE(what.find("1x28x28 images in 10 classes"), std::string::npos) << what;
  }
  wrong.init = (root_ / "missing.cff").string();
  EXPECT_THROW(cff::train::train(wrong), std::exception);
}

// --select pgd exports the evaluated epoch with the highest hold-out PGD accuracy (the earlier on a tie):
// at eps 0.5 no image survives PGD, every epoch scores 0 and epoch 1 is exported, with its own metrics line,
// while the last checkpoint stays the last epoch's. Without --robust, auto exports the last epoch.
TEST_F(Trainer, SelectByPgdExportsTheBestEvaluatedEpoch) {
  auto o = small_options("select");
  o.epochs = 3;
  o.limit = 256;
  o.network.widths = {8, 16};
  o.network.groups = 4;
  o.select = "pgd";
  o.select_images = 50;
  o.robust.eps = 0.5;
  const auto m = cff::train::train(o);
  const auto lines = metrics("select");
  ASSERT_EQ(lines.size(), 3u);
  for (const auto &line : lines) EXPECT_TRUE(line.contains("holdout_pgd_accuracy")) << line.dump();
  EXPECT_EQ(lines[0]["holdout_pgd_accuracy"].get<double>(), 0.0);
  ASSERT_EQ(m["selected"]["epoch"], 1) << m.dump();
  EXPECT_EQ(m["epoch"], 1);
  EXPECT_EQ(m["test_accuracy"], lines[0]["test_accuracy"]);
  EXPECT_EQ(m["selected"]["last_epoch"], 3);
  // The exported weights are epoch 1's: they reproduce its test accuracy.
  auto model = cff::load_model(o.run_dir + "/model.cff");
  auto test = cff::data::load_idx_folder(data_.string(), "test");
  const double acc = cff::data::accuracy(
      cff::data::batched_logits(model.logits_function(), test.normalized(), model.device), test.labels);
  EXPECT_DOUBLE_EQ(acc, lines[0]["test_accuracy"].get<double>());
  EXPECT_NE(lines[0]["test_accuracy"], lines[2]["test_accuracy"]);
  EXPECT_EQ(model.metadata.provenance["options"]["select"], "pgd");

  auto plain = small_options("select-auto");
  plain.epochs = 1;
  plain.limit = 64;
  plain.network.widths = {8, 16};
  plain.network.groups = 4;
  const auto pm = cff::train::train(plain);
  EXPECT_FALSE(pm.contains("holdout_pgd_accuracy"));
  EXPECT_FALSE(pm.contains("selected"));
  EXPECT_EQ(cff::read_model_metadata(plain.run_dir + "/model.cff").provenance["options"]["select"], "last");
}

// `cff-train` with no loss or optimiser options trains with exactly the defaults its --help prints
// (the recipe's force fraction 0.5 once stayed at the library's 1.0 while the help said 0.5).
TEST_F(Trainer, DefaultsThatHelpPrintsAreTheOnesThatTrain) {
  const char *build = std::getenv("CFF_BUILD_ROOT");
  ASSERT_NE(build, nullptr) << "run through meson test";
  const std::string exe = std::string(build) + "/training/cff-train";
  const auto help_file = (root_ / "help.txt").string();
  ASSERT_EQ(std::system((exe + " --help > " + help_file).c_str()), 0);
  std::ifstream in(help_file);
  std::map<std::string, std::string> shown;  // option -> the value in its trailing [brackets]
  std::string line;
  while (std::getline(in, line)) {
    const auto dash = line.find("--"), open = line.rfind('['), close = line.rfind(']');
    if (dash == std::string::npos || open == std::string::npos || close < open) continue;
    shown[line.substr(dash + 2, line.find(' ', dash) - dash - 2)] = line.substr(open + 1, close - open - 1);
  }
  const auto run_dir = root_ / "defaults";
  // Only data, size and bookkeeping options: nothing that shapes the loss or the optimiser.
  const std::string args = " --data " + data_.string() + " --out " + run_dir.string() +
                           " --epochs 1 --limit 64 --holdout 50 --eval-limit 50 --samples-every 0 --ood uniform "
                           "--widths 8,16 --threads 1 --device cpu > /dev/null";
  ASSERT_EQ(std::system((exe + args).c_str()), 0);
  const auto options = cff::read_model_metadata((run_dir / "model.cff").string()).provenance["options"];
  const std::map<std::string, std::string> option_key = {
      {"beta", "beta"},         {"gamma", "gamma"},   {"p-uncond", "p_uncond"}, {"force-fraction", "force_fraction"},
      {"lr", "lr"},             {"weight-decay", "weight_decay"}, {"warmup", "warmup"}, {"ema", "ema"},
      {"batch", "batch"},       {"augment", "augment"}, {"objective", "objective"},
      {"warmup-accuracy", "warmup_accuracy"}, {"force-warmup", "force_warmup"}, {"min-steps", "min_steps"},
      {"centre", "centre"}};
  for (const auto &[flag, key] : option_key) {
    ASSERT_TRUE(shown.count(flag)) << "--help shows no default for --" << flag;
    const auto &value = options.at(key);
    if (value.is_string()) {
      EXPECT_EQ(value.get<std::string>(), shown[flag]) << "--" << flag;
    } else {
      EXPECT_DOUBLE_EQ(value.get<double>(), std::stod(shown[flag])) << "--" << flag;
    }
  }
  EXPECT_DOUBLE_EQ(options.at("force_fraction").get<double>(), cff::train::recipe_loss().force_fraction);
  EXPECT_EQ(cff::read_model_metadata((run_dir / "model.cff").string()).schedule.centre().size(), 1u);
  // The paper's process, around 0, is one option away.
  ASSERT_EQ(std::system((exe + " --centre zero" + args).c_str()), 0);
  EXPECT_TRUE(cff::read_model_metadata((run_dir / "model.cff").string()).schedule.centre().empty());
}

TEST_F(Trainer, CommandLineReportsBadInputInOneLine_n) {
  const char *build = std::getenv("CFF_BUILD_ROOT");
  ASSERT_NE(build, nullptr) << "run through meson test";
  const std::string exe = std::string(build) + "/training/cff-train";
  const auto out = (root_ / "cli.txt").string();
  auto run = [&](const std::string &args) {
    const int status = std::system((exe + " " + args + " > " + out + " 2>&1").c_str());
    std::ifstream in(out);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return std::make_pair(WEXITSTATUS(status), text);
  };
  auto [code, text] = run("--help");
  EXPECT_EQ(code, 0);
  EXPECT_NE(text.find("--objective cff|ce"), std::string::npos);
  std::tie(code, text) = run("--epochs two");
  EXPECT_EQ(code, 1);
  EXPECT_EQ(text, "cff-train: error: --epochs: 'two' is not an integer\n");
  std::tie(code, text) = run("--bogus");
  EXPECT_EQ(code, 1);
  EXPECT_NE(text.find("unknown option --bogus"), std::string::npos);
  std::tie(code, text) = run("--data /nonexistent/folder --out " + (root_ / "cli-run").string());
  EXPECT_EQ(code, 1);
  EXPECT_NE(text.find("/nonexistent/folder: dataset folder not found"), std::string::npos) << text;
  std::tie(code, text) = run("--info " + (root_ / "missing.cff").string());
  EXPECT_EQ(code, 1);
  EXPECT_NE(text.find("missing.cff: cannot open"), std::string::npos) << text;
  // Issue 19, defect 9: bad values are refused before the data is read, in one line; an export folder that is
  // not there is said at the start; --info loads the whole file.
  std::tie(code, text) = run("--lr -1 --data /nonexistent/folder");
  EXPECT_EQ(code, 1);
  EXPECT_EQ(text, "cff-train: error: lr must be a positive number, got -1.000000\n");
  std::tie(code, text) = run("--ema 1 --data /nonexistent/folder");
  EXPECT_NE(text.find("ema must be in [0, 1)"), std::string::npos) << text;
  std::tie(code, text) = run("--robust madry --data /nonexistent/folder");
  EXPECT_EQ(code, 1);
  EXPECT_EQ(text, "cff-train: error: robust training: mode must be none, pgd, trades or weat, got 'madry'\n");
  std::tie(code, text) = run("--robust trades --robust-eps 2 --data /nonexistent/folder");
  EXPECT_NE(text.find("eps must be in (0, 1] pixel units"), std::string::npos) << text;
  std::tie(code, text) = run("--centre mean --data /nonexistent/folder");
  EXPECT_EQ(text, "cff-train: error: centre must be data or zero, got 'mean'\n");
  std::tie(code, text) = run("--select best --data /nonexistent/folder");
  EXPECT_EQ(text, "cff-train: error: select must be auto, last or pgd, got 'best'\n");
  std::tie(code, text) = run("--robust pgd --holdout 0 --data /nonexistent/folder");
  EXPECT_NE(text.find("select pgd attacks hold-out images: --holdout 0 leaves none"), std::string::npos) << text;
  std::tie(code, text) = run("--init " + (root_ / "missing.cff").string() + " --data /nonexistent/folder");
  EXPECT_EQ(code, 1);
  EXPECT_NE(text.find("missing.cff: cannot open"), std::string::npos) << text;
  // ... but the run folder, made at the start, is a folder to export into.
  const auto fresh = (root_ / "cli-fresh").string();
  std::tie(code, text) = run("--out " + fresh + " --export " + fresh + "/model.cff --data /nonexistent/folder");
  EXPECT_NE(text.find("/nonexistent/folder: dataset folder not found"), std::string::npos) << text;
  std::tie(code, text) = run("--export /nonexistent/folder/model.cff");
  EXPECT_EQ(code, 1);
  EXPECT_NE(text.find("folder /nonexistent/folder does not exist"), std::string::npos) << text;
  const auto meta = tiny_metadata({"a", "b"});
  const auto config = meta.network;
  auto declared = meta;
  declared.network.widths = {16};  // metadata that reads, weights of another network: only a full load sees it
  const auto mismatched = (root_ / "mismatched.cff").string();
  std::ofstream(mismatched, std::ios::binary) << cff::serialize_model(cff::Classifier(config), declared);
  std::tie(code, text) = run("--info " + mismatched);
  EXPECT_EQ(code, 1) << text;
  EXPECT_NE(text.find("mismatched.cff"), std::string::npos) << text;
}

// Issue 19, defect 5: data without a test split is tested on images kept out of training, not on the training
// images themselves; an empty class folder and a one-class set are refused by name.
TEST_F(Trainer, DataWithoutTestSplitIsTestedOnImagesKeptOutOfTraining) {
  const auto no_test = root_ / "fashion-no-test";
  fs::create_directories(no_test);
  for (const char *name : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"}) {
    fs::copy_file(data_ / name, no_test / name, fs::copy_options::overwrite_existing);
  }
  EXPECT_TRUE(cff::data::has_test_split(data_.string()));
  EXPECT_FALSE(cff::data::has_test_split(no_test.string()));
  auto o = small_options("no-test");
  o.data = no_test.string();
  o.epochs = 1;
  testing::internal::CaptureStdout();
  cff::train::train(o);
  const std::string out = testing::internal::GetCapturedStdout();
  // 1400 images: 140 kept out as the test set, 200 held out for calibration, 1060 trained on.
  EXPECT_NE(out.find("has no test split: 140 of its images are kept out of training"), std::string::npos) << out;
  EXPECT_NE(out.find("1060 training images (200 held out for calibration), test 140 images"), std::string::npos) << out;
}

TEST_F(Trainer, EmptyClassFoldersAndSingleClassSetsAreRefused_n) {
  const auto write_pgm = [](const fs::path &p, int level) {
    std::ofstream out(p, std::ios::binary);
    out << "P5\n8 8\n255\n" << std::string(64, static_cast<char>(level));
  };
  const auto folder = root_ / "images-empty-class";
  fs::create_directories(folder / "a");
  fs::create_directories(folder / "b");
  for (int i = 0; i < 3; ++i) write_pgm(folder / "a" / ("a" + std::to_string(i) + ".pgm"), 40 * i);
  std::string message;
  try {
    cff::data::load_image_folder(folder.string(), 1, 8, 8);
  } catch (const DatasetError &e) {
    message = e.what();
  }
  if (message.find("OpenCV") != std::string::npos) GTEST_SKIP() << "image folders need OpenCV: " << message;
  EXPECT_NE(message.find("images-empty-class/b: class sub-folder has no images"), std::string::npos) << message;

  fs::remove_all(folder / "b");
  auto o = small_options("one-class");
  o.data = folder.string();
  o.network.height = o.network.width = 8;
  try {
    cff::train::train(o);
    ADD_FAILURE() << "a one-class set trained";
  } catch (const std::runtime_error &e) {
    EXPECT_NE(std::string(e.what()).find("only one class ('a'); a classifier needs at least two"), std::string::npos)
        << e.what();
  }
}

// Issue 19, defect 4: a metrics line that does not reach the disk is an error naming the file, not a silent loss.
// A full disk (here: the file size limit, which fails writes the same way) fails a run with the path and the
// reason in one line and keeps the old checkpoint, from which a later resume finishes (issue 19).
TEST_F(Trainer, FullDiskFailsNamingTheFileAndKeepsTheOldCheckpoint_n) {
  const char *build = std::getenv("CFF_BUILD_ROOT");
  ASSERT_NE(build, nullptr) << "run through meson test";
  const auto run_dir = root_ / "full-disk";
  const auto log = (root_ / "full-disk.log").string();
  const std::string train = std::string(build) + "/training/cff-train --data " + data_.string() + " --out " +
                            run_dir.string() + " --epochs 2 --limit 256 --holdout 50 --eval-limit 50 --samples-every 0 "
                            "--ood uniform --widths 8,16 --groups 4 --threads 1 --device cpu";
  ASSERT_EQ(std::system((train + " --stop-after 1 > /dev/null").c_str()), 0);
  const auto checkpoint = cff::train::checkpoint_path(run_dir.string());
  std::ifstream before_in(checkpoint, std::ios::binary);
  const std::string before((std::istreambuf_iterator<char>(before_in)), std::istreambuf_iterator<char>());
  ASSERT_GT(before.size(), 40000u);
  // 32 KiB per file: the metrics line fits, the checkpoint does not.
  const int status = std::system(("bash -c \"trap '' XFSZ; ulimit -f 32; exec " + train + " --resume\" > " + log + " 2>&1").c_str());
  std::ifstream log_in(log);
  const std::string text((std::istreambuf_iterator<char>(log_in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(WEXITSTATUS(status), 1) << text;
  EXPECT_NE(text.find("cff-train: error: " + checkpoint + ": write failed (File too large)"), std::string::npos) << text;
  std::ifstream after_in(checkpoint, std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(after_in)), std::istreambuf_iterator<char>()), before);
  for (const auto &entry : fs::directory_iterator(run_dir)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos) << entry.path();
  }
  EXPECT_EQ(std::system((train + " --resume > /dev/null").c_str()), 0);
  EXPECT_TRUE(fs::exists(run_dir / "model.cff"));
}

TEST(Files, AppendOnAFullDiskFailsNamingThePathAndTheReason_n) {
  try {
    cff::files::append_durably("/dev/full", "{\"epoch\": 1}\n");
    ADD_FAILURE() << "appending to /dev/full succeeded";
  } catch (const std::runtime_error &e) {
    EXPECT_NE(std::string(e.what()).find("/dev/full: append failed (No space left on device)"), std::string::npos)
        << e.what();
  }
  const auto path = fs::temp_directory_path() / ("cff_append_" + std::to_string(::getpid()));
  cff::files::append_durably(path.string(), "a\n");
  cff::files::append_durably(path.string(), "b\n");
  std::ifstream in(path);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()), "a\nb\n");
  fs::remove(path);
}

// Found by fuzz/fuzz_idx (issue 19): an IDX file of zero records (memcpy to an empty tensor's null pointer),
// dimensions whose product wraps past 64 bits to a count the file seemed to hold, and zero records of
// images so large that the tensor's strides overflow.
TEST(IdxFiles, EmptyAndOverflowingHeaders_n) {
  const auto dir = fs::temp_directory_path() / ("cff_idx_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto path = (dir / "images").string();
  {
    std::ofstream out(path, std::ios::binary);
    write_u32(out, 0x803);
    write_u32(out, 0);
    write_u32(out, 28);
    write_u32(out, 28);
  }
  EXPECT_EQ(cff::data::read_idx_images(path).sizes(), (std::vector<int64_t>{0, 1, 28, 28}));
  {
    std::ofstream out(path, std::ios::binary);
    write_u32(out, 0x801);
    write_u32(out, 0);
  }
  EXPECT_EQ(cff::data::read_idx_labels(path).numel(), 0);
  {
    // 2^22 * 2^21 * 2^21 = 2^64: would wrap to 0.
    std::ofstream out(path, std::ios::binary);
    write_u32(out, 0x803);
    write_u32(out, 1u << 22);
    write_u32(out, 1u << 21);
    write_u32(out, 1u << 21);
    out << std::string(16, '\0');
  }
  try {
    cff::data::read_idx_images(path);
    ADD_FAILURE() << "no error";
  } catch (const DatasetError &e) {
    EXPECT_NE(std::string(e.what()).find("more than an image can have"), std::string::npos) << e.what();
  }
  {
    // Zero records of 64516 x 2880154539 bytes: the tensor's strides would overflow.
    std::ofstream out(path, std::ios::binary);
    write_u32(out, 0x803);
    write_u32(out, 0);
    write_u32(out, 0xfc04);
    write_u32(out, 0xabababab);
  }
  try {
    cff::data::read_idx_images(path);
    ADD_FAILURE() << "no error";
  } catch (const DatasetError &e) {
    EXPECT_NE(std::string(e.what()).find("more than an image can have"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

namespace {

// The fuzzers' tiny network (fuzz/tiny_network.h), which their checkpoint seed is made of.
cff::NetworkConfig tiny_checkpoint_network() { return cff_fuzz::tiny_network(); }

// A tiny network trained for `steps` AdamW steps on fixed data, its EMA copy and the optimiser.
struct TinyTraining {
  cff::Classifier net{tiny_checkpoint_network()}, ema{tiny_checkpoint_network()};
  torch::optim::AdamW optimizer{net->parameters(), torch::optim::AdamWOptions(1e-2)};
  void step() {
    torch::manual_seed(7);
    const auto x = torch::randn({4, 1, 8, 8});
    optimizer.zero_grad();
    torch::nn::functional::cross_entropy(net->forward(x), torch::tensor({0, 1, 2, 0})).backward();
    optimizer.step();
  }
};

std::string tiny_checkpoint_bytes() {
  TinyTraining t;
  t.step();
  auto c = cff::train::capture_checkpoint(t.net, t.ema, t.optimizer);
  c.options = {{"lr", 0.01}};
  c.epoch = 2;
  c.noised_from = 5;
  c.running_accuracy = 0.25;
  return cff::train::serialize_checkpoint(c);
}

void expect_refused_by_name(const std::string &bytes, const std::string &part, const std::string &label) {
  try {
    cff::train::read_checkpoint(bytes, "run/checkpoint.pt");
    ADD_FAILURE() << label << ": no error";
  } catch (const std::runtime_error &e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find("run/checkpoint.pt: checkpoint is "), 0u) << label << ": " << what;
    EXPECT_NE(what.find(part), std::string::npos) << label << ": " << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << label << ": " << what;
  }
}

}  // namespace

// The checkpoint is cff's own tensor file (issue 19: LibTorch's archive reader crashed on forged archives):
// written and read back, it restores the weights, the EMA, AdamW's moments and step counts and the counters
// exactly, so the next step from the restored state equals the next step of the original.
TEST(Checkpoint, RestoresTheTrainingStateBitForBit) {
  TinyTraining original;
  original.step();
  original.step();
  torch::NoGradGuard no_grad;
  for (auto &p : original.ema->parameters()) p.mul_(0.5);
  auto c = cff::train::capture_checkpoint(original.net, original.ema, original.optimizer);
  c.options = {{"lr", 0.01}, {"seed", 3}};
  c.epoch = 4;
  c.noised_from = 17;
  c.running_accuracy = 1.0 / 3.0;
  const auto bytes = cff::train::serialize_checkpoint(c);
  ASSERT_EQ(bytes.substr(0, 8), "CFFTRAIN");
  const auto read = cff::train::read_checkpoint(bytes, "ckpt");
  EXPECT_EQ(read.options, c.options);
  EXPECT_EQ(read.epoch, 4);
  EXPECT_EQ(read.noised_from, 17);
  EXPECT_EQ(read.running_accuracy, c.running_accuracy);
  EXPECT_EQ(read.lr, 1e-2);
  ASSERT_EQ(read.optimizer.size(), original.net->parameters().size());
  TinyTraining restored;
  for (auto &p : restored.net->parameters()) p.add_(1.0);  // other weights before the restore
  cff::train::restore_checkpoint(read, restored.net, restored.ema, restored.optimizer, "ckpt");
  const auto equal = [](cff::Classifier &a, cff::Classifier &b) {
    const auto pa = a->parameters(), pb = b->parameters();
    for (size_t i = 0; i < pa.size(); ++i) {
      if (!torch::equal(pa[i], pb[i])) return false;
    }
    return true;
  };
  EXPECT_TRUE(equal(original.net, restored.net));
  EXPECT_TRUE(equal(original.ema, restored.ema));
  {
    torch::AutoGradMode grad(true);
    original.step();
    restored.step();
  }
  EXPECT_TRUE(equal(original.net, restored.net)) << "the step after the restore differs";
}

// A checkpoint that does not fit the run's network is refused naming the tensor, not restored in part.
TEST(Checkpoint, AnotherNetworksCheckpointIsRefusedByName_n) {
  const auto c = cff::train::read_checkpoint(tiny_checkpoint_bytes(), "ckpt");
  auto config = tiny_checkpoint_network();
  config.widths = {4, 16};
  cff::Classifier net(config), ema(config);
  torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(1e-2));
  try {
    cff::train::restore_checkpoint(c, net, ema, optimizer, "run/checkpoint.pt");
    FAIL() << "restored into another network";
  } catch (const std::runtime_error &e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find("run/checkpoint.pt: checkpoint does not fit this run's network (tensor '"), 0u) << what;
    EXPECT_NE(what.find("has shape"), std::string::npos) << what;
  }
}

// Damaged checkpoints behind a matching checksum (written by hand or by another program) are refused with
// one line naming the file and what is wrong; so are the LibTorch archives of earlier cff-train versions.
TEST(Checkpoint, DamagedContentIsRefusedByName_n) {
  const auto good = tiny_checkpoint_bytes();
  const auto forge = [&](const nlohmann::json &state, const std::string &tensor_block) {
    std::string bytes = good.substr(0, cff::kTensorFileHeaderSize);
    const std::string json = state.dump();
    const uint64_t json_size = json.size(), block_size = tensor_block.size();
    std::memcpy(&bytes[16], &json_size, 8);
    std::memcpy(&bytes[24], &block_size, 8);
    bytes += json + tensor_block;
    cff::reseal_tensor_file(bytes);
    return bytes;
  };
  const nlohmann::json state = {{"options", {{"lr", 0.01}}}, {"epoch", 1}, {"noised_from", 0},
                                {"running_accuracy", 0.5}, {"lr", 0.01}, {"adam_steps", nlohmann::json::object()}};
  const auto block = [](const std::string &name, std::vector<int64_t> dims) {
    return cff::encode_tensors({{name, torch::ones(dims)}});
  };
  expect_refused_by_name("PK\x03\x04 an earlier cff-train's archive", "a LibTorch archive", "LibTorch archive");
  expect_refused_by_name("CFFMODEL", "not a cff-train checkpoint (wrong magic)", "a model file");
  expect_refused_by_name("", "file is empty", "empty");
  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x10;
  expect_refused_by_name(flipped, "corrupt (checksum)", "a flipped bit");
  {
    std::string text = "{not json";
    std::string bytes = good.substr(0, cff::kTensorFileHeaderSize) + text;
    const uint64_t json_size = text.size(), zero = 0;
    std::memcpy(&bytes[16], &json_size, 8);
    std::memcpy(&bytes[24], &zero, 8);
    cff::reseal_tensor_file(bytes);
    expect_refused_by_name(bytes, "its state", "JSON");
  }
  auto without = state;
  without.erase("epoch");
  expect_refused_by_name(forge(without, ""), "'epoch' is missing", "no epoch");
  auto wrong = state;
  wrong["epoch"] = "one";
  expect_refused_by_name(forge(wrong, ""), "its state", "epoch a string");
  wrong = state;
  wrong["options"] = 3;
  expect_refused_by_name(forge(wrong, ""), "its options are not an object", "options a number");
  expect_refused_by_name(forge(state, block("weights/x", {2})), "tensor 'weights/x' is none of", "unknown tensor");
  expect_refused_by_name(forge(state, block("adam/exp_avg/fc.weight", {2})), "has no step count", "moment without step");
  auto stepped = state;
  stepped["adam_steps"] = {{"fc.weight", 3}};
  expect_refused_by_name(forge(stepped, block("adam/exp_avg/fc.weight", {2})), "incomplete", "one moment only");
  expect_refused_by_name(forge(stepped, block("adam/exp_avg/fc.weight", {2}) + block("adam/exp_avg_sq/fc.weight", {3})),
                         "two shapes", "moments of two shapes");
  const auto entry = block("model/fc.bias", {3});
  expect_refused_by_name(forge(state, entry.substr(0, entry.size() - 1)), "truncated while reading tensor data", "cut tensor");
  // Every prefix of a good checkpoint, and a thousand random byte changes behind a resealed checksum: each is
  // read or refused in one line naming the file (the fuzzer, fuzz/fuzz_checkpoint, does this at length).
  for (size_t n = 0; n < good.size(); n += 97) expect_refused_by_name(good.substr(0, n), "", "prefix");
  std::mt19937 random(5);
  for (int i = 0; i < 1000; ++i) {
    std::string bytes = good;
    for (int k = 0; k < 3; ++k) bytes[random() % bytes.size()] = static_cast<char>(random());
    cff::reseal_tensor_file(bytes);
    try {
      cff::train::read_checkpoint(bytes, "run/checkpoint.pt");
    } catch (const std::runtime_error &e) {
      EXPECT_EQ(std::string(e.what()).find("run/checkpoint.pt: checkpoint is "), 0u) << e.what();
    }
  }
}

// Found by fuzz/fuzz_checkpoint (issue 19) when checkpoints were LibTorch archives: inputs on which
// LibTorch's reader threw torch::jit::ErrorReport or std::out_of_range, crashed (SEGV in
// parseClassConstant) or over-read a storage. They are refused by name now, before any of it is parsed.
TEST(Checkpoint, FuzzFindingsAreRefusedByName_n) {
  const char *source_root = std::getenv("CFF_SOURCE_ROOT");
  if (!source_root) GTEST_SKIP() << "run through meson test";
  int checked = 0;
  for (const auto &entry : fs::directory_iterator(fs::path(source_root) / "fuzz" / "corpus" / "fuzz_checkpoint")) {
    if (entry.path().filename().string().rfind("regress-", 0) != 0) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    cff::reseal_tensor_file(bytes);
    expect_refused_by_name(bytes, "damaged", entry.path().string());
    ++checked;
  }
  EXPECT_GE(checked, 5);
}
