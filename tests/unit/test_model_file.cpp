#include <cstdio>
#include <cstring>

#include <sys/stat.h>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/script.h>
#include <zlib.h>

#include "test_helpers.h"

using namespace cff;
namespace fs = std::filesystem;

namespace {

class ModelFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cff_model_file_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    torch::manual_seed(3);
    config_ = cff_test::tiny_config(1, 8, 8, 4);
    net_ = Classifier(config_);
    meta_ = cff_test::tiny_metadata(config_);
    meta_.ood = cff::OodDetector::energy_only(-3.25);
    meta_.provenance["command"] = "unit test";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string &name) const { return (dir_ / name).string(); }
  static void write(const std::string &p, const std::string &bytes) {
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  // The bytes with the header's checksum recomputed (for edits that must get past it).
  static std::string with_checksum(std::string bytes) {
    const auto crc = static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef *>(bytes.data()) + 36, bytes.size() - 36));
    std::memcpy(&bytes[32], &crc, sizeof(crc));
    return bytes;
  }
  // Loads and returns the error message; fails the test if loading succeeds.
  static std::string load_error(const std::string &p) {
    try {
      load_model(p);
    } catch (const ModelFileError &e) {
      return e.what();
    }
    ADD_FAILURE() << "loading " << p << " succeeded";
    return "";
  }
  static void expect_contains(const std::string &text, const std::string &part) {
    EXPECT_NE(text.find(part), std::string::npos) << "'" << text << "' lacks '" << part << "'";
  }

  fs::path dir_;
  NetworkConfig config_;
  Classifier net_{nullptr};
  ModelMetadata meta_;
};

}  // namespace

TEST_F(ModelFile, SaveLoadGivesIdenticalLogitsAndMetadata) {
  save_model(path("m.cff"), net_, meta_);
  auto model = load_model(path("m.cff"));
  auto x = torch::randn({3, 1, 8, 8});
  auto expected = net_->forward(x);
  auto got = model.logits_function()(x);
  EXPECT_TRUE(torch::equal(expected, got));
  EXPECT_EQ(model.metadata.labels, meta_.labels);
  EXPECT_DOUBLE_EQ(model.metadata.ood.threshold("energy").value(), -3.25);
  EXPECT_EQ(model.metadata.provenance["command"], "unit test");
  for (const auto &p : model.network->parameters()) EXPECT_FALSE(p.requires_grad());
  EXPECT_EQ(read_model_metadata(path("m.cff")).network.to_json(), config_.to_json());
  // No temporary file is left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

// The fitted OOD scores travel with the file: same thresholds, same scores after loading.
TEST_F(ModelFile, FittedOodScoresSurviveSaveAndLoad) {
  torch::manual_seed(4);
  const auto x = torch::rand({200, 1, 8, 8}) * 2 - 1;
  const auto y = torch::arange(4).repeat(50);
  Model fitted;
  fitted.metadata = meta_;
  fitted.network = net_;
  const auto inputs = fitted.ood_inputs(x, /*everything=*/true);
  meta_.ood = OodDetector::fit(inputs, y, 4, fitted.ood_inputs(x.slice(0, 0, 100), true), {});
  meta_.ood.set_recommended("mahalanobis");
  save_model(path("fitted.cff"), net_, meta_);
  const auto model = load_model(path("fitted.cff"));
  EXPECT_EQ(model.metadata.ood.available(), ood_score_names());
  EXPECT_EQ(model.metadata.ood.recommended(), "mahalanobis");
  const auto again = model.ood_inputs(x);
  for (const auto &name : ood_score_names()) {
    EXPECT_DOUBLE_EQ(model.metadata.ood.threshold(name).value(), meta_.ood.threshold(name).value()) << name;
    // Tensors are stored as float32.
    EXPECT_TRUE(torch::allclose(model.metadata.ood.score(name, again), meta_.ood.score(name, inputs), 1e-4, 1e-3)) << name;
  }
  EXPECT_EQ(read_model_metadata(path("fitted.cff")).ood.listed(), ood_score_names());
}

TEST_F(ModelFile, MissingFileNamesPathAndReason) {
  auto message = load_error(path("nope.cff"));
  expect_contains(message, "nope.cff");
  expect_contains(message, "cannot open");
}

TEST_F(ModelFile, EmptyFile) {
  write(path("empty.cff"), "");
  expect_contains(load_error(path("empty.cff")), "file is empty");
}

// Issue 19, defect 1: only regular files are read, and the header is checked against the file's size before
// the content is read (a pipe used to hang, a directory said "file is empty", a huge file was read whole).
TEST_F(ModelFile, DirectoriesPipesAndDevicesAreRefusedByName) {
  fs::create_directories(path("folder.cff"));
  expect_contains(load_error(path("folder.cff")), "is a directory");
  ASSERT_EQ(::mkfifo(path("pipe.cff").c_str(), 0600), 0);
  expect_contains(load_error(path("pipe.cff")), "not a regular file");  // returns at once: nothing opens the pipe
  expect_contains(load_error("/dev/zero"), "not a regular file");
  try {
    read_model_metadata(path("pipe.cff"));
    ADD_FAILURE() << "read_model_metadata read a pipe";
  } catch (const ModelFileError &e) {
    expect_contains(e.what(), "not a regular file");
  }
}

TEST_F(ModelFile, HeaderIsCheckedAgainstTheFileSizeBeforeTheContentIsRead) {
  const auto bytes = serialize_model(net_, meta_);
  // A sparse 3 GiB file behind a good header: refused from its size alone (reading it would take GBs of memory).
  {
    write(path("big.cff"), bytes);
    fs::resize_file(path("big.cff"), uint64_t{3} << 30);
    expect_contains(load_error(path("big.cff")), "unexpected bytes after the content");
  }
  // Announced sizes beyond any cff model are refused with the sizes, not a wrapped sum.
  auto huge = bytes;
  const uint64_t announced = ~uint64_t{0} - 5;
  std::memcpy(&huge[16], &announced, sizeof(announced));
  write(path("huge.cff"), huge);
  const auto message = load_error(path("huge.cff"));
  expect_contains(message, std::to_string(announced) + " bytes of metadata");
  expect_contains(message, "more than a cff model file can have");
}

TEST_F(ModelFile, WrongMagic) {
  write(path("png.cff"), "\x89PNG\r\n\x1a\n and then some bytes");
  expect_contains(load_error(path("png.cff")), "wrong magic");
}

TEST_F(ModelFile, TruncatedAtEveryRegion) {
  const auto bytes = serialize_model(net_, meta_);
  for (size_t keep : {size_t{10}, size_t{30}, size_t{40}, bytes.size() / 2, bytes.size() - 1}) {
    write(path("cut.cff"), bytes.substr(0, keep));
    expect_contains(load_error(path("cut.cff")), "truncated");
  }
}

TEST_F(ModelFile, BitFlipsAreCaughtByChecksum) {
  const auto bytes = serialize_model(net_, meta_);
  for (size_t at : {size_t{36} + 5, bytes.size() / 2, bytes.size() - 3}) {
    auto flipped = bytes;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x10);
    write(path("flip.cff"), flipped);
    expect_contains(load_error(path("flip.cff")), "checksum mismatch");
  }
}

TEST_F(ModelFile, WrongVersion) {
  auto bytes = serialize_model(net_, meta_);
  bytes[8] = 99;
  write(path("v99.cff"), bytes);
  expect_contains(load_error(path("v99.cff")), "unsupported format version 99");
}

TEST_F(ModelFile, TrailingBytes) {
  write(path("extra.cff"), serialize_model(net_, meta_) + "xyz");
  expect_contains(load_error(path("extra.cff")), "unexpected bytes");
}

TEST_F(ModelFile, WeightsOfAnotherArchitecture) {
  auto other = meta_;
  other.network.widths = {8, 32};
  write(path("shape.cff"), serialize_model(net_, other));
  expect_contains(load_error(path("shape.cff")), "the metadata declares a network of");
  // As many weights as the declared architecture, in another shape: the head's matrix transposed.
  auto bytes = serialize_model(net_, meta_);
  const std::string name = "head.weight";
  const auto at = bytes.find(name);
  ASSERT_NE(at, std::string::npos);
  int64_t dims[2];
  std::memcpy(dims, &bytes[at + name.size() + 4], sizeof(dims));
  std::swap(dims[0], dims[1]);
  std::memcpy(&bytes[at + name.size() + 4], dims, sizeof(dims));
  write(path("transposed.cff"), with_checksum(bytes));
  const auto message = load_error(path("transposed.cff"));
  expect_contains(message, "has shape");
  expect_contains(message, "architecture expects");
}

// A metadata edit that declares a huge network is refused before anything is built (loading would
// allocate tens of GB), and so is one that declares a network other than the weights in the file.
TEST_F(ModelFile, DeclaredNetworkIsCheckedBeforeItIsBuilt) {
  auto huge = meta_;
  huge.network.widths = {4096, 4096, 4096, 4096};
  huge.network.blocks_per_stage = 64;
  write(path("huge.cff"), serialize_model(net_, huge));
  expect_contains(load_error(path("huge.cff")), "weights, more than a cff network may have");
  auto wide_input = meta_;
  wide_input.network.height = wide_input.network.width = 1024;
  wide_input.network.widths = {64};
  write(path("input.cff"), serialize_model(net_, wide_input));
  expect_contains(load_error(path("input.cff")), "largest feature map would hold 67108864 values");
  auto big_input = meta_;
  big_input.network.height = big_input.network.width = 4096;
  write(path("side.cff"), serialize_model(net_, big_input));
  expect_contains(load_error(path("side.cff")), "height and width must be in 1..1024, got 4096x4096");
  auto deeper = meta_;
  deeper.network.blocks_per_stage = 8;
  write(path("deeper.cff"), serialize_model(net_, deeper));
  expect_contains(load_error(path("deeper.cff")),
                  "declares a network of " + std::to_string(deeper.network.parameter_count()) +
                      " weights but the file holds " + std::to_string(net_->parameter_count()));
}

TEST(Network, ParameterCountIsComputedWithoutBuildingTheNetwork) {
  for (const auto &widths : {std::vector<int64_t>{8}, std::vector<int64_t>{8, 16}, std::vector<int64_t>{16, 16, 32}}) {
    for (int64_t blocks : {1, 2}) {
      for (int64_t channels : {1, 3}) {
        NetworkConfig c = cff_test::tiny_config(channels, 12, 10, 7);
        c.widths = widths;
        c.blocks_per_stage = blocks;
        EXPECT_EQ(c.parameter_count(), Classifier(c)->parameter_count())
            << widths.size() << " stages, " << blocks << " blocks, " << channels << " channels";
        // Feature maps: the input, then each stage at ceil(side / 2^stage).
        int64_t largest = channels * 12 * 10, h = 12, w = 10;
        for (size_t s = 0; s < widths.size(); ++s) {
          if (s > 0) h = (h + 1) / 2, w = (w + 1) / 2;
          largest = std::max(largest, widths[s] * h * w);
        }
        EXPECT_EQ(c.largest_activation(), largest);
      }
    }
  }
}

TEST_F(ModelFile, InconsistentMetadata) {
  auto bad = meta_;
  bad.labels.pop_back();
  write(path("labels.cff"), serialize_model(net_, bad));
  expect_contains(load_error(path("labels.cff")), "3 labels for 4 classes");
}

TEST_F(ModelFile, TheScheduleCentreRoundTripsAndIsCheckedAgainstTheChannels) {
  auto centred = meta_;
  centred.schedule.set_centre({-0.7});
  save_model(path("centred.cff"), net_, centred);
  EXPECT_EQ(load_model(path("centred.cff")).metadata.schedule.centre(), std::vector<double>{-0.7});
  // A file without a centre (as every file before it) has the centre 0.
  save_model(path("plain.cff"), net_, meta_);
  EXPECT_TRUE(load_model(path("plain.cff")).metadata.schedule.centre().empty());
  auto bad = meta_;
  bad.schedule.set_centre({0.1, 0.2, 0.3});
  write(path("centre.cff"), serialize_model(net_, bad));
  expect_contains(load_error(path("centre.cff")), "centre has 3 values for 1 channels");
}

TEST_F(ModelFile, NonFiniteWeightsAreRejected) {
  torch::NoGradGuard no_grad;
  net_->parameters()[0][0].fill_(std::numeric_limits<float>::quiet_NaN());
  write(path("nan.cff"), serialize_model(net_, meta_));
  expect_contains(load_error(path("nan.cff")), "NaN or Inf");
}

TEST_F(ModelFile, SaveNeverReplacesGoodFileWithPartialOne) {
  save_model(path("good.cff"), net_, meta_);
  // Writing into a folder that does not exist fails before anything is renamed.
  EXPECT_THROW(save_model(path("missing-dir/x.cff"), net_, meta_), ModelFileError);
  EXPECT_NO_THROW(load_model(path("good.cff")));
}

TEST_F(ModelFile, ImportsTorchScriptClassifier) {
  // A linear classifier written as TorchScript, saved, and imported as f(x).
  torch::jit::Module module("LinearClassifier");
  auto weight = torch::randn({4, 64});
  module.register_parameter("weight", weight, false);
  module.define(R"(
    def forward(self, x):
        return torch.matmul(x.flatten(1), self.weight.t())
  )");
  module.save(path("linear.pt"));
  auto model = import_torchscript(path("linear.pt"), meta_);
  auto x = torch::randn({2, 1, 8, 8});
  auto logits = model.logits_function()(x);
  EXPECT_TRUE(torch::allclose(logits, x.flatten(1).matmul(weight.t()), 1e-5, 1e-5));
  // Energy and force work through it: for a linear f the conditional force is -w_y / |w_y|.
  ForceOptions options;
  options.labels = torch::tensor({1, 3}, torch::kLong);
  auto u = force_direction(model.logits_function(), x, options).direction;
  auto w1 = weight[1].view({1, 8, 8});
  EXPECT_TRUE(torch::allclose(u[0], -w1 / w1.norm(), 1e-5, 1e-5));

  auto wrong = meta_;
  wrong.network.num_classes = 5;
  wrong.labels.push_back("extra");
  try {
    import_torchscript(path("linear.pt"), wrong);
    FAIL();
  } catch (const ModelFileError &e) {
    expect_contains(e.what(), "expected [1, 5] logits");
  }
  write(path("junk.pt"), "not a zip");
  EXPECT_THROW(import_torchscript(path("junk.pt"), meta_), ModelFileError);
}
