// Precompiled header for libcff, the trainer and the tests: LibTorch's headers dominate compile time.
#pragma once
#include <torch/torch.h>
#include <nlohmann/json.hpp>
