// cff-eval: its metrics on hand-made cases with known answers, then the tool end to end on a tiny CFF
// model and a tiny cross-entropy judge trained here on a slice of Fashion-MNIST (seconds, one thread).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <torch/torch.h>

#include "cff/model_file.h"
#include "cff/ood.h"
#include "data/datasets.h"
#include "data/evaluation.h"
#include "metrics.h"
#include "plot.h"
#include "robustness.h"
#include "training/trainer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// ---- metrics -------------------------------------------------------------------------------------

TEST(EvalMetrics, ExpectedCalibrationErrorOfAHandMadeExample) {
  // Confidences 0.9 (right), 0.9 (wrong), 0.62 (right), 0.7 (right): with 15 bins they fall in bins 13, 13, 9, 10.
  const auto p = torch::tensor({0.9, 0.1, 0.9, 0.1, 0.38, 0.62, 0.7, 0.3}, torch::kDouble).view({4, 2});
  const auto y = torch::tensor({0, 1, 1, 0}, torch::kLong);
  const auto c = cff::eval::expected_calibration_error(p, y, 15);
  // 2/4 * |0.5 - 0.9| + 1/4 * |1 - 0.62| + 1/4 * |1 - 0.7|
  EXPECT_NEAR(c.ece, 0.2 + 0.095 + 0.075, 1e-12);
  ASSERT_EQ(c.bins.size(), 15u);
  EXPECT_EQ(c.bins[13].count, 2);
  EXPECT_NEAR(c.bins[13].accuracy, 0.5, 1e-12);
  EXPECT_EQ(c.bins[9].count, 1);
  EXPECT_EQ(c.bins[10].count, 1);
  // One bin: |accuracy - mean confidence| = |0.75 - 0.78|.
  EXPECT_NEAR(cff::eval::expected_calibration_error(p, y, 1).ece, 0.03, 1e-12);
  // Perfectly confident and right: zero.
  EXPECT_NEAR(cff::eval::expected_calibration_error(torch::eye(3, torch::kDouble), torch::arange(3), 15).ece, 0.0, 1e-12);
}

TEST(EvalMetrics, ConfusionMatrixCountsTrueRowsAndPredictedColumns) {
  const auto m = cff::eval::confusion_matrix(torch::tensor({0, 2, 2, 1}), torch::tensor({0, 1, 2, 1}), 3);
  EXPECT_TRUE(torch::equal(m, torch::tensor({1, 0, 0, 0, 1, 1, 0, 0, 1}, torch::kLong).view({3, 3})));
}

cff::eval::GaussianStatistics random_gaussian(int64_t dims, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto a = torch::randn({dims, dims}, gen, torch::kDouble);
  return {torch::randn({dims}, gen, torch::kDouble), a.mm(a.t()) + 0.1 * torch::eye(dims, torch::kDouble)};
}

TEST(EvalMetrics, FrechetDistanceOfIdenticalGaussiansIsZeroAndOfShiftedMeansIsTheSquaredShift) {
  const auto a = random_gaussian(16, 1);
  EXPECT_NEAR(cff::eval::frechet_distance(a, a), 0.0, 1e-8 * a.covariance.trace().item<double>());
  auto shifted = a;
  const auto shift = torch::linspace(-1, 2, 16, torch::kDouble);
  shifted.mean = a.mean + shift;
  EXPECT_NEAR(cff::eval::frechet_distance(a, shifted), shift.pow(2).sum().item<double>(), 1e-7);
}

TEST(EvalMetrics, FrechetDistanceMatchesTheEigenvaluesOfTheCovarianceProduct) {
  // Computed another way: Tr sqrt(S1 S2) is the sum of the square roots of the (real, non-negative)
  // eigenvalues of S1 S2, which need not be symmetric.
  const auto a = random_gaussian(8, 2), b = random_gaussian(8, 3);
  const auto eigenvalues = torch::real(torch::linalg_eigvals(a.covariance.mm(b.covariance)));
  const double expected = (a.mean - b.mean).pow(2).sum().item<double>() + a.covariance.trace().item<double>() +
                          b.covariance.trace().item<double>() - 2 * eigenvalues.clamp_min(0).sqrt().sum().item<double>();
  EXPECT_NEAR(cff::eval::frechet_distance(a, b), expected, 1e-6 * std::abs(expected));
  EXPECT_GT(cff::eval::frechet_distance(a, b), 1.0);
}

TEST(EvalMetrics, GaussianStatisticsOfSamplesApproachTheirDistribution) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const auto x = torch::randn({20000, 3}, gen, torch::kDouble) * torch::tensor({1.0, 2.0, 0.5}, torch::kDouble) + 3.0;
  const auto s = cff::eval::gaussian_statistics(x);
  EXPECT_TRUE(torch::allclose(s.mean, torch::full({3}, 3.0, torch::kDouble), 0, 0.05));
  EXPECT_TRUE(torch::allclose(s.covariance, torch::diag(torch::tensor({1.0, 4.0, 0.25}, torch::kDouble)), 0, 0.1));
}

TEST(EvalMetrics, SsimOfIdenticalImagesIsOneAndFallsWithNoise) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto clean = (torch::rand({3, 1, 28, 28}, gen) * 255).round();
  const auto same = cff::eval::ssim(clean, clean);
  EXPECT_TRUE(torch::allclose(same, torch::ones({3}, torch::kDouble), 0, 1e-12)) << same;
  const auto noisy = (clean + 40 * torch::randn(clean.sizes(), gen)).clamp(0, 255);
  const auto s = cff::eval::ssim(clean, noisy);
  EXPECT_LT(s.max().item<double>(), 0.9);
  EXPECT_GT(s.min().item<double>(), 0.0);
  EXPECT_TRUE(torch::allclose(s, cff::eval::ssim(noisy, clean), 0, 1e-12));  // symmetric
  // A constant image against itself shifted by 10: structure and contrast terms are 1, luminance is not.
  const auto flat = torch::full({1, 1, 16, 16}, 100.0);
  const double c1 = std::pow(0.01 * 255, 2);
  EXPECT_NEAR(cff::eval::ssim(flat, flat + 10).item<double>(), (2 * 100.0 * 110 + c1) / (100.0 * 100 + 110.0 * 110 + c1), 1e-9);
}

TEST(EvalMetrics, MeanPairwiseDistanceOfKnownPoints) {
  // Three points on a line at 0, 3 and 4: pair distances 3, 4 and 1.
  const auto x = torch::tensor({0.0, 3.0, 4.0}, torch::kDouble).reshape({3, 1, 1, 1});
  EXPECT_DOUBLE_EQ(cff::eval::mean_pairwise_distance(x), 8.0 / 3.0);
  // Images are flattened: a 3-4-5 triangle between two 2-pixel images.
  EXPECT_DOUBLE_EQ(cff::eval::mean_pairwise_distance(torch::tensor({0.0, 0.0, 3.0, 4.0}, torch::kDouble).reshape({2, 1, 1, 2})), 5.0);
  EXPECT_TRUE(std::isnan(cff::eval::mean_pairwise_distance(torch::zeros({1, 1, 2, 2}))));
  // Identical images have no spread.
  EXPECT_DOUBLE_EQ(cff::eval::mean_pairwise_distance(torch::ones({4, 1, 2, 2})), 0.0);
}

TEST(EvalMetrics, PsnrOfAKnownError) {
  const auto a = torch::full({2, 1, 8, 8}, 50.0);
  EXPECT_NEAR(cff::eval::psnr(a, a + 10)[0].item<double>(), 10 * std::log10(255.0 * 255.0 / 100.0), 1e-9);
}

TEST(EvalMetrics, MahalanobisSeparatesTwoClustersAndMatchesTheExplicitFormula) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(6);
  const int64_t n = 2000, d = 5;
  // Anisotropic clusters at the origin and at +10 along the first axis, elongated along the second.
  const auto scale = torch::tensor({1.0, 4.0, 0.5, 1.0, 1.0}, torch::kDouble);
  const auto labels = torch::arange(2).repeat_interleave(n / 2);
  auto centres = torch::zeros({2, d}, torch::kDouble);
  centres[1][0] = 10.0;
  const auto x = torch::randn({n, d}, gen, torch::kDouble) * scale + centres.index_select(0, labels);
  const auto m = cff::GaussianClassModel::fit(x, labels, 2, 0.0);
  // In-distribution points against points off both clusters along the tight third axis (Euclidean
  // distance to the nearest centre about as large as the in-cluster spread along axis two).
  const auto inside = torch::randn({500, d}, gen, torch::kDouble) * scale + centres.index_select(0, labels.slice(0, 0, n, 4));
  auto outside = torch::randn({500, d}, gen, torch::kDouble) * scale * 0.2;
  outside.select(1, 2).add_(4.0);
  const auto in_scores = cff::to_vector(m.distance(inside)), out_scores = cff::to_vector(m.distance(outside));
  EXPECT_GT(cff::auroc(in_scores, out_scores), 0.99);
  // Euclidean distance to the nearest centre does much worse on the same points: the covariance matters.
  const auto euclid = [&](const torch::Tensor &p) { return std::get<0>(torch::cdist(p, centres).pow(2).min(1)); };
  EXPECT_LT(cff::auroc(cff::to_vector(euclid(inside)), cff::to_vector(euclid(outside))), 0.9);
  // Reference: explicit inverse of the pooled covariance.
  auto means = torch::stack({x.slice(0, 0, n / 2).mean(0), x.slice(0, n / 2).mean(0)});
  const auto centred = x - means.index_select(0, labels);
  const auto precision = torch::inverse(centred.t().mm(centred) / static_cast<double>(n));
  const auto p = outside.slice(0, 0, 5);
  for (int64_t i = 0; i < 5; ++i) {
    double best = INFINITY;
    for (int64_t k = 0; k < 2; ++k) {
      const auto diff = (p[i] - means[k]).unsqueeze(0);
      best = std::min(best, diff.mm(precision).mm(diff.t()).item<double>());
    }
    EXPECT_NEAR(out_scores[static_cast<size_t>(i)], best, 1e-5 * best);  // the fit is rounded through float32
  }
}

TEST(EvalMetrics, RocCurveRunsFromOriginToOneAndItsAreaIsTheAuroc) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const auto in = cff::to_vector(torch::randn({300}, gen, torch::kDouble));
  const auto out = cff::to_vector(torch::randn({200}, gen, torch::kDouble) + 1.0);
  const auto roc = cff::eval::roc_curve(in, out, 100000);
  ASSERT_GE(roc.false_positive_rate.size(), 2u);
  EXPECT_EQ(roc.false_positive_rate.front(), 0.0);
  EXPECT_EQ(roc.true_positive_rate.back(), 1.0);
  EXPECT_EQ(roc.false_positive_rate.back(), 1.0);
  double area = 0;
  for (size_t i = 1; i < roc.false_positive_rate.size(); ++i) {
    EXPECT_GE(roc.true_positive_rate[i], roc.true_positive_rate[i - 1]);
    area += (roc.false_positive_rate[i] - roc.false_positive_rate[i - 1]) * (roc.true_positive_rate[i] + roc.true_positive_rate[i - 1]) / 2;
  }
  EXPECT_NEAR(area, cff::auroc(in, out), 1e-12);
  EXPECT_GT(area, 0.65);
  EXPECT_EQ(cff::eval::roc_curve(in, out, 50).false_positive_rate.size(), 50u);
}

// ---- robustness ----------------------------------------------------------------------------------

// A linear classifier on 6x6 grey images (inputs 2p - 1), and labels it gets right.
struct LinearModel {
  torch::Tensor w = torch::randn({3, 36}) * 0.3, b = torch::zeros({3});
  cff::LogitsFunction f() const {
    return [w = w, b = b](const torch::Tensor &x) { return torch::matmul(x.flatten(1), w.t()) + b; };
  }
};

TEST(EvalRobustness, MaskingChecksPassOnALinearModelAndWarnWhenGradientsAreHidden) {
  torch::manual_seed(4);
  LinearModel model;
  const auto x = torch::rand({60, 1, 6, 6}) * 2 - 1;
  const auto y = model.f()(x).argmax(1);
  cff::eval::RobustnessOptions o;
  o.batch = 25;
  const auto spec = cff::AttackSpec::parse("pgd-linf:eps=0.1,steps=10");
  auto status = [](const json &checks) {
    std::map<std::string, std::string> out;
    for (const auto &c : checks) out[c["check"].get<std::string>()] = c["status"].get<std::string>();
    return out;
  };
  const auto honest = status(cff::eval::masking_checks(model.f(), x, y, spec, o));
  ASSERT_EQ(honest.size(), 6u);
  for (const auto &item : honest) EXPECT_EQ(item.second, "pass") << item.first;
  // Rounding the input hides the gradient (a masked "defence"): the attacks cannot move, and the checks say so.
  const auto f = model.f();
  const cff::LogitsFunction masked = [f](const torch::Tensor &x) { return f(torch::round(x * 4) / 4); };
  const auto ym = masked(x).argmax(1);
  const auto hidden = status(cff::eval::masking_checks(masked, x, ym, spec, o));
  EXPECT_EQ(hidden.at("input gradients are non-zero"), "warn");
  EXPECT_EQ(hidden.at("accuracy reaches 10% or less at the largest eps"), "warn");
  // A transfer from the unmasked model breaks it better than the white-box attack: warned too.
  o.transfer = model.f();
  o.transfer_name = "linear";
  const auto transfer = status(cff::eval::masking_checks(masked, x, ym, spec, o));
  EXPECT_EQ(transfer.at("transfer from linear is no stronger than white-box"), "warn");
}

TEST(EvalRobustness, ReportsAccuracyPerAttackAndTheEnergyShift) {
  torch::manual_seed(6);
  LinearModel model;
  const auto x = torch::rand({40, 1, 6, 6}) * 2 - 1;
  const auto y = model.f()(x).argmax(1);
  cff::eval::RobustnessOptions o;
  o.attacks = {cff::AttackSpec::parse("fgsm:eps=0.05"), cff::AttackSpec::parse("pgd-linf:eps=0.05,steps=10"),
               cff::AttackSpec::parse("pgd-linf:eps=0.05,steps=10,energy=1")};
  o.energy_threshold = 0.0;
  o.check_images = 20;
  const auto r = cff::eval::robustness(model.f(), x, y, {"a", "b", "c"}, o);
  EXPECT_DOUBLE_EQ(r["clean_accuracy"].get<double>(), 1.0);
  ASSERT_EQ(r["attacks"].size(), 3u);
  const double fgsm = r["attacks"][0]["accuracy"], pgd = r["attacks"][1]["accuracy"];
  EXPECT_LT(pgd, 1.0);
  EXPECT_LE(pgd, fgsm + 0.05);
  EXPECT_LE(r["worst_case_accuracy"].get<double>(), std::min(fgsm, pgd));
  EXPECT_EQ(r["attacks"][1]["per_class"].size(), 3u);
  // The adaptive attack also lowers the energy: its median shift is below the plain attack's.
  EXPECT_LT(r["attacks"][2]["energy"]["median_shift"].get<double>(), r["attacks"][1]["energy"]["median_shift"].get<double>());
  EXPECT_TRUE(r["attacks"][1]["energy"]["flagged"].is_number());
  EXPECT_EQ(r["masking_checks"].size(), 6u);
}

TEST(EvalPlot, ChartsAreDrawnAndWrittenAsPng) {
  const auto chart = cff::plot::line_chart({"t", "x", "y", 0, 1, 0, 1}, {{"diagonal", {0, 1}, {0, 1}, cff::plot::palette(0), 2}});
  EXPECT_EQ(chart.type(), CV_8UC3);
  EXPECT_EQ(chart.cols, 640);
  // The curve's colour is on the diagonal's midpoint, somewhere in the plot.
  cv::Mat mask;
  cv::inRange(chart, cff::plot::palette(0) - cv::Scalar(1, 1, 1), cff::plot::palette(0) + cv::Scalar(1, 1, 1), mask);
  EXPECT_GT(cv::countNonZero(mask), 200);
  const auto ticks = cff::plot::nice_ticks(0, 1);
  ASSERT_EQ(ticks.size(), 6u);
  for (size_t i = 0; i < ticks.size(); ++i) EXPECT_NEAR(ticks[i], 0.2 * static_cast<double>(i), 1e-12);
  EXPECT_EQ(cff::plot::nice_ticks(-3, 47), (std::vector<double>{0, 10, 20, 30, 40}));
  const auto hist = cff::plot::histogram_chart("h", "x", {{"a", {1, 2, 2, 3}, cff::plot::palette(0)}}, 10, cff::plot::Marker{2.5, "m"});
  EXPECT_EQ(hist.type(), CV_8UC3);
  const auto matrix = cff::plot::matrix_chart("m", {{5, 1}, {0, 7}}, {"a", "b"}, "true", "predicted");
  EXPECT_GT(matrix.cols, 2 * 52);
  const auto path = (fs::temp_directory_path() / ("cff_plot_" + std::to_string(::getpid()) + ".png")).string();
  cff::plot::write_png(path, matrix);
  std::ifstream in(path, std::ios::binary);
  std::string magic(8, '\0');
  in.read(&magic[0], 8);
  EXPECT_EQ(magic, std::string("\x89PNG\r\n\x1a\n", 8));
  fs::remove(path);
}

// ---- the tool end to end -------------------------------------------------------------------------

void write_u32(std::ofstream &out, uint32_t v) {
  const unsigned char b[4] = {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16),
                              static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
  out.write(reinterpret_cast<const char *>(b), 4);
}

void write_idx(const std::string &path, const torch::Tensor &t, bool images) {
  std::ofstream out(path, std::ios::binary);
  write_u32(out, images ? 0x803 : 0x801);
  write_u32(out, static_cast<uint32_t>(t.size(0)));
  if (images) {
    write_u32(out, static_cast<uint32_t>(t.size(2)));
    write_u32(out, static_cast<uint32_t>(t.size(3)));
  }
  auto c = t.to(torch::kUInt8).contiguous();
  out.write(reinterpret_cast<const char *>(c.data_ptr<uint8_t>()), c.numel());
}

struct ToolRun {
  int code = -1;
  std::string out, err;
};

class EvalTool : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("cff_eval_" + std::to_string(::getpid()));
    data_ = root_ / "fashion-slice";
    fs::create_directories(data_);
    auto train = cff::data::load_idx_folder(cff::data::fashion_mnist_dir(), "train");
    auto test = cff::data::load_idx_folder(cff::data::fashion_mnist_dir(), "test");
    write_idx((data_ / "train-images-idx3-ubyte").string(), train.images.slice(0, 0, 1200), true);
    write_idx((data_ / "train-labels-idx1-ubyte").string(), train.labels.slice(0, 0, 1200), false);
    write_idx((data_ / "t10k-images-idx3-ubyte").string(), test.images.slice(0, 0, 300), true);
    write_idx((data_ / "t10k-labels-idx1-ubyte").string(), test.labels.slice(0, 0, 300), false);

    cff::train::TrainOptions o;
    o.data = data_.string();
    o.network.widths = {16, 32, 64};  // the smallest that learns the CFF objective in seconds (see test_trainer)
    o.epochs = 3;
    o.ema = 0;  // with ~90 steps an EMA of the weights would still be mostly the initial network
    o.batch = 32;
    o.lr = 5e-3;
    o.warmup_accuracy = 0;  // ~110 steps: the force term needs all of them (CE first is for full-length runs)
    o.force_warmup = 0;
    o.loss.beta = 1;      // with the force from the first step, the paper's weight and process (as test_trainer's
    o.centre = "zero";    // small runs): the recipe's beta 3 keeps this small network at chance in ~110 steps
    o.augment = "none";
    o.holdout = 200;
    o.threads = 1;
    o.device = "cpu";
    o.samples_every = 0;
    o.ood_sets = {"uniform"};
    o.progress_seconds = 1e9;
    o.run_dir = (root_ / "model-run").string();
    o.export_path = model_ = (root_ / "model.cff").string();
    cff::train::train(o);
    o.objective = "ce";
    o.network.widths = {8, 16};
    o.run_dir = (root_ / "judge-run").string();
    o.export_path = judge_ = (root_ / "judge.cff").string();
    cff::train::train(o);

    // A short synthetic video: a bright square moving over a noisy dark background.
    video_ = (root_ / "moving.avi").string();
    cv::VideoWriter writer(video_, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10, cv::Size(64, 48));
    ASSERT_TRUE(writer.isOpened());
    cv::RNG rng(1);
    for (int i = 0; i < 30; ++i) {
      cv::Mat frame(48, 64, CV_8UC3);
      rng.fill(frame, cv::RNG::UNIFORM, 0, 60);
      cv::rectangle(frame, cv::Rect(i, 10, 20, 20), cv::Scalar(240, 240, 240), cv::FILLED);
      writer.write(frame);
    }
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static ToolRun run_tool(const std::string &args) {
    const char *build = std::getenv("CFF_BUILD_ROOT");
    if (!build) return {};
    const std::string exe = std::string(build) + "/tools/cff-eval";
    const auto out = (root_ / "stdout.txt").string(), err = (root_ / "stderr.txt").string();
    const int status = std::system((exe + " " + args + " > " + out + " 2> " + err).c_str());
    auto slurp = [](const std::string &path) {
      std::ifstream in(path);
      return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    };
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  }

  // Arguments for a run of a few seconds on the data slice.
  static std::string small_args(const std::string &out_dir) {
    return "--data " + data_.string() + " --out " + out_dir +
           " --limit 200 --fit 600 --ood-limit 100 --video-frames 12 --steps 2,4 --samples 20 --fid-images 50"
           " --sigmas 25,50 --denoise-images 20 --strip 2 --threads 1 --device cpu";
  }

  static json read_json(const fs::path &path) {
    std::ifstream in(path);
    return json::parse(in);
  }

  static inline fs::path root_, data_;
  static inline std::string model_, judge_, video_;
};

TEST_F(EvalTool, WritesTheReportWithEveryPartAndSensibleNumbers) {
  ASSERT_NE(std::getenv("CFF_BUILD_ROOT"), nullptr) << "run through meson test";
  const auto dir = root_ / "report";
  const auto r = run_tool(model_ + " " + small_args(dir.string()) + " --judge " + judge_ + " --ood uniform,inverted," + video_ +
                          " --denoise-video " + video_ + " --denoise-video-frames 2");
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(fs::exists(dir / "report.md"));
  ASSERT_TRUE(fs::exists(dir / "summary.json"));
  const auto s = read_json(dir / "summary.json");
  for (const char *key : {"model", "data", "classification", "ood", "generation", "denoising", "seconds", "files"}) {
    EXPECT_TRUE(s.contains(key)) << key;
  }

  // Classification: the accuracy is the one computed here another way, and the tables add up.
  const auto &c = s["classification"];
  auto model = cff::load_model(model_);
  auto test = cff::data::load_idx_folder(data_.string(), "test");
  const auto logits = cff::data::batched_logits(model.logits_function(), test.normalized().slice(0, 0, 200), model.device);
  EXPECT_DOUBLE_EQ(c["accuracy"].get<double>(), cff::data::accuracy(logits, test.labels.slice(0, 0, 200)));
  EXPECT_GT(c["accuracy"].get<double>(), 0.25);  // chance is 0.1
  int64_t per_class_total = 0, confusion_total = 0, diagonal = 0;
  for (const auto &row : c["per_class"]) per_class_total += row["images"].get<int64_t>();
  for (size_t i = 0; i < c["confusion"].size(); ++i) {
    for (size_t j = 0; j < c["confusion"][i].size(); ++j) confusion_total += c["confusion"][i][j].get<int64_t>();
    diagonal += c["confusion"][i][i].get<int64_t>();
  }
  EXPECT_EQ(per_class_total, 200);
  EXPECT_EQ(confusion_total, 200);
  EXPECT_EQ(diagonal, std::lround(200 * c["accuracy"].get<double>()));
  EXPECT_GE(c["ece"].get<double>(), 0.0);
  EXPECT_LT(c["ece"].get<double>(), 0.5);

  // OOD: uniform noise is easy for the energy; every score has all three figures; the video was read.
  const auto &sets = s["ood"]["sets"];
  ASSERT_EQ(sets.size(), 3u);
  EXPECT_EQ(sets[0]["name"], "uniform");
  EXPECT_GT(sets[0]["energy"]["auroc"].get<double>(), 0.9);
  EXPECT_EQ(sets[2]["kind"], "video");
  EXPECT_EQ(sets[2]["images"], 12);
  for (const auto &set : sets) {
    for (const auto &score : cff::ood_score_names()) {
      for (const char *figure : {"auroc", "aupr", "fpr95"}) {
        ASSERT_TRUE(set[score][figure].is_number()) << set["name"] << " " << score << " " << figure;
        EXPECT_GE(set[score][figure].get<double>(), 0.0);
        EXPECT_LE(set[score][figure].get<double>(), 1.0);
      }
    }
  }
  // The test's models carry their fitted scores; cff-eval uses them as the file has them.
  EXPECT_EQ(s["ood"]["fit"]["by"], "the model file");
  EXPECT_EQ(s["ood"]["scores"].get<std::vector<std::string>>(), cff::ood_score_names());

  // Generation: two step counts, two samples per class, judge figures present.
  const auto &g = s["generation"];
  EXPECT_EQ(g["per_class"], 2);
  ASSERT_EQ(g["runs"].size(), 2u);
  for (const auto &run : g["runs"]) {
    EXPECT_TRUE(run["judge_agreement"].is_number());
    EXPECT_TRUE(run["model_agreement"].is_number());
    EXPECT_GT(run["fid"].get<double>(), 0.0);
    EXPECT_EQ(run["judge_agreement_per_class"].size(), 10u);
  }

  // Denoising: noise lowers PSNR in step with sigma, and both denoisers improve on the noisy images at sigma 50.
  const auto &rows = s["denoising"]["rows"];
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_GT(rows[0]["noisy"]["psnr"].get<double>(), rows[1]["noisy"]["psnr"].get<double>() + 3);
  EXPECT_GT(rows[1]["nlm"]["psnr"].get<double>(), rows[1]["noisy"]["psnr"].get<double>());
  EXPECT_GT(rows[1]["cff"]["psnr"].get<double>(), rows[1]["noisy"]["psnr"].get<double>());
  EXPECT_LT(rows[1]["noisy"]["ssim"].get<double>(), 1.0);
  // The estimate is in the right range (low: noise clipped at the black background of these images has a
  // smaller spread than sigma), and the denoiser with it still helps at sigma 50.
  EXPECT_GT(rows[1]["sigma_estimated_mean"].get<double>(), 25.0);
  EXPECT_LT(rows[1]["sigma_estimated_mean"].get<double>(), 60.0);
  EXPECT_GT(rows[1]["cff_estimated"]["psnr"].get<double>(), rows[1]["noisy"]["psnr"].get<double>());
  // Natural frames, tiled: two frames, both levels, all figures.
  const auto &video_rows = s["denoising"]["video"]["rows"];
  EXPECT_EQ(s["denoising"]["video"]["frames"], 2);
  ASSERT_EQ(video_rows.size(), 2u);
  for (const auto &row : video_rows) {
    for (const char *method : {"noisy", "cff", "cff_estimated", "nlm"}) EXPECT_TRUE(row[method]["psnr"].is_number()) << method;
  }
  EXPECT_GT(video_rows[1]["nlm"]["psnr"].get<double>(), video_rows[1]["noisy"]["psnr"].get<double>());

  // Every figure exists as a PNG and is linked from the report.
  std::ifstream md_in(dir / "report.md");
  const std::string md((std::istreambuf_iterator<char>(md_in)), std::istreambuf_iterator<char>());
  ASSERT_GE(s["files"].size(), 1u + 1 + 3 + 2 + 2);  // confusion, ROC, 3 histograms, 2 grids, 2 strips
  for (const auto &file : s["files"]) {
    const auto name = file.get<std::string>();
    std::ifstream png(dir / name, std::ios::binary);
    std::string magic(8, '\0');
    png.read(&magic[0], 8);
    EXPECT_EQ(magic, std::string("\x89PNG\r\n\x1a\n", 8)) << name;
    EXPECT_NE(md.find("](" + name + ")"), std::string::npos) << name;
  }
  for (const char *heading : {"## Classification", "## Out-of-distribution detection", "## Conditional generation", "## Denoising"}) {
    EXPECT_NE(md.find(heading), std::string::npos) << heading;
  }
  // The console summary carries the headline numbers.
  EXPECT_NE(r.out.find("classification: accuracy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("uniform"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("moving.avi"), std::string::npos) << r.out;
}

TEST_F(EvalTool, WithoutAJudgeTheJudgeMetricsAreSkippedAndSaidSo) {
  const auto dir = root_ / "no-judge";
  const auto r = run_tool(model_ + " " + small_args(dir.string()) + " --skip ood,denoising --steps 3");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto s = read_json(dir / "summary.json");
  EXPECT_FALSE(s.contains("ood"));
  EXPECT_FALSE(s.contains("denoising"));
  EXPECT_TRUE(s["generation"]["judge"].is_null());
  ASSERT_EQ(s["generation"]["runs"].size(), 1u);
  EXPECT_TRUE(s["generation"]["runs"][0]["judge_agreement"].is_null());
  EXPECT_TRUE(s["generation"]["runs"][0]["fid"].is_null());
  EXPECT_TRUE(s["generation"]["runs"][0]["model_agreement"].is_number());
  std::ifstream md_in(dir / "report.md");
  const std::string md((std::istreambuf_iterator<char>(md_in)), std::istreambuf_iterator<char>());
  EXPECT_NE(md.find("No `--judge` model was given"), std::string::npos);
  EXPECT_NE(r.out.find("judge none: judge metrics skipped"), std::string::npos) << r.out;
}

TEST_F(EvalTool, RobustnessPartRunsOnlyWithAttacksAndReportsEach) {
  const auto dir = root_ / "robustness";
  const auto r = run_tool(model_ + " " + small_args(dir.string()) +
                          " --skip ood,generation,denoising --attack pgd-linf:eps=0.1,steps=5 --attack fgsm:eps=0.1"
                          " --attack-images 40 --attack-transfer " + judge_);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto s = read_json(dir / "summary.json");
  ASSERT_TRUE(s.contains("robustness"));
  const auto &rb = s["robustness"];
  EXPECT_EQ(rb["images"], 40);
  ASSERT_EQ(rb["attacks"].size(), 2u);
  EXPECT_EQ(rb["attacks"][0]["attack"], "pgd-linf:eps=0.1,steps=5,restarts=1,loss=ce,target=none,energy=0,seed=0");
  EXPECT_LT(rb["attacks"][0]["accuracy"].get<double>(), rb["clean_accuracy"].get<double>());
  EXPECT_EQ(rb["masking_checks"].size(), 7u);  // with the transfer check
  std::ifstream md_in(dir / "report.md");
  const std::string md((std::istreambuf_iterator<char>(md_in)), std::istreambuf_iterator<char>());
  EXPECT_NE(md.find("## Adversarial robustness"), std::string::npos);
  EXPECT_NE(r.out.find("gradient-masking checks:"), std::string::npos) << r.out;
  // Without --attack there is no robustness part.
  const auto plain = root_ / "no-attack";
  ASSERT_EQ(run_tool(model_ + " " + small_args(plain.string()) + " --skip ood,generation,denoising").code, 0);
  EXPECT_FALSE(read_json(plain / "summary.json").contains("robustness"));
}

TEST_F(EvalTool, ComparesTheSamplersAtEqualStepCountsWithAGridEach) {
  const auto dir = root_ / "samplers";
  const auto r = run_tool(model_ + " " + small_args(dir.string()) +
                          " --skip classification,ood,denoising --steps 3 --samplers centripetal,langevin,ascent --guidance 2 --unconditional --judge " + judge_);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto s = read_json(dir / "summary.json");
  const auto &g = s["generation"];
  for (const char *name : {"centripetal", "langevin", "ascent"}) EXPECT_TRUE(g["samplers"].contains(name)) << name;
  EXPECT_EQ(g["samplers"]["centripetal"]["guidance"], 2.0);
  ASSERT_EQ(g["runs"].size(), 3u);
  std::set<std::string> grids;
  std::vector<std::string> order;
  for (const auto &run : g["runs"]) {
    order.push_back(run["sampler"].get<std::string>());
    EXPECT_EQ(run["steps"], 3);
    EXPECT_TRUE(run["judge_agreement"].is_number());
    EXPECT_GT(run["fid"].get<double>(), 0.0);
    const auto grid = run["grid_png"].get<std::string>();
    EXPECT_TRUE(fs::exists(dir / grid)) << grid;
    grids.insert(grid);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"centripetal", "langevin", "ascent"}));
  for (const auto &run : g["runs"]) {
    ASSERT_EQ(run["diversity_per_class"].size(), 10u);
    EXPECT_GT(run["diversity_min"].get<double>(), 0.0);
    EXPECT_LE(run["diversity_min"].get<double>(), run["diversity_mean"].get<double>());
  }
  // Unconditional: one run per step count, judged for confidence and class spread.
  ASSERT_EQ(g["unconditional"].size(), 1u);
  const auto &u = g["unconditional"][0];
  EXPECT_EQ(u["conditional"], false);
  EXPECT_GE(u["judge_confident"].get<double>(), 0.0);
  EXPECT_LE(u["judge_confident"].get<double>(), 1.0);
  ASSERT_EQ(u["judge_classes"].size(), 10u);
  double share_sum = 0;
  for (const auto &share : u["judge_classes"]) share_sum += share.get<double>();
  EXPECT_NEAR(share_sum, 1.0, 1e-9);
  EXPECT_GT(u["diversity"].get<double>(), 0.0);
  EXPECT_TRUE(fs::exists(dir / u["grid_png"].get<std::string>()));
  EXPECT_EQ(grids, (std::set<std::string>{"samples-3-steps.png", "samples-langevin-3-steps.png", "samples-ascent-3-steps.png"}));
  EXPECT_EQ(u["grid_png"], "samples-unconditional-3-steps.png");
  // The samplers start from different noise (Gaussian vs uniform) and walk differently: their samples differ.
  EXPECT_NE(g["runs"][0]["fid"].get<double>(), g["runs"][1]["fid"].get<double>());
  EXPECT_NE(g["runs"][1]["fid"].get<double>(), g["runs"][2]["fid"].get<double>());
  std::ifstream md_in(dir / "report.md");
  const std::string md((std::istreambuf_iterator<char>(md_in)), std::istreambuf_iterator<char>());
  EXPECT_NE(md.find("| langevin | 3 |"), std::string::npos) << md;
  EXPECT_NE(md.find("### Unconditional samples"), std::string::npos) << md;

  // The centripetal settings reach the sampler: the same run at guidance 0 (the unconditional force) and at
  // another start time gives other samples.
  for (const std::string settings : {"--guidance 0", "--t-start 400", "--eta 0"}) {
    const auto other_dir = root_ / ("samplers-" + settings.substr(2, settings.find(' ') - 2));
    const auto other = run_tool(model_ + " " + small_args(other_dir.string()) + " --skip classification,ood,denoising --steps 3 " +
                                "--guidance 2 " + settings + " --judge " + judge_);
    ASSERT_EQ(other.code, 0) << other.err;
    const auto o = read_json(other_dir / "summary.json");
    EXPECT_NE(o["generation"]["runs"][0]["fid"].get<double>(), g["runs"][0]["fid"].get<double>()) << settings;
  }
  EXPECT_NE(r.out.find("ascent"), std::string::npos) << r.out;
}

TEST_F(EvalTool, CorruptOrMissingInputsFailInOneLineWithExitOne_n) {
  const auto corrupt = (root_ / "corrupt.cff").string();
  fs::copy_file(model_, corrupt, fs::copy_options::overwrite_existing);
  {
    std::fstream f(corrupt, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x5a');
  }
  const auto out = (root_ / "bad-run").string();
  auto r = run_tool(corrupt + " " + small_args(out));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "cff-eval: " + corrupt + ": checksum mismatch (the file is corrupt)\n");
  EXPECT_FALSE(fs::exists(fs::path(out) / "summary.json"));

  r = run_tool((root_ / "missing.cff").string() + " " + small_args(out));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("cff-eval: " + (root_ / "missing.cff").string() + ": cannot open", 0), 0u) << r.err;

  r = run_tool(model_ + " " + small_args(out) + " --judge " + corrupt);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(corrupt + ": checksum mismatch"), std::string::npos) << r.err;

  const auto not_video = (root_ / "notes.avi").string();
  std::ofstream(not_video) << "this is not a video\n";
  r = run_tool(model_ + " " + small_args(out) + " --ood uniform," + not_video);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.substr(r.err.find("cff-eval: " + not_video)), "cff-eval: " + not_video + ": cannot open as a video\n") << r.err;

  r = run_tool(model_ + " " + small_args(out) + " --ood " + (root_ / "gone.mp4").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("gone.mp4: file not found"), std::string::npos) << r.err;

  r = run_tool(model_ + " " + small_args(out) + " --data " + (root_ / "nowhere").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("nowhere: dataset folder not found"), std::string::npos) << r.err;
}

TEST_F(EvalTool, BadOptionsAreUsageErrorsWithExitTwo_n) {
  auto r = run_tool(model_ + " --limit many");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')), "cff-eval: --limit: 'many' is not an integer");
  r = run_tool(model_ + " --bogus 1");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown option --bogus"), std::string::npos);
  r = run_tool("--limit 5");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no model file given"), std::string::npos);
  r = run_tool(model_ + " --steps 0");
  EXPECT_EQ(r.code, 2);
  r = run_tool(model_ + " --skip everything");
  EXPECT_EQ(r.code, 2);
  r = run_tool(model_ + " --device tpu");
  EXPECT_EQ(r.code, 2);
  r = run_tool(model_ + " --guidance -1");
  EXPECT_EQ(r.code, 2);
  r = run_tool(model_ + " --eta 2");
  EXPECT_EQ(r.code, 2);
  r = run_tool(model_ + " --attack pgd-linf:eps=abc");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--attack: attack: eps='abc' is not a number"), std::string::npos) << r.err;
  r = run_tool(model_ + " --samplers centripetal,mcmc");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--samplers: unknown sampler 'mcmc' (centripetal, langevin or ascent)"), std::string::npos) << r.err;

  r = run_tool("--help");
  EXPECT_EQ(r.code, 0);
  for (const char *option : {"--data", "--limit", "--out", "--ood", "--ood-limit", "--video-frames", "--fit", "--ridge",
                             "--judge", "--steps", "--samplers", "--guidance", "--t-start", "--eta", "--unconditional", "--samples", "--fid-images", "--grid-columns", "--sigmas",
                             "--denoise-images", "--denoise-video", "--denoise-video-frames", "--denoise-steps", "--nlm-h", "--nlm-h-max", "--strip", "--skip", "--batch", "--threads",
                             "--device", "--seed", "--help"}) {
    EXPECT_NE(r.out.find(std::string("  ") + option + " "), std::string::npos) << option;
  }
}

}  // namespace
