// cff-make-clip: renders dataset test images into a video file (Motion-JPEG AVI, which GStreamer's
// decodebin plays with the stock plugins), optionally interleaved with segments of a natural video
// (out-of-distribution frames) and with Gaussian noise added, and writes the ground truth of every
// frame as CSV. The clips that the pipelines, tests and benchmarks classify, denoise and flag come from here.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <unistd.h>

#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "data/datasets.h"
#include "support/cli.h"
#include "support/files.h"

namespace {

struct Options {
  std::string data = "fashion-mnist";
  std::string out;
  std::string truth;
  std::string ood_video;
  int64_t frames = 100;
  int64_t ood_frames = 0;
  int64_t segment = 10;
  int64_t width = 224, height = 224;
  int64_t start = 0;
  double fps = 10;
  double noise = 0;
  uint64_t seed = 0;
};

// Exits 0 after --help, 2 with a one-line reason on a bad command line.
Options parse(int argc, char **argv) {
  Options o;
  using cff::cli::to_int;
  using cff::cli::UsageError;
  const auto non_negative = [](const std::string &name, const std::string &v) {
    const double x = cff::cli::to_double(name, v);
    if (x < 0) throw UsageError("--" + name + ": must not be negative");
    return x;
  };
  const std::vector<cff::cli::Option> options = {
      {"out", "FILE", "the clip to write (.avi) (required)", [&](auto v) { o.out = v; }},
      {"truth", "FILE", "ground truth CSV: frame,kind,label,name [OUT with .csv]", [&](auto v) { o.truth = v; }},
      {"data", "SPEC", "dataset whose test split is rendered [fashion-mnist]", [&](auto v) { o.data = v; }},
      {"frames", "N", "in-distribution frames, one test image each [100]", [&](auto v) { o.frames = to_int("frames", v, 0); }},
      {"start", "N", "index of the first test image [0]", [&](auto v) { o.start = to_int("start", v, 0); }},
      {"ood-video", "FILE", "natural video to take out-of-distribution frames from", [&](auto v) { o.ood_video = v; }},
      {"ood-frames", "N", "frames taken evenly from --ood-video [0]", [&](auto v) { o.ood_frames = to_int("ood-frames", v, 0); }},
      {"segment", "N", "frames per segment when both kinds alternate [10]", [&](auto v) { o.segment = to_int("segment", v, 1); }},
      {"size", "WxH", "frame size, 8x8 to 4096x4096; images are scaled up with nearest-neighbour [224x224]", [&](auto v) {
         std::tie(o.width, o.height) = cff::cli::to_size("size", v);
         if (o.width < 8 || o.height < 8 || o.width > 4096 || o.height > 4096) {
           throw UsageError("--size: must be between 8x8 and 4096x4096, got '" + v + "'");
         }
       }},
      {"fps", "X", "frame rate [10]", [&](auto v) {
         o.fps = non_negative("fps", v);
         if (o.fps <= 0) throw UsageError("--fps: must be positive");
       }},
      {"noise", "SIGMA", "standard deviation of Gaussian noise, 0-255 units [0]", [&](auto v) { o.noise = non_negative("noise", v); }},
      {"seed", "N", "seed of the noise [0]", [&](auto v) { o.seed = static_cast<uint64_t>(to_int("seed", v, 0)); }},
  };
  const cff::cli::Program program{
      "cff-make-clip", "--out CLIP.avi [options]",
      "\nRenders test images of a dataset into a Motion-JPEG AVI clip, optionally with segments of a\n"
      "natural video between them (out-of-distribution frames) and Gaussian noise on every frame."};
  cff::cli::parse_or_exit(argc, argv, options, program);
  if (o.out.empty()) cff::cli::usage_exit(program, "--out is required");
  if (o.truth.empty()) o.truth = std::filesystem::path(o.out).replace_extension(".csv").string();
  if (o.ood_frames > 0 && o.ood_video.empty()) cff::cli::usage_exit(program, "--ood-frames needs --ood-video");
  if (o.frames + o.ood_frames == 0) cff::cli::usage_exit(program, "the clip would have no frames");
  return o;
}

// A dataset image (uint8 [C, H, W]) as a BGR frame of the clip's size, scaled up without smoothing.
cv::Mat render_image(const torch::Tensor &image, int64_t width, int64_t height) {
  auto img = image.contiguous();
  const int c = static_cast<int>(img.size(0)), h = static_cast<int>(img.size(1)), w = static_cast<int>(img.size(2));
  cv::Mat planar(c * h, w, CV_8UC1, img.data_ptr<uint8_t>());
  cv::Mat bgr;
  if (c == 1) {
    cv::cvtColor(planar, bgr, cv::COLOR_GRAY2BGR);
  } else {
    std::vector<cv::Mat> planes;  // dataset images are RGB planes
    for (int k = c - 1; k >= 0; --k) planes.push_back(planar.rowRange(k * h, (k + 1) * h).clone());
    cv::merge(planes, bgr);
  }
  cv::Mat out;
  cv::resize(bgr, out, cv::Size(static_cast<int>(width), static_cast<int>(height)), 0, 0, cv::INTER_NEAREST);
  return out;
}

// `count` frames spread evenly over a video, centre-cropped to the clip's aspect ratio and resized.
std::vector<cv::Mat> read_video_frames(const std::string &path, int64_t count, int64_t width, int64_t height) {
  if (!std::filesystem::exists(path)) throw std::runtime_error(path + ": no such file");
  // Two passes (count, then keep only the frames picked) so a long video never sits in memory whole.
  int64_t total = 0;
  {
    cv::VideoCapture cap(path);
    if (!cap.isOpened()) throw std::runtime_error(path + ": cannot be opened as a video");
    while (cap.grab()) ++total;
  }
  if (total == 0) throw std::runtime_error(path + ": no frames could be decoded");
  std::vector<cv::Mat> all;
  cv::VideoCapture cap(path);
  cv::Mat frame;
  int64_t index = 0;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t want = (i * total) / count;
    while (index <= want) {
      if (!cap.read(frame) || frame.empty()) throw std::runtime_error(path + ": frame " + std::to_string(index) + " could not be decoded");
      ++index;
    }
    all.push_back(frame.clone());
  }
  std::vector<cv::Mat> picked;
  const double target_aspect = static_cast<double>(width) / static_cast<double>(height);
  for (int64_t i = 0; i < count; ++i) {
    const auto &src = all[static_cast<size_t>(i)];
    int cw = src.cols, ch = src.rows;
    if (static_cast<double>(cw) / ch > target_aspect) cw = static_cast<int>(std::lround(ch * target_aspect));
    else ch = static_cast<int>(std::lround(cw / target_aspect));
    cv::Mat crop = src(cv::Rect((src.cols - cw) / 2, (src.rows - ch) / 2, cw, ch)), out;
    cv::resize(crop, out, cv::Size(static_cast<int>(width), static_cast<int>(height)), 0, 0, cv::INTER_AREA);
    picked.push_back(out);
  }
  return picked;
}

}  // namespace

int main(int argc, char **argv) {
  const Options o = parse(argc, argv);
  try {
    cff::data::Dataset data;
    if (o.frames > 0) {
      data = cff::data::load_dataset(o.data, "test");
      if (o.start + o.frames > data.size()) {
        throw std::runtime_error(o.data + ": the test split has " + std::to_string(data.size()) + " images, asked for " +
                                 std::to_string(o.start + o.frames));
      }
    }
    std::vector<cv::Mat> ood;
    if (o.ood_frames > 0) ood = read_video_frames(o.ood_video, o.ood_frames, o.width, o.height);

    // Write to a temporary name and rename, so an interrupted run never leaves a half clip behind.
    const std::string tmp = o.out + ".tmp." + std::to_string(::getpid()) + ".avi";
    cv::VideoWriter writer(tmp, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), o.fps,
                           cv::Size(static_cast<int>(o.width), static_cast<int>(o.height)), true);
    if (!writer.isOpened()) throw std::runtime_error(o.out + ": cannot open a Motion-JPEG writer");
    writer.set(cv::VIDEOWRITER_PROP_QUALITY, 95);
    std::ostringstream truth;
    truth << "frame,kind,label,name\n";
    std::mt19937_64 rng(o.seed);
    std::normal_distribution<float> normal(0.0f, static_cast<float>(o.noise));
    int64_t next_in = 0, next_ood = 0, frame_index = 0;
    bool in_turn = true;
    while (next_in < o.frames || next_ood < o.ood_frames) {
      const bool take_in = next_ood >= o.ood_frames || (next_in < o.frames && in_turn);
      for (int64_t k = 0; k < o.segment; ++k) {
        cv::Mat frame;
        if (take_in && next_in < o.frames) {
          const int64_t idx = o.start + next_in++;
          frame = render_image(data.images[idx], o.width, o.height);
          const int64_t label = data.labels[idx].item<int64_t>();
          truth << frame_index << ",in," << label << "," << data.classes.at(static_cast<size_t>(label)) << "\n";
        } else if (!take_in && next_ood < o.ood_frames) {
          frame = ood[static_cast<size_t>(next_ood++)];
          truth << frame_index << ",ood,-1,ood\n";
        } else {
          break;
        }
        if (o.noise > 0) {
          cv::Mat noisy(frame.size(), CV_32FC3);
          frame.convertTo(noisy, CV_32FC3);
          for (auto it = noisy.begin<cv::Vec3f>(); it != noisy.end<cv::Vec3f>(); ++it) {
            const float n = normal(rng);  // the same noise on the three channels keeps gray images gray
            (*it)[0] += n;
            (*it)[1] += n;
            (*it)[2] += n;
          }
          noisy.convertTo(frame, CV_8UC3);  // saturates to 0..255
        }
        writer.write(frame);
        ++frame_index;
      }
      in_turn = !in_turn;
    }
    writer.release();
    std::filesystem::rename(tmp, o.out);
    cff::files::write_atomically(o.truth, truth.str());
    std::string what = std::to_string(o.frames) + " " + o.data + " test images";
    if (o.ood_frames > 0) what += ", " + std::to_string(o.ood_frames) + " frames of " + o.ood_video;
    char noise[64] = "";
    if (o.noise > 0) std::snprintf(noise, sizeof noise, ", noise sigma %g", o.noise);
    std::printf("cff-make-clip: wrote %s (%ld frames: %s; %ldx%ld at %g fps%s) and %s\n", o.out.c_str(),
                static_cast<long>(frame_index), what.c_str(), static_cast<long>(o.width), static_cast<long>(o.height),
                o.fps, noise, o.truth.c_str());
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "cff-make-clip: %s\n", e.what());
    return 1;
  }
}
