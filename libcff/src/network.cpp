#include "cff/network.h"

#include <algorithm>
#include <stdexcept>

#include <ATen/Context.h>
#include <ATen/ops/mkldnn_convolution.h>
#include <c10/util/variant.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/pooling.h>

namespace cff {
namespace {

int64_t fitting_groups(int64_t groups, int64_t channels) {
  int64_t g = std::max<int64_t>(1, std::min(groups, channels));
  while (channels % g != 0) --g;
  return g;
}

torch::Tensor apply_activation(const std::string &name, const torch::Tensor &x) {
  if (name == "silu") return torch::silu(x);
  if (name == "gelu") return torch::gelu(x);
  return torch::softplus(x);
}

// conv(x), through oneDNN when conv's weights are frozen (requires_grad off) and x is a CPU float
// tensor. LibTorch's own choice sends a single small image (batch 1, under 20480 input values: every
// stage after the first of our networks) to its im2col kernel, 10-20x slower than oneDNN for these
// shapes. Gradients with respect to x work (forces and sampling); a second derivative through the
// fast path does not, which is why trainable (unfrozen) weights always take conv(x).
torch::Tensor convolve(torch::nn::Conv2d &conv, const torch::Tensor &x) {
  const torch::Tensor &weight = conv->weight;
  const auto *padding = c10::get_if<torch::ExpandingArray<2>>(&conv->options.padding());
  const bool fast = at::hasMKLDNN() && !weight.requires_grad() && x.device().is_cpu() &&
                    x.scalar_type() == torch::kFloat && x.dim() == 4 && padding != nullptr &&
                    c10::holds_alternative<torch::enumtype::kZeros>(conv->options.padding_mode());
  if (!fast) return conv(x);
  return at::mkldnn_convolution(x.contiguous(), weight, conv->bias.defined() ? c10::optional<torch::Tensor>(conv->bias)
                                                                               : c10::nullopt,
                                **padding, *conv->options.stride(), *conv->options.dilation(),
                                conv->options.groups());
}

}  // namespace

nlohmann::json NetworkConfig::to_json() const {
  return {{"type", "resnet-gn"},         {"channels", channels}, {"height", height},
          {"width", width},              {"num_classes", num_classes}, {"widths", widths},
          {"blocks_per_stage", blocks_per_stage}, {"groups", groups}, {"activation", activation}};
}

NetworkConfig NetworkConfig::from_json(const nlohmann::json &j) {
  NetworkConfig c;
  auto field = [&](const char *name) -> const nlohmann::json & {
    if (!j.contains(name)) throw std::invalid_argument(std::string("network field '") + name + "' is missing");
    return j.at(name);
  };
  try {
    if (j.contains("type") && j.at("type").get<std::string>() != "resnet-gn") {
      throw std::invalid_argument("network type '" + j.at("type").get<std::string>() + "' is not supported");
    }
    c.channels = field("channels").get<int64_t>();
    c.height = field("height").get<int64_t>();
    c.width = field("width").get<int64_t>();
    c.num_classes = field("num_classes").get<int64_t>();
    c.widths = field("widths").get<std::vector<int64_t>>();
    c.blocks_per_stage = field("blocks_per_stage").get<int64_t>();
    c.groups = field("groups").get<int64_t>();
    c.activation = field("activation").get<std::string>();
  } catch (const nlohmann::json::exception &e) {
    throw std::invalid_argument(std::string("network config has a field of the wrong type: ") + e.what());
  }
  c.validate();
  return c;
}

void NetworkConfig::validate() const {
  auto check = [](bool ok, const std::string &what) {
    if (!ok) throw std::invalid_argument("network config: " + what);
  };
  check(channels >= 1 && channels <= 64, "channels must be in 1..64, got " + std::to_string(channels));
  check(height >= 1 && height <= kMaxSide && width >= 1 && width <= kMaxSide,
        "height and width must be in 1.." + std::to_string(kMaxSide) + ", got " + std::to_string(height) + "x" +
            std::to_string(width));
  check(num_classes >= 1 && num_classes <= 100000, "num_classes must be in 1..100000");
  check(!widths.empty() && widths.size() <= 8, "widths must have 1..8 stages");
  for (auto w : widths) check(w >= 1 && w <= 4096, "every width must be in 1..4096");
  check(blocks_per_stage >= 1 && blocks_per_stage <= 64, "blocks_per_stage must be in 1..64");
  check(groups >= 1, "groups must be >= 1");
  check(activation == "silu" || activation == "gelu" || activation == "softplus",
        "activation must be silu, gelu or softplus, got '" + activation + "'");
  // The field caps above bound every product below well inside int64.
  const int64_t parameters = parameter_count(), activations = largest_activation();
  check(parameters <= kMaxParameters, "the network would have " + std::to_string(parameters) +
                                          " weights, more than a cff network may have (" +
                                          std::to_string(kMaxParameters) + ")");
  check(activations <= kMaxActivations, "one image's largest feature map would hold " + std::to_string(activations) +
                                            " values, more than a cff network may have (" +
                                            std::to_string(kMaxActivations) + "): reduce the input size or widths");
}

namespace {
// A stride-2 convolution with padding 1: ceil(side / 2).
int64_t halved(int64_t side) { return (side + 1) / 2; }
}  // namespace

std::vector<int64_t> default_widths(int64_t height, int64_t width) {
  if (height < 1 || width < 1) throw std::invalid_argument("default_widths: the image size must be positive");
  std::vector<int64_t> widths = {32, 64, 128};
  int64_t side = halved(halved(std::max(height, width)));  // the third stage's side
  while (side > 8 && widths.size() < 8) {
    widths.push_back(std::min<int64_t>(widths.back() * 2, 256));
    side = halved(side);
  }
  return widths;
}

std::string describe_widths(const NetworkConfig &config) {
  int64_t h = config.height, w = config.width;
  std::string list;
  for (size_t stage = 0; stage < config.widths.size(); ++stage) {
    if (stage > 0) h = halved(h), w = halved(w);
    list += (stage > 0 ? "," : "") + std::to_string(config.widths[stage]);
  }
  return list + " (" + std::to_string(config.widths.size()) + " stages: the last one's maps are " + std::to_string(w) +
         "x" + std::to_string(h) + ")";
}

// Mirrors the constructors below: ClassifierImpl and ResidualBlockImpl (the test
// Network.ParameterCountIsComputedWithoutBuildingTheNetwork holds the two together).
int64_t NetworkConfig::parameter_count() const {
  const auto conv = [](int64_t in, int64_t out, int64_t k, bool bias) { return in * out * k * k + (bias ? out : 0); };
  const auto norm = [](int64_t c) { return 2 * c; };
  int64_t n = conv(channels, widths[0], 3, true);
  int64_t in = widths[0];
  for (size_t stage = 0; stage < widths.size(); ++stage) {
    const int64_t out = widths[stage];
    for (int64_t b = 0; b < blocks_per_stage; ++b) {
      const bool strided = stage > 0 && b == 0;
      n += norm(in) + conv(in, out, 3, false) + norm(out) + conv(out, out, 3, true);
      if (strided || in != out) n += conv(in, out, 1, false);
      in = out;
    }
  }
  return n + norm(in) + in * num_classes + num_classes;
}

int64_t NetworkConfig::largest_activation() const {
  int64_t largest = 0, h = height, w = width;
  for (size_t stage = 0; stage < widths.size(); ++stage) {
    if (stage > 0) h = halved(h), w = halved(w);
    largest = std::max(largest, widths[stage] * h * w);
  }
  return std::max(largest, channels * height * width);
}

ResidualBlockImpl::ResidualBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride, int64_t groups,
                                     const std::string &activation)
    : activation_(activation) {
  norm1_ = register_module("norm1", torch::nn::GroupNorm(fitting_groups(groups, in_channels), in_channels));
  conv1_ = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, out_channels, 3)
                                                          .stride(stride).padding(1).bias(false)));
  norm2_ = register_module("norm2", torch::nn::GroupNorm(fitting_groups(groups, out_channels), out_channels));
  conv2_ = register_module("conv2",
                           torch::nn::Conv2d(torch::nn::Conv2dOptions(out_channels, out_channels, 3).padding(1)));
  if (stride != 1 || in_channels != out_channels) {
    shortcut_ = register_module("shortcut", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, out_channels, 1)
                                                                  .stride(stride).bias(false)));
  }
}

torch::Tensor ResidualBlockImpl::activate(const torch::Tensor &x) const { return apply_activation(activation_, x); }

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor &x) {
  auto h = activate(norm1_(x));
  // Pre-activation ResNet: the projection shortcut sees the normalised input.
  auto skip = shortcut_ ? convolve(shortcut_, h) : x;
  h = convolve(conv1_, h);
  h = convolve(conv2_, activate(norm2_(h)));
  return skip + h;
}

ClassifierImpl::ClassifierImpl(const NetworkConfig &config) : config_(config) {
  config_.validate();
  stem_ = register_module("stem", torch::nn::Conv2d(torch::nn::Conv2dOptions(config_.channels, config_.widths[0], 3)
                                                        .padding(1)));
  blocks_ = register_module("blocks", torch::nn::Sequential());
  int64_t in = config_.widths[0];
  for (size_t stage = 0; stage < config_.widths.size(); ++stage) {
    const int64_t out = config_.widths[stage];
    for (int64_t b = 0; b < config_.blocks_per_stage; ++b) {
      const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      blocks_->push_back(ResidualBlock(in, out, stride, config_.groups, config_.activation));
      in = out;
    }
  }
  head_norm_ = register_module("head_norm", torch::nn::GroupNorm(fitting_groups(config_.groups, in), in));
  head_ = register_module("head", torch::nn::Linear(in, config_.num_classes));
}

torch::Tensor ClassifierImpl::features(const torch::Tensor &x) {
  auto h = blocks_->forward(convolve(stem_, x));
  h = apply_activation(config_.activation, head_norm_(h));
  return h.mean({2, 3});
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor &x) { return head_(features(x)); }

ClassifierImpl::Outputs ClassifierImpl::forward_with_features(const torch::Tensor &x) {
  const auto h = blocks_->forward(convolve(stem_, x));
  Outputs out;
  out.moments = torch::cat({h.mean({2, 3}), h.std({2, 3}, /*unbiased=*/false)}, 1);
  out.penultimate = apply_activation(config_.activation, head_norm_(h)).mean({2, 3});
  out.logits = head_(out.penultimate);
  return out;
}

int64_t ClassifierImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto &p : parameters()) n += p.numel();
  return n;
}

void freeze(torch::nn::Module &module) {
  for (auto &p : module.parameters()) p.set_requires_grad(false);
}

}  // namespace cff
