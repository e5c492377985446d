// Precompiled header for libcff, the trainer and the tests: LibTorch's headers dominate compile time.
#include <torch/torch.h>
#include <nlohmann/json.hpp>
