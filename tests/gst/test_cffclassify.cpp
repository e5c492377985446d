// cffclassify driven through GstHarness and full pipelines.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <tuple>

#include <gst/app/gstappsink.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/gstvideometa.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include "cff/engine.h"
#include "fixture.h"

using cff_gst_test::kSide;
using cff_gst_test::Sample;
using cff_gst_test::test_model;

namespace {

const GstVideoFormat kFormats[] = {
    GST_VIDEO_FORMAT_GRAY8, GST_VIDEO_FORMAT_RGB,  GST_VIDEO_FORMAT_BGR,  GST_VIDEO_FORMAT_RGBA, GST_VIDEO_FORMAT_BGRA,
    GST_VIDEO_FORMAT_RGBx,  GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_xRGB, GST_VIDEO_FORMAT_xBGR, GST_VIDEO_FORMAT_ARGB,
    GST_VIDEO_FORMAT_ABGR,  GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12};

std::string caps_string(GstVideoFormat format, int width, int height) {
  return std::string("video/x-raw,format=") + gst_video_format_to_string(format) + ",width=" + std::to_string(width) +
         ",height=" + std::to_string(height) + ",framerate=30/1";
}

// Renders grey pixels (any size) into a frame of `info`, scaled to the frame by nearest neighbour,
// at (x0, y0) of size w x h; grey in RGB formats, limited-range luma with neutral chroma in YUV.
void paint(GstVideoFrame &frame, const std::vector<uint8_t> &pixels, int source_w, int source_h, int x0, int y0, int w,
           int h) {
  const auto *finfo = frame.info.finfo;
  const bool yuv = GST_VIDEO_FORMAT_INFO_IS_YUV(finfo);
  const bool limited = yuv && frame.info.colorimetry.range == GST_VIDEO_COLOR_RANGE_16_235;
  for (int y = 0; y < h; ++y) {
    auto *line = static_cast<uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)) +
                 static_cast<ptrdiff_t>(y0 + y) * GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0);
    for (int x = 0; x < w; ++x) {
      const uint8_t p = pixels[static_cast<size_t>((y * source_h / h) * source_w + x * source_w / w)];
      if (GST_VIDEO_FORMAT_INFO_IS_RGB(finfo)) {
        uint8_t *q = line + static_cast<ptrdiff_t>(x0 + x) * GST_VIDEO_FORMAT_INFO_PSTRIDE(finfo, 0);
        for (int c = 0; c < 3; ++c) q[GST_VIDEO_FORMAT_INFO_POFFSET(finfo, c)] = p;
        if (GST_VIDEO_FORMAT_INFO_HAS_ALPHA(finfo)) q[GST_VIDEO_FORMAT_INFO_POFFSET(finfo, 3)] = 255;
      } else if (limited) {
        line[x0 + x] = static_cast<uint8_t>(std::lround(16.0 + p * 219.0 / 255.0));
      } else {
        line[x0 + x] = p;
      }
    }
  }
  if (yuv) {
    for (guint plane = 1; plane < GST_VIDEO_FRAME_N_PLANES(&frame); ++plane) {
      auto *data = static_cast<uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, plane));
      const int rows = GST_VIDEO_FRAME_COMP_HEIGHT(&frame, 1);
      for (int y = 0; y < rows; ++y) {
        std::fill(data + y * GST_VIDEO_FRAME_PLANE_STRIDE(&frame, plane),
                  data + (y + 1) * GST_VIDEO_FRAME_PLANE_STRIDE(&frame, plane), 128);
      }
    }
  }
}

GstBuffer *make_frame(GstVideoFormat format, int width, int height, const std::vector<uint8_t> &pixels,
                      GstClockTime pts = 0) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, format, width, height);
  GstBuffer *buffer = gst_buffer_new_allocate(nullptr, info.size, nullptr);
  gst_buffer_memset(buffer, 0, 0, info.size);
  GstVideoFrame frame;
  gst_video_frame_map(&frame, &info, buffer, GST_MAP_WRITE);
  paint(frame, pixels, kSide, kSide, 0, 0, width, height);
  gst_video_frame_unmap(&frame);
  GST_BUFFER_PTS(buffer) = pts;
  GST_BUFFER_DURATION(buffer) = GST_SECOND / 30;
  return buffer;
}

// The "cff/classification" structures on a buffer, in meta order.
std::vector<const GstStructure *> classifications(GstBuffer *buffer, int *cff_metas = nullptr) {
  std::vector<const GstStructure *> found;
  gpointer state = nullptr;
  GstMeta *meta;
  int count = 0;
  while ((meta = gst_buffer_iterate_meta_filtered(buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    auto *roi = reinterpret_cast<GstVideoRegionOfInterestMeta *>(meta);
    if (roi->roi_type == g_quark_from_string("cff")) ++count;
    if (auto *s = gst_video_region_of_interest_meta_get_param(roi, "cff/classification")) found.push_back(s);
  }
  if (cff_metas) *cff_metas = count;
  return found;
}

// Sets "name=value name=value" properties (values without spaces).
void set_properties(GstElement *element, const std::string &properties) {
  size_t start = 0;
  while (start < properties.size()) {
    size_t end = properties.find(' ', start);
    if (end == std::string::npos) end = properties.size();
    const std::string pair = properties.substr(start, end - start);
    const size_t eq = pair.find('=');
    if (eq != std::string::npos) {
      gst_util_set_object_arg(G_OBJECT(element), pair.substr(0, eq).c_str(), pair.substr(eq + 1).c_str());
    }
    start = end + 1;
  }
}

struct Harness {
  GstHarness *h = nullptr;
  GstBus *bus = nullptr;

  // `properties` are set before the element starts (the harness starts it right away).
  explicit Harness(const std::string &properties = "") {
    cff_gst_test::ensure_gst();
    GstElement *element = gst_element_factory_make("cffclassify", nullptr);
    EXPECT_NE(element, nullptr) << "cffclassify not found: is GST_PLUGIN_PATH_1_0 set?";
    g_object_set(element, "model", test_model().path.c_str(), "device", "cpu", "threads", 1, nullptr);
    if (!properties.empty()) set_properties(element, properties);
    bus = gst_bus_new();
    gst_element_set_bus(element, bus);
    h = gst_harness_new_with_element(element, "sink", "src");
    gst_object_unref(element);
  }
  ~Harness() {
    gst_harness_teardown(h);
    gst_object_unref(bus);
  }
  GstElement *element() const { return h->element; }
  void caps(GstVideoFormat format, int width, int height) {
    gst_harness_set_src_caps_str(h, caps_string(format, width, height).c_str());
  }
  GstBuffer *run(GstBuffer *in) { return gst_harness_push_and_pull(h, in); }
};


std::string string_field(const GstStructure *s, const char *name) {
  const gchar *v = gst_structure_get_string(s, name);
  return v ? v : "";
}
int int_field(const GstStructure *s, const char *name) {
  int v = -12345;
  EXPECT_TRUE(gst_structure_get_int(s, name, &v)) << name;
  return v;
}
double double_field(const GstStructure *s, const char *name) {
  double v = -12345;
  EXPECT_TRUE(gst_structure_get_double(s, name, &v)) << name;
  return v;
}
bool bool_field(const GstStructure *s, const char *name) {
  gboolean v = FALSE;
  EXPECT_TRUE(gst_structure_get_boolean(s, name, &v)) << name;
  return v;
}

std::vector<uint8_t> noise_image(std::mt19937 &rng) {
  std::vector<uint8_t> pixels(kSide * kSide);
  for (auto &p : pixels) p = static_cast<uint8_t>(rng() % 256);
  return pixels;
}

// Index of a sample whose reference class differs from `other`'s.
size_t sample_with_other_class(size_t other) {
  const auto &samples = test_model().samples;
  for (size_t i = 0; i < samples.size(); ++i) {
    if (samples[i].reference_class != samples[other].reference_class) return i;
  }
  return other;
}

// Runs "videotestsrc ! cffclassify ! fakesink" with the given properties to PLAYING and returns the
// error it posts (empty message if none).
struct StartResult {
  std::string message;
  GQuark domain = 0;
  int code = 0;
};
StartResult start_pipeline(const std::string &properties) {
  cff_gst_test::ensure_gst();
  GError *error = nullptr;
  GstElement *pipeline =
      gst_parse_launch("videotestsrc num-buffers=2 ! video/x-raw,format=GRAY8,width=28,height=28 ! "
                       "cffclassify name=classify ! fakesink",
                       &error);
  EXPECT_EQ(error, nullptr);
  GstElement *classify = gst_bin_get_by_name(GST_BIN(pipeline), "classify");
  set_properties(classify, properties);
  gst_object_unref(classify);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus(pipeline);
  StartResult result;
  GstMessage *msg =
      gst_bus_timed_pop_filtered(bus, 20 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_ERROR | GST_MESSAGE_EOS));
  if (msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    gst_message_parse_error(msg, &error, nullptr);
    result.message = error->message;
    result.domain = error->domain;
    result.code = error->code;
    g_clear_error(&error);
  }
  if (msg) gst_message_unref(msg);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(pipeline);
  return result;
}

}  // namespace

TEST(CffClassify, KnownFramesMatchLibcffInEveryFormatAndSize) {
  const auto &m = test_model();
  const int per_case = 12;
  // 28x28 is the model's size; 56x56 is a 2x nearest-neighbour upscale that area averaging undoes
  // exactly; 56x40 needs real resampling, so there every format is compared with GRAY8 at that size.
  for (auto [width, height] : {std::pair{28, 28}, std::pair{56, 56}, std::pair{56, 40}}) {
    const bool exact_size = width % kSide == 0 && height % kSide == 0;
    std::vector<std::pair<int, double>> grey;  // GRAY8's class and energy per sample at this size
    for (auto format : kFormats) {
      Harness h;
      h.caps(format, width, height);
      const bool yuv = format == GST_VIDEO_FORMAT_I420 || format == GST_VIDEO_FORMAT_NV12;
      int agree = 0;
      for (int i = 0; i < per_case; ++i) {
        const Sample &s = m.samples[static_cast<size_t>(i)];
        GstBuffer *out = h.run(make_frame(format, width, height, s.pixels));
        ASSERT_NE(out, nullptr);
        auto found = classifications(out);
        ASSERT_EQ(found.size(), 1u);
        const int class_id = int_field(found[0], "class-id");
        const double energy = double_field(found[0], "energy");
        gst_buffer_unref(out);
        if (format == GST_VIDEO_FORMAT_GRAY8) grey.emplace_back(class_id, energy);
        const int expected = exact_size ? s.reference_class : grey[static_cast<size_t>(i)].first;
        const double expected_energy = exact_size ? s.reference_energy : grey[static_cast<size_t>(i)].second;
        agree += class_id == expected;
        if (!yuv) {
          // Grey in any RGB layout has luma = grey, so these must match to rounding.
          EXPECT_EQ(class_id, expected) << gst_video_format_to_string(format) << " " << width << "x" << height
                                        << " sample " << i;
          EXPECT_NEAR(energy, expected_energy, 1e-3) << gst_video_format_to_string(format);
        }
      }
      // Limited-range luma loses a little precision to rounding.
      EXPECT_GE(agree, per_case - 1) << gst_video_format_to_string(format) << " " << width << "x" << height;
    }
  }
}

TEST(CffClassify, MetaAndMessageCarryTheFields) {
  const auto &m = test_model();
  Harness h("message=all top-k=4");
  h.caps(GST_VIDEO_FORMAT_RGB, 56, 40);
  const Sample &s = m.samples[3];
  GstBuffer *out = h.run(make_frame(GST_VIDEO_FORMAT_RGB, 56, 40, s.pixels, GST_SECOND));
  int cff_metas = 0;
  auto found = classifications(out, &cff_metas);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(cff_metas, 1);
  auto *roi = gst_buffer_get_video_region_of_interest_meta_id(out, 0);
  ASSERT_NE(roi, nullptr);
  EXPECT_EQ(roi->x, 0u);
  EXPECT_EQ(roi->w, 56u);
  EXPECT_EQ(roi->h, 40u);

  GstMessage *msg = gst_bus_pop_filtered(h.bus, GST_MESSAGE_ELEMENT);
  ASSERT_NE(msg, nullptr);
  const GstStructure *ms = gst_message_get_structure(msg);
  EXPECT_TRUE(gst_structure_has_name(ms, "cffclassify"));
  EXPECT_TRUE(gst_structure_has_name(found[0], "cff/classification"));
  for (const GstStructure *r : {found[0], ms}) {
    const int class_id = int_field(r, "class-id");
    ASSERT_GE(class_id, 0);
    ASSERT_LT(class_id, 10);
    EXPECT_EQ(string_field(r, "label"), m.labels[static_cast<size_t>(class_id)]);
    const double confidence = double_field(r, "confidence");
    EXPECT_GT(confidence, 0.0);
    EXPECT_LE(confidence, 1.0);
    const double energy = double_field(r, "energy");
    EXPECT_TRUE(std::isfinite(energy));
    EXPECT_DOUBLE_EQ(double_field(r, "ood-threshold"), m.threshold);
    EXPECT_EQ(bool_field(r, "ood"), energy > m.threshold);
    // score=auto takes the file's recommendation: the fixture recommends the energy.
    EXPECT_EQ(string_field(r, "score-name"), "energy");
    EXPECT_DOUBLE_EQ(double_field(r, "score"), energy);
    EXPECT_FALSE(bool_field(r, "non-finite"));
    const GValue *labels = gst_structure_get_value(r, "top-k-labels");
    const GValue *probabilities = gst_structure_get_value(r, "top-k-probabilities");
    const GValue *ids = gst_structure_get_value(r, "top-k-class-ids");
    ASSERT_TRUE(labels && probabilities && ids);
    ASSERT_EQ(gst_value_array_get_size(labels), 4u);
    ASSERT_EQ(gst_value_array_get_size(probabilities), 4u);
    ASSERT_EQ(gst_value_array_get_size(ids), 4u);
    EXPECT_EQ(std::string(g_value_get_string(gst_value_array_get_value(labels, 0))), string_field(r, "label"));
    EXPECT_DOUBLE_EQ(g_value_get_double(gst_value_array_get_value(probabilities, 0)), confidence);
    for (guint i = 1; i < 4; ++i) {
      EXPECT_LE(g_value_get_double(gst_value_array_get_value(probabilities, i)),
                g_value_get_double(gst_value_array_get_value(probabilities, i - 1)));
      const int id = g_value_get_int(gst_value_array_get_value(ids, i));
      EXPECT_EQ(std::string(g_value_get_string(gst_value_array_get_value(labels, i))),
                m.labels[static_cast<size_t>(id)]);
    }
  }
  guint64 timestamp = 0, running_time = 0;
  EXPECT_TRUE(gst_structure_get_uint64(ms, "timestamp", &timestamp));
  EXPECT_TRUE(gst_structure_get_uint64(ms, "running-time", &running_time));
  EXPECT_EQ(timestamp, GST_SECOND);
  EXPECT_EQ(running_time, GST_SECOND);
  EXPECT_EQ(int_field(ms, "width"), 56);
  EXPECT_EQ(int_field(ms, "height"), 40);
  EXPECT_EQ(int_field(ms, "roi-id"), -1);
  gst_message_unref(msg);
  gst_buffer_unref(out);
}

TEST(CffClassify, NoiseIsFlaggedFarMoreOftenThanFashionMnist) {
  const auto &m = test_model();
  Harness h;
  h.caps(GST_VIDEO_FORMAT_GRAY8, kSide, kSide);
  std::mt19937 rng(5);
  auto ood_rate = [&](auto image_of) {
    int flagged = 0;
    const int n = 100;
    for (int i = 0; i < n; ++i) {
      GstBuffer *out = h.run(make_frame(GST_VIDEO_FORMAT_GRAY8, kSide, kSide, image_of(i)));
      flagged += bool_field(classifications(out).at(0), "ood");
      gst_buffer_unref(out);
    }
    return static_cast<double>(flagged) / n;
  };
  const double data_rate = ood_rate([&](int i) { return m.samples[static_cast<size_t>(i)].pixels; });
  const double noise_rate = ood_rate([&](int) { return noise_image(rng); });
  std::printf("[ood] flagged: Fashion-MNIST %.2f, uniform noise %.2f (model accuracy %.2f)\n", data_rate, noise_rate,
              m.accuracy);
  EXPECT_LE(data_rate, 0.2);
  EXPECT_GE(noise_rate, 0.8);
}

// Each score: the element reports the one it was told, compares it with that score's calibrated threshold,
// and returns the value libcff's engine computes for the same pixels.
TEST(CffClassify, ChosenScoreIsReportedAndFlagsByItsOwnThreshold) {
  const auto &m = test_model();
  auto engine = cff::Engine::acquire(m.path, "cpu", 1);
  const auto &info = engine->info();
  std::mt19937 rng(9);
  for (const auto &score : info.ood_scores) {
    Harness h("score=" + score.name);
    h.caps(GST_VIDEO_FORMAT_GRAY8, kSide, kSide);
    int data_flagged = 0, noise_flagged = 0;
    const int n = 40;
    for (int i = 0; i < 2 * n; ++i) {
      const bool noise = i >= n;
      const auto pixels = noise ? noise_image(rng) : m.samples.at(static_cast<size_t>(i)).pixels;
      GstBuffer *out = h.run(make_frame(GST_VIDEO_FORMAT_GRAY8, kSide, kSide, pixels));
      const GstStructure *r = classifications(out).at(0);
      EXPECT_EQ(string_field(r, "score-name"), score.name);
      EXPECT_DOUBLE_EQ(double_field(r, "ood-threshold"), score.threshold) << score.name;
      const double value = double_field(r, "score");
      EXPECT_EQ(bool_field(r, "ood"), value > score.threshold) << score.name;
      std::vector<float> input(pixels.size());
      for (size_t k = 0; k < pixels.size(); ++k) input[k] = static_cast<float>((pixels[k] / 255.0 - 0.5) / 0.5);
      const auto expected = engine->classify(input.data(), 1).at(0);
      EXPECT_NEAR(value, expected.scores.at(static_cast<size_t>(info.ood_score_index(score.name))),
                  1e-4 * (1.0 + std::fabs(value)))  // the element converts pixels in float
          << score.name;
      (noise ? noise_flagged : data_flagged) += bool_field(r, "ood");
      gst_buffer_unref(out);
    }
    std::printf("[score %s] flagged: Fashion-MNIST %d/%d, uniform noise %d/%d\n", score.name.c_str(), data_flagged, n,
                noise_flagged, n);
    // msp is weak on noise, and complexity-energy subtracts the complexity that noise is made of
    // (docs/ood.md); the others flag it.
    if (score.name != "msp" && score.name != "complexity-energy") EXPECT_GT(noise_flagged, data_flagged) << score.name;
  }
}

// The documented default: score=auto, the model file's recommendation.
TEST(CffClassify, ScoreDefaultsToTheModelsRecommendation) {
  cff_gst_test::ensure_gst();
  GstElement *element = gst_element_factory_make("cffclassify", nullptr);
  ASSERT_NE(element, nullptr);
  GParamSpec *spec = g_object_class_find_property(G_OBJECT_GET_CLASS(element), "score");
  ASSERT_NE(spec, nullptr);
  GEnumClass *values = G_PARAM_SPEC_ENUM(spec)->enum_class;
  EXPECT_STREQ(g_enum_get_value(values, G_PARAM_SPEC_ENUM(spec)->default_value)->value_nick, "auto");
  gint score = -1;
  g_object_get(element, "score", &score, nullptr);
  EXPECT_STREQ(g_enum_get_value(values, score)->value_nick, "auto");
  // The threshold defaults to the calibrated one; the manual value's pspec validates strictly.
  GParamSpec *calibrated = g_object_class_find_property(G_OBJECT_GET_CLASS(element), "calibrated-threshold");
  ASSERT_NE(calibrated, nullptr);
  EXPECT_TRUE(G_PARAM_SPEC_BOOLEAN(calibrated)->default_value);
  GParamSpec *threshold = g_object_class_find_property(G_OBJECT_GET_CLASS(element), "ood-threshold");
  ASSERT_NE(threshold, nullptr);
  EXPECT_EQ(threshold->flags & G_PARAM_LAX_VALIDATION, 0);
  EXPECT_EQ(G_PARAM_SPEC_DOUBLE(threshold)->default_value, 0.0);
  gst_object_unref(element);
}

// A model file written before the fitted scores carries the energy only: another score is refused at start,
// naming the score and what the file has; score=auto runs on the energy.
TEST(CffClassify, ScoreTheModelLacks_n) {
  const char *root = std::getenv("CFF_SOURCE_ROOT");
  ASSERT_NE(root, nullptr);
  const std::string old_model = std::string(root) + "/models/fashion-mnist-judge.cff";
  auto result = start_pipeline("model=" + old_model + " score=mahalanobis");
  EXPECT_NE(result.message.find("no OOD score 'mahalanobis'"), std::string::npos) << result.message;
  EXPECT_NE(result.message.find("energy"), std::string::npos) << result.message;
  EXPECT_EQ(result.domain, GST_RESOURCE_ERROR);
  EXPECT_EQ(result.code, GST_RESOURCE_ERROR_SETTINGS);
  EXPECT_TRUE(start_pipeline("model=" + old_model).message.empty());
}

TEST(CffClassify, ThresholdTopKAndMessagesChangeWhilePlaying) {
  const auto &m = test_model();
  Harness h("message=ood");
  h.caps(GST_VIDEO_FORMAT_GRAY8, kSide, kSide);
  std::mt19937 rng(9);
  auto push = [&](const std::vector<uint8_t> &pixels) {
    GstBuffer *out = h.run(make_frame(GST_VIDEO_FORMAT_GRAY8, kSide, kSide, pixels));
    const GstStructure *s = gst_structure_copy(classifications(out).at(0));
    gst_buffer_unref(out);
    return std::unique_ptr<GstStructure, decltype(&gst_structure_free)>(const_cast<GstStructure *>(s),
                                                                        gst_structure_free);
  };
  auto pop_messages = [&] {
    int n = 0;
    while (GstMessage *msg = gst_bus_pop_filtered(h.bus, GST_MESSAGE_ELEMENT)) {
      ++n;
      gst_message_unref(msg);
    }
    return n;
  };
  g_object_set(h.element(), "ood-threshold", 1e9, nullptr);
  auto s = push(noise_image(rng));
  EXPECT_FALSE(bool_field(s.get(), "ood"));
  EXPECT_DOUBLE_EQ(double_field(s.get(), "ood-threshold"), 1e9);
  EXPECT_EQ(pop_messages(), 0);
  g_object_set(h.element(), "ood-threshold", -1e9, "top-k", 7u, nullptr);
  s = push(m.samples[0].pixels);
  EXPECT_TRUE(bool_field(s.get(), "ood"));
  EXPECT_EQ(gst_value_array_get_size(gst_structure_get_value(s.get(), "top-k-labels")), 7u);
  EXPECT_EQ(pop_messages(), 1);
  gboolean calibrated = TRUE;
  g_object_get(h.element(), "calibrated-threshold", &calibrated, nullptr);
  EXPECT_FALSE(calibrated);  // setting ood-threshold turned it off
  g_object_set(h.element(), "calibrated-threshold", TRUE, "message", 0 /* none */, nullptr);
  s = push(noise_image(rng));
  EXPECT_DOUBLE_EQ(double_field(s.get(), "ood-threshold"), m.threshold);
  EXPECT_EQ(pop_messages(), 0);
}

TEST(CffClassify, IntervalReusesTheLastResult) {
  const auto &m = test_model();
  Harness h("interval=2");
  h.caps(GST_VIDEO_FORMAT_GRAY8, kSide, kSide);
  const size_t a = 0, b = sample_with_other_class(0);
  ASSERT_NE(m.samples[a].reference_class, m.samples[b].reference_class);
  const int expected[] = {m.samples[a].reference_class, m.samples[a].reference_class, m.samples[b].reference_class};
  const size_t pushed[] = {a, b, b};
  for (int i = 0; i < 3; ++i) {
    GstBuffer *out = h.run(make_frame(GST_VIDEO_FORMAT_GRAY8, kSide, kSide, m.samples[pushed[i]].pixels));
    EXPECT_EQ(int_field(classifications(out).at(0), "class-id"), expected[i]) << "frame " << i;
    gst_buffer_unref(out);
  }
}

TEST(CffClassify, UpstreamRegionsAreClassifiedInOneBatch) {
  const auto &m = test_model();
  Harness h("roi=upstream");
  h.caps(GST_VIDEO_FORMAT_RGBx, 2 * kSide, kSide);
  const size_t a = 1, b = sample_with_other_class(1);
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_RGBx, 2 * kSide, kSide);
  GstBuffer *in = gst_buffer_new_allocate(nullptr, info.size, nullptr);
  GstVideoFrame frame;
  gst_video_frame_map(&frame, &info, in, GST_MAP_WRITE);
  paint(frame, m.samples[a].pixels, kSide, kSide, 0, 0, kSide, kSide);
  paint(frame, m.samples[b].pixels, kSide, kSide, kSide, 0, kSide, kSide);
  gst_video_frame_unmap(&frame);
  gst_buffer_add_video_region_of_interest_meta(in, "object", 0, 0, kSide, kSide);
  gst_buffer_add_video_region_of_interest_meta(in, "object", kSide, 0, kSide, kSide);
  gst_buffer_add_video_region_of_interest_meta(in, "object", 500, 500, 10, 10);  // outside: skipped
  GstBuffer *out = h.run(in);
  int cff_metas = 0;
  auto found = classifications(out, &cff_metas);
  EXPECT_EQ(cff_metas, 0);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(int_field(found[0], "class-id"), m.samples[a].reference_class);
  EXPECT_EQ(int_field(found[1], "class-id"), m.samples[b].reference_class);
  EXPECT_NEAR(double_field(found[0], "energy"), m.samples[a].reference_energy, 1e-2);
  EXPECT_NEAR(double_field(found[1], "energy"), m.samples[b].reference_energy, 1e-2);
  gst_buffer_unref(out);
}

// More regions than one batch holds, and regions with sizes of 2^31 and more (clamped to the frame):
// every region inside the frame gets its own result; one outside gets none and one warning says so.
TEST(CffClassify, ManyAndHugeUpstreamRegionsAllGetResults) {
  const auto &m = test_model();
  Harness h("roi=upstream");
  h.caps(GST_VIDEO_FORMAT_RGBx, 2 * kSide, kSide);
  const size_t a = 1, b = sample_with_other_class(1);
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_RGBx, 2 * kSide, kSide);
  GstBuffer *in = gst_buffer_new_allocate(nullptr, info.size, nullptr);
  GstVideoFrame frame;
  gst_video_frame_map(&frame, &info, in, GST_MAP_WRITE);
  paint(frame, m.samples[a].pixels, kSide, kSide, 0, 0, kSide, kSide);
  paint(frame, m.samples[b].pixels, kSide, kSide, kSide, 0, kSide, kSide);
  gst_video_frame_unmap(&frame);
  const int regions = 150;  // three batches
  for (int i = 0; i < regions; ++i) {
    if (i % 2 == 0) {
      gst_buffer_add_video_region_of_interest_meta(in, "object", 0, 0, kSide, kSide);
    } else {
      gst_buffer_add_video_region_of_interest_meta(in, "object", kSide, 0, 2147483648u + i, 4294967295u);
    }
  }
  gst_buffer_add_video_region_of_interest_meta(in, "object", 500, 500, 10, 10);  // outside
  GstBuffer *out = h.run(in);
  auto found = classifications(out);
  ASSERT_EQ(found.size(), static_cast<size_t>(regions));
  for (int i = 0; i < regions; ++i) {
    const auto &sample = m.samples[i % 2 == 0 ? a : b];
    EXPECT_EQ(int_field(found[i], "class-id"), sample.reference_class) << i;
    EXPECT_NEAR(double_field(found[i], "energy"), sample.reference_energy, 1e-2) << i;
  }
  gst_buffer_unref(out);
  int warnings = 0;
  while (GstMessage *msg = gst_bus_pop_filtered(h.bus, GST_MESSAGE_WARNING)) {
    GError *error = nullptr;
    gst_message_parse_warning(msg, &error, nullptr);
    EXPECT_NE(std::string(error->message).find("lies outside the 56x28 frame"), std::string::npos) << error->message;
    ++warnings;
    g_error_free(error);
    gst_message_unref(msg);
  }
  EXPECT_EQ(warnings, 1);
}

TEST(CffClassify, ShortBufferIsPassedOnWithAWarningNamingTheSizes_n) {
  const auto &m = test_model();
  Harness h;
  h.caps(GST_VIDEO_FORMAT_GRAY8, kSide, kSide);
  GstBuffer *out = h.run(gst_buffer_new_allocate(nullptr, 100, nullptr));
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(gst_buffer_get_size(out), 100u);
  EXPECT_TRUE(classifications(out).empty());
  gst_buffer_unref(out);
  GstMessage *msg = gst_bus_pop_filtered(h.bus, GST_MESSAGE_WARNING);
  ASSERT_NE(msg, nullptr);
  GError *error = nullptr;
  gst_message_parse_warning(msg, &error, nullptr);
  EXPECT_STREQ(error->message, "Buffer of 100 bytes is shorter than a 28x28 GRAY8 frame (784 bytes): passed on without a result");
  g_error_free(error);
  gst_message_unref(msg);
  // The stream goes on: the next full frame is classified.
  out = h.run(make_frame(GST_VIDEO_FORMAT_GRAY8, kSide, kSide, m.samples[0].pixels));
  auto found = classifications(out);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(int_field(found[0], "class-id"), m.samples[0].reference_class);
  gst_buffer_unref(out);
}

// Frames at the edges (issue 19): 1x1, 8192x8192, all black, all white, no timestamps. Each gets a defined
// result: a constant frame of any size and format is read as the constant 28x28 frame (area averaging of a
// constant is that constant), the huge frame included.
TEST(CffClassify, ExtremeFramesGetDefinedResults) {
  for (const uint8_t value : {uint8_t{0}, uint8_t{255}}) {
    const std::vector<uint8_t> constant(static_cast<size_t>(kSide * kSide), value);
    double reference = 0.0;
    int reference_class = -1;
    for (auto [format, width, height] : {std::tuple{GST_VIDEO_FORMAT_GRAY8, kSide, kSide},
                                          std::tuple{GST_VIDEO_FORMAT_GRAY8, 1, 1}, std::tuple{GST_VIDEO_FORMAT_RGB, 1, 1},
                                          std::tuple{GST_VIDEO_FORMAT_I420, 1, 1}, std::tuple{GST_VIDEO_FORMAT_NV12, 3, 1},
                                          std::tuple{GST_VIDEO_FORMAT_GRAY8, 8192, 8192},
                                          std::tuple{GST_VIDEO_FORMAT_I420, 8192, 8192}}) {
      Harness h;
      h.caps(format, width, height);
      GstBuffer *out = h.run(make_frame(format, width, height, constant, GST_CLOCK_TIME_NONE));
      ASSERT_NE(out, nullptr);
      auto found = classifications(out);
      ASSERT_EQ(found.size(), 1u) << gst_video_format_to_string(format) << " " << width << "x" << height;
      const double energy = double_field(found[0], "energy");
      EXPECT_TRUE(std::isfinite(energy));
      if (reference_class < 0) {
        reference = energy;
        reference_class = int_field(found[0], "class-id");
      }
      const bool yuv = format == GST_VIDEO_FORMAT_I420 || format == GST_VIDEO_FORMAT_NV12;
      // Limited-range luma of 0 and 255 clips back to 0 and 255; the rest is rounding.
      EXPECT_NEAR(energy, reference, yuv ? 1e-2 : 1e-3) << gst_video_format_to_string(format) << " " << width << "x" << height;
      EXPECT_EQ(int_field(found[0], "class-id"), reference_class);
      EXPECT_FALSE(GST_BUFFER_PTS_IS_VALID(out));
      gst_buffer_unref(out);
    }
  }
}

TEST(CffClassify, OverlayDrawsOnlyWhenAsked) {
  const auto &m = test_model();
  for (auto format : {GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGRA, GST_VIDEO_FORMAT_GRAY8, GST_VIDEO_FORMAT_I420}) {
    for (bool overlay : {false, true}) {
      Harness h(overlay ? "overlay=true" : "");
      h.caps(format, 64, 48);
      GstBuffer *in = make_frame(format, 64, 48, m.samples[2].pixels);
      GstBuffer *reference = gst_buffer_copy_deep(in);
      GstBuffer *out = h.run(in);
      GstMapInfo a, b;
      gst_buffer_map(out, &a, GST_MAP_READ);
      gst_buffer_map(reference, &b, GST_MAP_READ);
      ASSERT_EQ(a.size, b.size);
      const bool same = std::equal(a.data, a.data + a.size, b.data);
      EXPECT_EQ(same, !overlay) << gst_video_format_to_string(format);
      gst_buffer_unmap(out, &a);
      gst_buffer_unmap(reference, &b);
      gst_buffer_unref(out);
      gst_buffer_unref(reference);
    }
  }
}

TEST(CffClassify, PipelineWithAppsink) {
  cff_gst_test::ensure_gst();
  const auto &m = test_model();
  const std::string description =
      "videotestsrc num-buffers=10 ! video/x-raw,format=RGB,width=64,height=48 ! cffclassify model=\"" + m.path +
      "\" ! appsink name=sink sync=false";
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(description.c_str(), &error);
  ASSERT_EQ(error, nullptr) << error->message;
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  ASSERT_EQ(gst_element_set_state(pipeline, GST_STATE_PLAYING), GST_STATE_CHANGE_ASYNC);
  int frames = 0;
  while (GstSample *sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 20 * GST_SECOND)) {
    int cff_metas = 0;
    auto found = classifications(gst_sample_get_buffer(sample), &cff_metas);
    EXPECT_EQ(cff_metas, 1);
    ASSERT_EQ(found.size(), 1u);
    const int class_id = int_field(found[0], "class-id");
    EXPECT_EQ(string_field(found[0], "label"), m.labels.at(static_cast<size_t>(class_id)));
    EXPECT_TRUE(std::isfinite(double_field(found[0], "energy")));
    gst_sample_unref(sample);
    ++frames;
  }
  EXPECT_EQ(frames, 10);
  EXPECT_TRUE(gst_app_sink_is_eos(GST_APP_SINK(sink)));
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
}

// Behind cffgenerate (which attaches a region meta with id 0 of its own), cffclassify's whole-frame meta
// gets the next free id, so it can still be fetched by id, and the generator's meta is left as it was.
TEST(CffClassify, MetaIdFollowsUpstreamRegionMetas) {
  cff_gst_test::ensure_gst();
  const auto &m = test_model();
  const std::string description = "cffgenerate model=\"" + m.path + "\" steps=2 num-buffers=2 ! cffclassify model=\"" +
                                  m.path + "\" ! appsink name=sink sync=false";
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(description.c_str(), &error);
  ASSERT_EQ(error, nullptr) << error->message;
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  int frames = 0;
  while (GstSample *sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 60 * GST_SECOND)) {
    GstBuffer *buffer = gst_sample_get_buffer(sample);
    EXPECT_EQ(gst_buffer_get_n_meta(buffer, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE), 2u);
    GstVideoRegionOfInterestMeta *first = gst_buffer_get_video_region_of_interest_meta_id(buffer, 0);
    GstVideoRegionOfInterestMeta *second = gst_buffer_get_video_region_of_interest_meta_id(buffer, 1);
    ASSERT_NE(first, nullptr);
    ASSERT_NE(second, nullptr);
    EXPECT_EQ(gst_video_region_of_interest_meta_get_param(first, "cff/classification"), nullptr);
    EXPECT_NE(gst_video_region_of_interest_meta_get_param(second, "cff/classification"), nullptr);
    gst_sample_unref(sample);
    ++frames;
  }
  EXPECT_EQ(frames, 2);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
}

TEST(CffClassify, NoModel_n) {
  auto result = start_pipeline("");
  EXPECT_NE(result.message.find("No model"), std::string::npos) << result.message;
  EXPECT_EQ(result.domain, GST_RESOURCE_ERROR);
  EXPECT_EQ(result.code, GST_RESOURCE_ERROR_SETTINGS);
}

TEST(CffClassify, MissingModelFile_n) {
  const std::string path = cff_gst_test::temporary_path("missing.cff");
  auto result = start_pipeline("model=" + path);
  EXPECT_NE(result.message.find(path), std::string::npos) << result.message;
  EXPECT_EQ(result.domain, GST_RESOURCE_ERROR);
  EXPECT_EQ(result.code, GST_RESOURCE_ERROR_NOT_FOUND);
}

TEST(CffClassify, CorruptModelFile_n) {
  const std::string path = cff_gst_test::temporary_path("corrupt-element.cff");
  std::ifstream in(test_model().path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() / 3);  // truncated
  auto result = start_pipeline("model=" + path);
  EXPECT_NE(result.message.find(path), std::string::npos) << result.message;
  EXPECT_EQ(result.domain, GST_RESOURCE_ERROR);
  EXPECT_EQ(result.code, GST_RESOURCE_ERROR_SETTINGS);
}

TEST(CffClassify, BadDevice_n) {
  auto result = start_pipeline("model=" + test_model().path + " device=tpu");
  EXPECT_NE(result.message.find("tpu"), std::string::npos) << result.message;
}

TEST(CffClassify, UnsupportedCaps_n) {
  Harness h;
  GstCaps *uyvy = gst_caps_from_string(caps_string(GST_VIDEO_FORMAT_UYVY, 28, 28).c_str());
  GstPad *sinkpad = gst_element_get_static_pad(h.element(), "sink");
  EXPECT_FALSE(gst_pad_query_accept_caps(sinkpad, uyvy));
  gst_object_unref(sinkpad);
  gst_caps_unref(uyvy);
  gst_harness_set_src_caps_str(h.h, caps_string(GST_VIDEO_FORMAT_UYVY, 28, 28).c_str());
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_UYVY, 28, 28);
  EXPECT_EQ(gst_harness_push(h.h, gst_buffer_new_allocate(nullptr, info.size, nullptr)), GST_FLOW_NOT_NEGOTIATED);
}

TEST(CffClassify, StateCyclingNullPlayingNull_n) {
  cff_gst_test::ensure_gst();
  const int cycles = cff_gst_test::state_cycles(100);
  const std::string description =
      "videotestsrc ! video/x-raw,format=GRAY8,width=28,height=28 ! cffclassify model=\"" + test_model().path +
      "\" ! fakesink sync=false";
  cff_gst_test::cycle_states(description, cycles);
}
