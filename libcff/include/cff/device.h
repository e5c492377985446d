// Device selection and CPU threading, shared by every program and element.
#pragma once

#include <string>

#include <c10/core/Device.h>

#include "cff/threads.h"

#pragma GCC visibility push(default)  // libcff exports what its public headers declare

namespace cff {

// Parses "auto", "cpu", "cuda" or "cuda:N".
// "auto" picks cuda:0 when LibTorch was built with CUDA and a GPU is visible, else cpu.
// Throws std::invalid_argument naming the spec when it is malformed, or when CUDA is asked
// for but not available (the message says which).
c10::Device parse_device(const std::string &spec);

// Human-readable description, e.g. "cpu (2 threads)" or "cuda:0 (NVIDIA H100)".
std::string describe_device(const c10::Device &device);

}  // namespace cff
#pragma GCC visibility pop
