#include "video.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <torch/torch.h>

namespace fs = std::filesystem;

namespace cff::eval {
namespace {

torch::Tensor frame_to_tensor(const cv::Mat &frame, int64_t channels, int64_t height, int64_t width) {
  cv::Mat converted;
  if (channels == 1) {
    if (frame.channels() == 1) {
      converted = frame;
    } else {
      cv::cvtColor(frame, converted, frame.channels() == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
    }
  } else {
    if (frame.channels() == 1) {
      cv::cvtColor(frame, converted, cv::COLOR_GRAY2RGB);
    } else {
      cv::cvtColor(frame, converted, frame.channels() == 4 ? cv::COLOR_BGRA2RGB : cv::COLOR_BGR2RGB);
    }
  }
  if (converted.depth() != CV_8U) converted.convertTo(converted, CV_8U);
  const bool shrinking = converted.cols > width || converted.rows > height;
  cv::Mat resized;
  cv::resize(converted, resized, cv::Size(static_cast<int>(width), static_cast<int>(height)), 0, 0,
             shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  if (!resized.isContinuous()) resized = resized.clone();
  return torch::from_blob(resized.data, {height, width, channels}, torch::kUInt8)
      .permute({2, 0, 1})
      .to(torch::kFloat32)
      .div(127.5)
      .sub(1.0);
}

cv::VideoCapture open_video(const std::string &path) {
  cv::VideoCapture capture(path, cv::CAP_FFMPEG);
  if (!capture.isOpened()) capture.open(path, cv::CAP_ANY);
  if (!capture.isOpened()) throw std::runtime_error(path + ": cannot open as a video");
  return capture;
}

}  // namespace

bool looks_like_video(const std::string &name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::vector<std::string> known = {".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg",
                                                 ".mpeg", ".m4v", ".ogv", ".wmv", ".flv", ".ts"};
  if (std::find(known.begin(), known.end(), ext) != known.end()) return true;
  std::error_code error;
  return fs::is_regular_file(name, error);
}

torch::Tensor read_video_frames(const std::string &path, int64_t max_frames, int64_t channels, int64_t height,
                                int64_t width) {
  if (channels != 1 && channels != 3) throw std::runtime_error(path + ": videos convert to 1 or 3 channels only");
  if (max_frames < 1) throw std::runtime_error(path + ": at least one frame must be asked for");
  std::error_code error;
  if (!fs::exists(path, error)) throw std::runtime_error(path + ": file not found");
  auto capture = open_video(path);
  // The container's frame count can be missing or wrong; count by decoding headers when it is absent.
  auto total = static_cast<int64_t>(capture.get(cv::CAP_PROP_FRAME_COUNT));
  if (total <= 0) {
    total = 0;
    while (capture.grab()) ++total;
    capture = open_video(path);
  }
  if (total <= 0) throw std::runtime_error(path + ": no frame could be decoded");
  const int64_t wanted = std::min(max_frames, total);
  // Frames are decoded in order and only the chosen ones converted: seeking is unreliable in many codecs.
  std::vector<int64_t> chosen;
  for (int64_t k = 0; k < wanted; ++k) chosen.push_back(k * total / wanted);
  std::vector<torch::Tensor> frames;
  size_t next = 0;
  cv::Mat frame;
  for (int64_t index = 0; next < chosen.size() && capture.grab(); ++index) {
    if (index != chosen[next]) continue;
    ++next;
    if (capture.retrieve(frame) && !frame.empty()) frames.push_back(frame_to_tensor(frame, channels, height, width));
  }
  if (frames.empty()) throw std::runtime_error(path + ": no frame could be decoded");
  return torch::stack(frames);
}

}  // namespace cff::eval
