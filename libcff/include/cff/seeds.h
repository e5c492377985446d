// How one user seed becomes the seeds of many random streams. Torch-free, so the elements use it too.
#pragma once

#include <cstdint>

#pragma GCC visibility push(default)  // libcff exports what its public headers declare

namespace cff {

// 2^64 / golden ratio: Weyl-sequence increment of splitmix64, and the mask that splits a second stream
// off a seed. Both uses below; nowhere else.
constexpr uint64_t kGoldenGamma = 0x9e3779b97f4a7c15ULL;

// The seed of item `index` (a frame of cffgenerate, a batch of samples) of a run seeded with `seed`:
// splitmix64 (Steele, Lea and Flood 2014) of seed + gamma * (index + 1), gamma the golden-ratio increment,
// so neighbouring items get unrelated noise.
constexpr uint64_t derive_seed(uint64_t seed, uint64_t index) {
  uint64_t z = seed + kGoldenGamma * (index + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A sampler's start noise and its per-step noise come from one seed: the step noise from `seed`, the
// start noise from this second stream of it (so a one-step and a ten-step run start from the same x_T).
constexpr uint64_t start_noise_seed(uint64_t seed) { return seed ^ kGoldenGamma; }

}  // namespace cff
#pragma GCC visibility pop
