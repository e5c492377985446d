// Throughput of the cffclassify element against the bare libcff forward pass it wraps, on the same
// frames, measured in one run with interleaved rounds so that load from other processes hits both
// alike. Optionally against a peer element doing the same job (tools/bench/python/cffclassify_py.py,
// factory pycffclassify), with the top-1 labels of the two compared frame by frame.
//
//   element: appsrc ! cffclassify model=M device=D threads=T ! fakesink  (frame conversion, the forward
//            pass and the GstVideoRegionOfInterestMeta included; one buffer per frame, as in a pipeline)
//   bare:    cff::Engine::classify on the already converted frames, one frame per call (what the
//            element does per frame), same engine, same threads
//   energy-only: the element on a copy of the model whose file carries the energy only (what classify
//            cost before the fitted OOD scores): the ratio to it is the per-frame cost of the model's
//            default score (issue target: at most 1.3x)
// The frame conversion alone (cff::gst::convert_region) is timed too, so that the element's cost
// beyond the forward pass splits into pixel work and GStreamer (buffers, threads, meta). Labels and
// free energies are read back from each element's "cff/classification" meta and compared.
//
// The frames are Fashion-MNIST test images (CFF_FASHION_MNIST_DIR or Debian's dataset-fashion-mnist),
// scaled to --size by nearest neighbour and converted to --format with GstVideoConverter.
//
// Usage: bench-classify [--model FILE] [--frames 200] [--threads 0] [--rounds 5] [--size WxH] [--format GRAY8]
//                       [--device auto] [--peer FACTORY] [--min-agreement F] [--json FILE]
// --min-agreement: exit with status 1 when cffclassify agrees with the bare labels (the peer with cffclassify's) on fewer
// than this fraction of frames (0..1; default 0: report only).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/gstvideometa.h>
#include <gst/video/video.h>
#include <nlohmann/json.hpp>

#include "cff/engine.h"
#include "cff/model_file.h"
#include "data/datasets.h"
#include "frame_convert.h"
#include "support/cli.h"
#include "support/files.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

constexpr int kTopK = 3;                  // cffclassify's default top-k, used by every path
constexpr gint64 kWaitLimitSeconds = 600;  // a pipeline that stalls this long has failed

struct Options {
  std::string model = "models/fashion-mnist-cff.cff";
  int frames = 200;
  int threads = 0;
  int rounds = 5;
  int width = 0, height = 0;  // 0: the model's size
  std::string format = "GRAY8";
  std::string device = "auto";
  std::string peer;  // factory name of a peer element, e.g. pycffclassify
  double min_agreement = 0.0;
  std::string json_path;
};

// Exits 0 after --help, 2 with a one-line reason on a bad command line.
Options parse_options(int argc, char **argv) {
  using cff::cli::to_int;
  Options o;
  const std::vector<cff::cli::Option> options = {
      {"model", "FILE", "model file [" + o.model + "]", [&](auto v) { o.model = v; }},
      {"frames", "N", "frames per round [200]", [&](auto v) { o.frames = static_cast<int>(to_int("frames", v, 1)); }},
      {"threads", "N", "LibTorch CPU threads (0 = all cores) [0]", [&](auto v) { o.threads = static_cast<int>(to_int("threads", v, 0)); }},
      {"rounds", "N", "interleaved rounds [5]", [&](auto v) { o.rounds = static_cast<int>(to_int("rounds", v, 1)); }},
      {"size", "WxH", "frame size [the model's]", [&](auto v) {
         const auto size = cff::cli::to_size("size", v);
         o.width = static_cast<int>(size.first);
         o.height = static_cast<int>(size.second);
       }},
      {"format", "FORMAT", "raw video format of the frames [GRAY8]", [&](auto v) {
         const GstVideoFormat format = gst_video_format_from_string(v.c_str());
         if (format == GST_VIDEO_FORMAT_UNKNOWN || !cff::gst::format_fits(format, cff::gst::FormatUse::read)) {
           throw cff::cli::UsageError("--format: " + v + " is not one of " +
                                      cff::gst::formats_caps(cff::gst::FormatUse::read));
         }
         o.format = v;
       }},
      {"device", "DEV", "auto, cpu, cuda or cuda:N [auto]", [&](auto v) { o.device = v; }},
      {"peer", "FACTORY", "a peer element timed on the same frames, e.g. pycffclassify", [&](auto v) { o.peer = v; }},
      {"min-agreement", "F", "exit 1 when the paths agree on fewer than this fraction of frames [0]",
       [&](auto v) { o.min_agreement = cff::cli::to_double("min-agreement", v); }},
      {"json", "FILE", "also write the results as JSON", [&](auto v) { o.json_path = v; }},
  };
  const cff::cli::Program program{
      "bench-classify", "[options]",
      "Frames/s of appsrc ! cffclassify ! fakesink against the bare libcff forward pass on the same frames\n"
      "(and against a peer element with --peer), interleaved in rounds; exit 1 below --min-agreement."};
  cff::cli::parse_or_exit(argc, argv, options, program);
  return o;
}

// The frames every path sees: video buffers (templates, copied before each element round so that the
// element gets writable buffers as in a live pipeline) and their model inputs for the bare path.
struct Frames {
  GstVideoInfo info;
  std::vector<GstBuffer *> buffers;
  std::vector<int> dataset_labels;
  std::vector<float> inputs;  // frames x C x H x W
  size_t per_frame = 0;

  Frames() = default;
  Frames(const Frames &) = delete;
  Frames &operator=(const Frames &) = delete;
  ~Frames() {
    for (auto *b : buffers) gst_buffer_unref(b);
  }
};

void render_frames(Frames &frames, const Options &o, const cff::ModelInfo &model) {
  const GstVideoFormat format = gst_video_format_from_string(o.format.c_str());  // checked by parse_options
  const int width = o.width ? o.width : model.width, height = o.height ? o.height : model.height;
  gst_video_info_set_format(&frames.info, format, static_cast<guint>(width), static_cast<guint>(height));
  GstVideoInfo grey;
  gst_video_info_set_format(&grey, GST_VIDEO_FORMAT_GRAY8, static_cast<guint>(width), static_cast<guint>(height));
  GstVideoConverter *converter = gst_video_converter_new(&grey, &frames.info, nullptr);
  if (!converter) throw std::runtime_error("no GstVideoConverter from GRAY8 to " + o.format);

  const auto dataset = cff::data::load_idx_folder(cff::data::fashion_mnist_dir(), "test");
  const auto images = dataset.images.contiguous();
  const int64_t side_h = images.size(2), side_w = images.size(3);
  const auto *pixels = images.data_ptr<uint8_t>();
  const cff::gst::InputLayout layout{model.channels, model.height, model.width, model.mean, model.std};
  frames.per_frame = static_cast<size_t>(model.channels) * model.height * model.width;
  frames.inputs.resize(frames.per_frame * static_cast<size_t>(o.frames));

  for (int i = 0; i < o.frames; ++i) {
    const int64_t index = i % images.size(0);
    const uint8_t *image = pixels + index * side_h * side_w;
    GstBuffer *grey_buffer = gst_buffer_new_allocate(nullptr, grey.size, nullptr);
    GstBuffer *buffer = gst_buffer_new_allocate(nullptr, frames.info.size, nullptr);
    GstVideoFrame grey_frame, frame;
    gst_video_frame_map(&grey_frame, &grey, grey_buffer, GST_MAP_WRITE);
    for (int y = 0; y < height; ++y) {
      auto *line = static_cast<uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&grey_frame, 0)) +
                   static_cast<ptrdiff_t>(y) * GST_VIDEO_FRAME_PLANE_STRIDE(&grey_frame, 0);
      const int64_t sy = y * side_h / height;
      for (int x = 0; x < width; ++x) line[x] = image[sy * side_w + x * side_w / width];
    }
    gst_video_frame_map(&frame, &frames.info, buffer, GST_MAP_WRITE);
    gst_video_converter_frame(converter, &grey_frame, &frame);
    cff::gst::convert_region(cff::gst::pixel_view(frame), cff::gst::Region{0, 0, width, height}, layout,
                             frames.inputs.data() + frames.per_frame * static_cast<size_t>(i));
    gst_video_frame_unmap(&frame);
    gst_video_frame_unmap(&grey_frame);
    gst_buffer_unref(grey_buffer);
    frames.buffers.push_back(buffer);
    frames.dataset_labels.push_back(static_cast<int>(dataset.labels[index].item<int64_t>()));
  }
  gst_video_converter_free(converter);
}

// appsrc ! <factory> ! fakesink, kept PLAYING across rounds; a probe on the sink pad counts the
// frames and reads the top-1 class of each from its "cff/classification" meta.
class ElementPipeline {
 public:
  ElementPipeline(const std::string &factory, const Options &o, const Frames &frames, const std::string &model_path)
      : factory_(factory) {
    g_mutex_init(&mutex_);
    g_cond_init(&cond_);
    GstCaps *caps = gst_video_info_to_caps(&frames.info);
    gchar *caps_string = gst_caps_to_string(caps);
    gst_caps_unref(caps);
    gchar *model = g_strescape(model_path.c_str(), nullptr);
    const std::string description = std::string("appsrc name=source format=time max-bytes=0 caps=\"") + caps_string +
                                    "\" ! " + factory + " model=\"" + model + "\" device=" + o.device +
                                    " threads=" + std::to_string(o.threads) +
                                    " ! fakesink name=sink sync=false async=false";
    g_free(model);
    g_free(caps_string);
    GError *error = nullptr;
    pipeline_ = gst_parse_launch(description.c_str(), &error);
    if (!pipeline_ || error) {
      const std::string reason = error ? error->message : "unknown error";
      g_clear_error(&error);
      if (pipeline_) gst_object_unref(pipeline_);
      pipeline_ = nullptr;
      throw std::runtime_error("cannot build '" + description + "': " + reason);
    }
    source_ = gst_bin_get_by_name(GST_BIN(pipeline_), "source");
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline_), "sink");
    GstPad *pad = gst_element_get_static_pad(sink, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, this, nullptr);
    gst_object_unref(pad);
    gst_object_unref(sink);
    labels_.assign(frames.buffers.size(), -2);
    energies_.assign(frames.buffers.size(), std::numeric_limits<double>::quiet_NaN());
    flagged_.assign(frames.buffers.size(), 0);
    if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
      std::string reason = "pipeline does not start";
      try {
        check_bus();
      } catch (const std::runtime_error &e) {
        reason = e.what();
      }
      gst_element_set_state(pipeline_, GST_STATE_NULL);
      gst_object_unref(source_);
      gst_object_unref(pipeline_);
      pipeline_ = nullptr;
      throw std::runtime_error(factory_ + ": " + reason);
    }
  }

  ~ElementPipeline() {
    if (pipeline_) {
      gst_app_src_end_of_stream(GST_APP_SRC(source_));
      gst_element_set_state(pipeline_, GST_STATE_NULL);
      gst_object_unref(source_);
      gst_object_unref(pipeline_);
    }
    g_cond_clear(&cond_);
    g_mutex_clear(&mutex_);
  }
  ElementPipeline(const ElementPipeline &) = delete;
  ElementPipeline &operator=(const ElementPipeline &) = delete;

  // Pushes every frame once and returns the seconds until the last one reached the sink.
  double run(const Frames &frames) {
    // Copies are made outside the timing: a real source hands the element fresh, writable buffers.
    std::vector<GstBuffer *> copies;
    copies.reserve(frames.buffers.size());
    for (auto *b : frames.buffers) copies.push_back(gst_buffer_copy_deep(b));
    const guint64 target = received_ + copies.size();
    const auto start = Clock::now();
    for (size_t i = 0; i < copies.size(); ++i) {
      GST_BUFFER_PTS(copies[i]) = next_pts_;
      GST_BUFFER_DURATION(copies[i]) = GST_SECOND / 30;
      GST_BUFFER_OFFSET(copies[i]) = i;  // the probe files the result under this frame index
      next_pts_ += GST_SECOND / 30;
      if (gst_app_src_push_buffer(GST_APP_SRC(source_), copies[i]) != GST_FLOW_OK) {
        for (size_t j = i + 1; j < copies.size(); ++j) gst_buffer_unref(copies[j]);
        check_bus();
        throw std::runtime_error(factory_ + ": appsrc refused a buffer");
      }
    }
    g_mutex_lock(&mutex_);
    const gint64 deadline = g_get_monotonic_time() + kWaitLimitSeconds * G_TIME_SPAN_SECOND;
    while (received_ < target) {
      const gint64 poll = std::min(deadline, g_get_monotonic_time() + G_TIME_SPAN_SECOND / 10);
      g_cond_wait_until(&cond_, &mutex_, poll);
      if (received_ >= target) break;
      g_mutex_unlock(&mutex_);
      check_bus();
      if (g_get_monotonic_time() >= deadline) throw std::runtime_error(factory_ + ": pipeline stalled");
      g_mutex_lock(&mutex_);
    }
    g_mutex_unlock(&mutex_);
    const double seconds = seconds_since(start);
    check_bus();
    return seconds;
  }

  // Top-1 class per frame from the last round: -1 for non-finite, -2 when no meta was found.
  std::vector<int> labels() {
    g_mutex_lock(&mutex_);
    auto copy = labels_;
    g_mutex_unlock(&mutex_);
    return copy;
  }
  // Free energy per frame from the last round (NaN when no meta was found).
  std::vector<double> energies() {
    g_mutex_lock(&mutex_);
    auto copy = energies_;
    g_mutex_unlock(&mutex_);
    return copy;
  }
  // Share of the frames (in-distribution test images) the element flagged out of distribution.
  double flagged_share() {
    g_mutex_lock(&mutex_);
    double sum = 0;
    for (int f : flagged_) sum += f;
    g_mutex_unlock(&mutex_);
    return sum / static_cast<double>(std::max<size_t>(1, flagged_.size()));
  }


 private:
  static GstPadProbeReturn on_buffer(GstPad *, GstPadProbeInfo *info, gpointer data) {
    auto *self = static_cast<ElementPipeline *>(data);
    GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
    int label = -2;
    gboolean ood = FALSE;
    double energy = std::numeric_limits<double>::quiet_NaN();
    gpointer state = nullptr;
    GstMeta *meta;
    while ((meta = gst_buffer_iterate_meta_filtered(buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
      auto *roi = reinterpret_cast<GstVideoRegionOfInterestMeta *>(meta);
      if (const GstStructure *s = gst_video_region_of_interest_meta_get_param(roi, "cff/classification")) {
        if (gst_structure_get_int(s, "class-id", &label)) {
          gst_structure_get_double(s, "energy", &energy);
          gst_structure_get_boolean(s, "ood", &ood);
          break;
        }
      }
    }
    const guint64 index = GST_BUFFER_OFFSET(buffer);
    g_mutex_lock(&self->mutex_);
    if (index < self->labels_.size()) {
      self->labels_[index] = label;
      self->energies_[index] = energy;
      self->flagged_[index] = ood ? 1 : 0;
    }
    ++self->received_;
    g_cond_signal(&self->cond_);
    g_mutex_unlock(&self->mutex_);
    return GST_PAD_PROBE_OK;
  }

  // Throws with the element's own message if an error reached the bus.
  void check_bus() {
    GstBus *bus = gst_element_get_bus(pipeline_);
    GstMessage *message = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    gst_object_unref(bus);
    if (!message) return;
    GError *error = nullptr;
    gchar *debug = nullptr;
    gst_message_parse_error(message, &error, &debug);
    const std::string text = factory_ + ": " + (error ? error->message : "error") + (debug ? std::string(" (") + debug + ")" : "");
    g_clear_error(&error);
    g_free(debug);
    gst_message_unref(message);
    throw std::runtime_error(text);
  }

  std::string factory_;
  GstElement *pipeline_ = nullptr;
  GstElement *source_ = nullptr;
  GMutex mutex_{};
  GCond cond_{};
  guint64 received_ = 0;
  GstClockTime next_pts_ = 0;
  std::vector<int> labels_;
  std::vector<double> energies_;
  std::vector<int> flagged_;  // the "ood" field of each frame's result
};

struct Bare {
  std::shared_ptr<cff::Engine> engine;
  std::vector<int> labels;
  std::vector<double> energies;

  double run(const Frames &frames) {
    const int n = static_cast<int>(frames.buffers.size());
    labels.assign(static_cast<size_t>(n), -2);
    energies.assign(static_cast<size_t>(n), 0.0);
    const auto start = Clock::now();
    for (int i = 0; i < n; ++i) {
      const auto results = engine->classify(frames.inputs.data() + frames.per_frame * static_cast<size_t>(i), 1, kTopK);
      labels[static_cast<size_t>(i)] = results[0].class_id;
      energies[static_cast<size_t>(i)] = results[0].energy;
    }
    return seconds_since(start);
  }
};

// The element's frame conversion alone (cff::gst::convert_region on the mapped frames), to tell how
// much of the element's time beyond the bare forward pass is pixel work rather than GStreamer.
struct Conversion {
  cff::gst::InputLayout layout;
  std::vector<float> output;

  double run(const Frames &frames) {
    output.resize(frames.per_frame);
    const cff::gst::Region whole{0, 0, GST_VIDEO_INFO_WIDTH(&frames.info), GST_VIDEO_INFO_HEIGHT(&frames.info)};
    const auto start = Clock::now();
    for (auto *buffer : frames.buffers) {
      GstVideoFrame frame;
      if (!gst_video_frame_map(&frame, &frames.info, buffer, GST_MAP_READ)) {
        throw std::runtime_error("cannot map a frame");
      }
      cff::gst::convert_region(cff::gst::pixel_view(frame), whole, layout, output.data());
      gst_video_frame_unmap(&frame);
    }
    return seconds_since(start);
  }
};

// "median M (min A, max B)" of per-round ratios.
std::string spread(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  const double median = n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
  char text[96];
  std::snprintf(text, sizeof text, "median %.3f (min %.3f, max %.3f)", median, values.front(), values.back());
  return text;
}

double agreement(const std::vector<int> &a, const std::vector<int> &b) {
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i] && a[i] >= 0;
  return a.empty() ? 0.0 : static_cast<double>(same) / static_cast<double>(a.size());
}

// Largest |a - b| (NaN when either lacks a value).
double largest_difference(const std::vector<double> &a, const std::vector<double> &b) {
  double largest = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(a[i] - b[i]);
    if (std::isnan(d)) return d;
    largest = std::max(largest, d);
  }
  return largest;
}

double accuracy(const std::vector<int> &labels, const std::vector<int> &truth) { return agreement(labels, truth); }

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  const Options o = parse_options(argc, argv);
  try {
    Bare bare;
    bare.engine = cff::Engine::acquire(o.model, o.device, o.threads);
    const auto &model = bare.engine->info();
    Frames frames;
    render_frames(frames, o, model);

    // The element takes the same engine from the cache (same file, same device) and sets the same threads.
    ElementPipeline element("cffclassify", o, frames, o.model);
    // The same weights in a file with the energy only, next to the output or in the temporary folder.
    const std::string energy_only_path = std::string(g_get_tmp_dir()) + "/bench-classify-energy-only-" +
                                         std::to_string(::getpid()) + ".cff";
    {
      auto m = cff::load_model(o.model);
      m.metadata.ood = cff::OodDetector::energy_only(m.metadata.ood.threshold("energy"));
      cff::save_model(energy_only_path, m.network, m.metadata);
    }
    std::unique_ptr<ElementPipeline> energy_only;
    try {
      energy_only = std::make_unique<ElementPipeline>("cffclassify", o, frames, energy_only_path);
    } catch (...) {
      std::remove(energy_only_path.c_str());
      throw;
    }
    std::unique_ptr<ElementPipeline> peer;
    if (!o.peer.empty()) {
      GstElementFactory *factory = gst_element_factory_find(o.peer.c_str());
      if (!factory) {
        throw std::runtime_error("element " + o.peer + " not found (for pycffclassify: tools/bench on GST_PLUGIN_PATH, "
                                 "gst-python and the system python3-torch installed)");
      }
      gst_object_unref(factory);
      peer = std::make_unique<ElementPipeline>(o.peer, o, frames, o.model);
    }

    // Warm-up (first calls allocate and load lazily), also the pass whose labels are compared.
    element.run(frames);
    bare.run(frames);
    energy_only->run(frames);
    std::remove(energy_only_path.c_str());  // the engine has it loaded
    if (peer) peer->run(frames);
    const auto element_labels = element.labels();
    const auto bare_labels = bare.labels;
    const auto peer_labels = peer ? peer->labels() : std::vector<int>{};
    const auto element_energies = element.energies();
    const double flagged = element.flagged_share();
    const auto bare_energies = bare.energies;
    const auto peer_energies = peer ? peer->energies() : std::vector<double>{};

    Conversion conversion{cff::gst::InputLayout{model.channels, model.height, model.width, model.mean, model.std}, {}};
    conversion.run(frames);

    // Timed rounds, interleaved; the order rotates so that no path always runs first.
    // Each round's ratios are kept too: their spread shows how much the background load moved.
    double element_time = 0, bare_time = 0, conversion_time = 0, energy_only_time = 0, peer_time = 0;
    std::vector<double> round_ratios, round_peer_ratios, round_score_costs;
    for (int r = 0; r < o.rounds; ++r) {
      const int paths = peer ? 5 : 4;
      double times[5] = {0, 0, 0, 0, 0};
      for (int k = 0; k < paths; ++k) {
        const int path = (r + k) % paths;
        switch (path) {
          case 0: times[path] = element.run(frames); break;
          case 1: times[path] = bare.run(frames); break;
          case 2: times[path] = conversion.run(frames); break;
          case 3: times[path] = energy_only->run(frames); break;
          default: times[path] = peer->run(frames); break;
        }
      }
      element_time += times[0];
      bare_time += times[1];
      conversion_time += times[2];
      energy_only_time += times[3];
      peer_time += times[4];
      round_ratios.push_back(times[1] / times[0]);
      round_score_costs.push_back(times[0] / times[3]);
      if (peer) round_peer_ratios.push_back(times[4] / times[0]);
    }
    const double count = static_cast<double>(o.frames) * o.rounds;
    const double element_fps = count / element_time, bare_fps = count / bare_time;
    const double element_vs_bare = agreement(element_labels, bare_labels);

    std::printf("model %s (%dx%dx%d, %d classes) on %s; %d frames %dx%d %s, %d rounds\n", o.model.c_str(),
                model.channels, model.height, model.width, model.num_classes, model.device.c_str(), o.frames,
                frames.info.width, frames.info.height, o.format.c_str(), o.rounds);
    std::printf("element  appsrc ! cffclassify ! fakesink:   %9.1f frames/s\n", element_fps);
    std::printf("bare     cff::Engine::classify, batch 1:     %9.1f frames/s\n", bare_fps);
    std::printf("ratio element/bare %.3f (target >= 0.9); per round %s\n", element_fps / bare_fps,
                spread(round_ratios).c_str());
    const auto &recommended = model.ood_recommended;
    std::printf("energy-only file: cffclassify %9.1f frames/s; time with the default score (%s) / energy only %.3f "
                "(target <= 1.3); per round %s\n",
                count / energy_only_time, recommended.c_str(), element_time / energy_only_time,
                spread(round_score_costs).c_str());
    const double ms = 1000.0 / count;
    std::printf("per frame: element %.3f ms = forward %.3f + frame conversion %.3f + GStreamer and meta %.3f ms\n",
                element_time * ms, bare_time * ms, conversion_time * ms,
                (element_time - bare_time - conversion_time) * ms);
    std::printf("top-1 agreement element/bare %.1f%%, largest energy difference %.2g; accuracy on the dataset labels %.1f%%; "
                "flagged out of distribution by %s at the calibrated threshold %.1f%%\n",
                100 * element_vs_bare, largest_difference(element_energies, bare_energies),
                100 * accuracy(element_labels, frames.dataset_labels), recommended.c_str(), 100 * flagged);

    nlohmann::json results = {{"benchmark", "classify_element"},
                              {"model", o.model},
                              {"device", model.device},
                              {"frames", o.frames},
                              {"rounds", o.rounds},
                              {"threads", o.threads},
                              {"width", frames.info.width},
                              {"height", frames.info.height},
                              {"format", o.format},
                              {"element_fps", element_fps},
                              {"bare_fps", bare_fps},
                              {"ratio_element_bare", element_fps / bare_fps},
                              {"ratio_element_bare_per_round", round_ratios},
                              {"conversion_ms_per_frame", conversion_time * 1000.0 / count},
                              {"agreement_element_bare", element_vs_bare},
                              {"default_score", recommended},
                              {"flagged_share", flagged},
                              {"energy_only_fps", count / energy_only_time},
                              {"ratio_default_score_time_energy_only", element_time / energy_only_time},
                              {"ratio_default_score_time_energy_only_per_round", round_score_costs}};
    bool agreed = element_vs_bare >= o.min_agreement;
    if (peer) {
      const double peer_fps = count / peer_time;
      const double peer_vs_element = agreement(peer_labels, element_labels);
      std::printf("peer     appsrc ! %s ! fakesink: %9.1f frames/s\n", o.peer.c_str(), peer_fps);
      std::printf("ratio cffclassify/%s %.2f (target >= 2); per round %s\n", o.peer.c_str(), element_fps / peer_fps,
                  spread(round_peer_ratios).c_str());
      const double energy_difference = largest_difference(peer_energies, element_energies);
      std::printf("top-1 agreement %s/cffclassify %.1f%% (%zu of %d frames), largest energy difference %.2g\n",
                  o.peer.c_str(), 100 * peer_vs_element, static_cast<size_t>(peer_vs_element * o.frames + 0.5), o.frames,
                  energy_difference);
      for (size_t i = 0; i < peer_labels.size(); ++i) {
        if (peer_labels[i] != element_labels[i]) {
          std::printf("  frame %zu: cffclassify %d, %s %d\n", i, element_labels[i], o.peer.c_str(), peer_labels[i]);
        }
      }
      results["peer"] = {{"factory", o.peer},
                         {"fps", peer_fps},
                         {"ratio_element_peer", element_fps / peer_fps},
                         {"ratio_element_peer_per_round", round_peer_ratios},
                         {"agreement_peer_element", peer_vs_element},
                         {"largest_energy_difference", energy_difference}};
      agreed = agreed && peer_vs_element >= o.min_agreement;
    }
    if (!o.json_path.empty()) cff::files::write_atomically(o.json_path, results.dump(2) + "\n");
    if (!agreed) {
      std::fprintf(stderr, "bench-classify: top-1 agreement below --min-agreement %g\n", o.min_agreement);
      return 1;
    }
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "bench-classify: %s\n", e.what());
    return 1;
  }
}
