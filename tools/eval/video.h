// Video files as an out-of-distribution set: frames sampled evenly through the file and converted the
// way image-folder datasets are (grey or RGB, resized to the model's size with INTER_AREA when shrinking,
// bilinear when growing, pixels p mapped to p / 127.5 - 1).
#pragma once

#include <cstdint>
#include <string>

#include <torch/types.h>

namespace cff::eval {

// Whether `name` should be read as a video: an existing regular file, or a name ending in a video
// extension (.avi, .mp4, .mkv, .mov, .webm, .mpg, .mpeg, .m4v, .ogv, .wmv, .flv, .ts), any case.
bool looks_like_video(const std::string &name);

// Up to max_frames frames spread evenly over the video: float [N, channels, height, width] in [-1, 1].
// channels is 1 (grey) or 3 (RGB). Throws std::runtime_error "<path>: <reason>" when the file is missing,
// cannot be opened as a video, or no frame decodes.
torch::Tensor read_video_frames(const std::string &path, int64_t max_frames, int64_t channels, int64_t height,
                                int64_t width);

}  // namespace cff::eval
