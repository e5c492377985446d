// Shared fixture of the GStreamer tests: a small Fashion-MNIST classifier trained for seconds when
// a test first asks for it, saved with a calibrated OOD threshold, and held-out test images with
// reference results computed by libcff directly (not through cff::Engine or the element).
// Torch-free, so the test files that include it compile fast.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cff_gst_test {

constexpr int kSide = 28;  // Fashion-MNIST images are 28 x 28 grey

struct Sample {
  std::vector<uint8_t> pixels;  // kSide * kSide grey, row-major
  int label = 0;                // the dataset's label
  int reference_class = 0;      // argmax of the logits, computed with libcff
  double reference_confidence = 0.0;
  double reference_energy = 0.0;
};

struct TestModel {
  std::string path;                 // model file with metadata.ood calibrated
  std::string directory;            // temporary folder holding it (removed at exit)
  std::vector<std::string> labels;
  double threshold = 0.0;           // the calibrated threshold (keeps 95% of held-out images)
  std::vector<Sample> samples;      // held-out test images, not used for training or calibration
  double train_seconds = 0.0;
  double accuracy = 0.0;            // on `samples`
};

// Trains and saves the model once per process.
const TestModel &test_model();

// An untrained 3-channel model (input 3 x 12 x 16, 10 classes, mean = std = 0.5), saved once per
// process next to the test model: for the colour formats of the elements, not for quality.
const std::string &colour_model_path();

// gst_init, once.
void ensure_gst();

// Builds the pipeline and takes it NULL -> PLAYING -> NULL `cycles` times; every change must succeed
// and no error may reach the bus. Records failures with GoogleTest assertions.
void cycle_states(const std::string &pipeline_description, int cycles);

// Cycles for the state-cycling tests: CFF_STATE_CYCLES when set (tools/sanitize.sh sets 100
// for every element), else `fallback`.
int state_cycles(int fallback);

// A fresh path inside the test model's temporary folder.
std::string temporary_path(const std::string &name);

}  // namespace cff_gst_test
