// The classifier f(x) -> logits that every CFF quantity is computed from.
//
// A pre-activation residual CNN with GroupNorm and a smooth activation. No BatchNorm, ever:
// it couples the samples of a batch, so per-sample energies and forces would depend on the batch,
// and we differentiate through the network twice (smooth activations keep second derivatives useful).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#pragma GCC visibility push(default)  // libcff exports what its public headers declare

namespace cff {

struct NetworkConfig {
  int64_t channels = 1;     // C of the input images
  int64_t height = 28;      // H
  int64_t width = 28;       // W
  int64_t num_classes = 10; // K
  // One stage per entry; each stage after the first halves H and W.
  std::vector<int64_t> widths = {32, 64, 128};
  int64_t blocks_per_stage = 1;  // residual blocks in each stage
  int64_t groups = 8;            // GroupNorm groups (reduced until it divides the width)
  std::string activation = "silu";  // "silu", "gelu" or "softplus"

  nlohmann::json to_json() const;
  // Throws std::invalid_argument naming the field that is missing or out of range.
  static NetworkConfig from_json(const nlohmann::json &j);
  // Throws std::invalid_argument if a field is out of range, or if the network it declares is larger than
  // any cff network (kMaxParameters weights, kMaxActivations values in one image's largest feature map):
  // a model file's metadata cannot make loading or the first frame allocate gigabytes.
  void validate() const;
  // The number of weights the Classifier built from this config holds, computed without building it (a
  // model file's tensor table is checked against it first). Assumes a valid config.
  int64_t parameter_count() const;
  // The values of one image's largest feature map (channels x height x width over the stages).
  int64_t largest_activation() const;

  static constexpr int64_t kMaxSide = 1024;                   // height and width
  static constexpr int64_t kMaxParameters = int64_t{1} << 28;  // 1 GiB of float weights
  static constexpr int64_t kMaxActivations = int64_t{1} << 25; // 128 MiB of floats for one image
};

// The stage widths a new network gets for height x width inputs (cff-train's --widths auto): 32, 64, 128
// (the measured recipe's, docs/recipe.md) and one more stage per doubling of the larger side, twice as wide
// as the one before up to 256, until the last stage's maps are at most 8 pixels a side: 28x28 and 32x32
// get 3 stages (7x7 and 8x8 last), 64x64 4 (8x8), 128x128 5, ... at most 8 stages.
std::vector<int64_t> default_widths(int64_t height, int64_t width);
// A config's stages as cff-train prints them: "32,64,128 (3 stages: the last one's maps are 7x7)".
std::string describe_widths(const NetworkConfig &config);

class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride, int64_t groups,
                    const std::string &activation);
  torch::Tensor forward(const torch::Tensor &x);

 private:
  torch::Tensor activate(const torch::Tensor &x) const;
  std::string activation_;
  torch::nn::GroupNorm norm1_{nullptr}, norm2_{nullptr};
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, shortcut_{nullptr};
};
TORCH_MODULE(ResidualBlock);

class ClassifierImpl : public torch::nn::Module {
 public:
  explicit ClassifierImpl(const NetworkConfig &config);
  // x: [N, C, H, W] float in the model's input range ([-1, 1]); returns logits [N, K].
  torch::Tensor forward(const torch::Tensor &x);
  // Penultimate features [N, F] (after the final norm, activation and global pooling).
  torch::Tensor features(const torch::Tensor &x);
  // One pass for the OOD scores (ood.h): the logits, the penultimate features [N, F], and the moments
  // [N, 2F] of the last stage's feature maps before the head's norm (per-channel mean, then per-channel
  // standard deviation over the spatial positions).
  struct Outputs {
    torch::Tensor logits, penultimate, moments;
  };
  Outputs forward_with_features(const torch::Tensor &x);
  const NetworkConfig &config() const { return config_; }
  int64_t parameter_count() const;

 private:
  NetworkConfig config_;
  torch::nn::Conv2d stem_{nullptr};
  torch::nn::Sequential blocks_{nullptr};
  torch::nn::GroupNorm head_norm_{nullptr};
  torch::nn::Linear head_{nullptr};
};
TORCH_MODULE(Classifier);

// Turns off requires_grad on every parameter: inference and sampling still differentiate with
// respect to the input, but no parameter gradients are built or stored. The convolutions of a
// frozen network run through oneDNN (LibTorch's own choice is 10-20x slower for a single small image): first derivatives with respect to the input
// (forces, sampling) work, second derivatives (create_graph) do not.
void freeze(torch::nn::Module &module);

}  // namespace cff
#pragma GCC visibility pop
