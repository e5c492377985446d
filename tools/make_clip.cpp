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
#include <vector>

#include <unistd.h>

#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "cff/model_file.h"
#include "datasets.h"

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

void usage(FILE *to) {
  std::fprintf(to,
               "usage: cff-make-clip --out CLIP.avi [options]\n\n"
               "Renders test images of a dataset into a Motion-JPEG AVI clip, optionally with segments of a\n"
               "natural video between them (out-of-distribution frames) and Gaussian noise on every frame.\n\n"
               "  --out FILE          the clip to write (.avi) (required)\n"
               "  --truth FILE        ground truth CSV: frame,kind,label,name [OUT with .csv]\n"
               "  --data SPEC         dataset whose test split is rendered [fashion-mnist]\n"
               "  --frames N          in-distribution frames, one test image each [100]\n"
               "  --start N           index of the first test image [0]\n"
               "  --ood-video FILE    natural video to take out-of-distribution frames from\n"
               "  --ood-frames N      frames taken evenly from --ood-video [0]\n"
               "  --segment N         frames per segment when both kinds alternate [10]\n"
               "  --size WxH          frame size; images are scaled up with nearest-neighbour [224x224]\n"
               "  --fps X             frame rate [10]\n"
               "  --noise SIGMA       standard deviation of Gaussian noise, 0-255 units [0]\n"
               "  --seed N            seed of the noise [0]\n"
               "  --help              show this help\n");
}

int64_t to_int(const std::string &name, const std::string &v) {
  size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(v, &used);
  } catch (const std::exception &) {
    used = 0;
  }
  if (used != v.size() || n < 0) throw std::invalid_argument("--" + name + " needs a non-negative integer, got '" + v + "'");
  return n;
}

double to_double(const std::string &name, const std::string &v) {
  size_t used = 0;
  double x = 0;
  try {
    x = std::stod(v, &used);
  } catch (const std::exception &) {
    used = 0;
  }
  if (used != v.size() || !std::isfinite(x) || x < 0) {
    throw std::invalid_argument("--" + name + " needs a non-negative number, got '" + v + "'");
  }
  return x;
}

Options parse(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help") {
      usage(stdout);
      std::exit(0);
    }
    if (a.rfind("--", 0) != 0 || i + 1 >= argc) throw std::invalid_argument("unexpected argument '" + a + "'");
    const std::string name = a.substr(2), v = argv[++i];
    if (name == "out") o.out = v;
    else if (name == "truth") o.truth = v;
    else if (name == "data") o.data = v;
    else if (name == "frames") o.frames = to_int(name, v);
    else if (name == "start") o.start = to_int(name, v);
    else if (name == "ood-video") o.ood_video = v;
    else if (name == "ood-frames") o.ood_frames = to_int(name, v);
    else if (name == "segment") o.segment = std::max<int64_t>(1, to_int(name, v));
    else if (name == "fps") o.fps = to_double(name, v);
    else if (name == "noise") o.noise = to_double(name, v);
    else if (name == "seed") o.seed = static_cast<uint64_t>(to_int(name, v));
    else if (name == "size") {
      const auto x = v.find('x');
      if (x == std::string::npos) throw std::invalid_argument("--size needs WxH, got '" + v + "'");
      o.width = to_int(name, v.substr(0, x));
      o.height = to_int(name, v.substr(x + 1));
      if (o.width < 8 || o.height < 8 || o.width > 4096 || o.height > 4096) {
        throw std::invalid_argument("--size must be between 8x8 and 4096x4096, got '" + v + "'");
      }
    } else {
      throw std::invalid_argument("unknown option '" + a + "'");
    }
  }
  if (o.out.empty()) throw std::invalid_argument("--out is required");
  if (o.truth.empty()) o.truth = std::filesystem::path(o.out).replace_extension(".csv").string();
  if (o.ood_frames > 0 && o.ood_video.empty()) throw std::invalid_argument("--ood-frames needs --ood-video");
  if (o.fps <= 0) throw std::invalid_argument("--fps must be positive");
  if (o.frames + o.ood_frames == 0) throw std::invalid_argument("the clip would have no frames");
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
  Options o;
  try {
    o = parse(argc, argv);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "cff-make-clip: %s (see --help)\n", e.what());
    return 2;
  }
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
    cff::write_file_atomically(o.truth, truth.str());
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
