// cffgenerate driven through full pipelines with appsink.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/gstvideometa.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include "cff/engine.h"
#include "fixture.h"

using cff_gst_test::kSide;
using cff_gst_test::test_model;

namespace {

// What a run of "cffgenerate ! [caps] ! appsink" delivered.
struct GenerateRun {
  std::vector<std::vector<uint8_t>> frames;    // mapped bytes of each buffer
  std::vector<GstClockTime> pts, durations;
  std::vector<GstStructure *> metas;           // copies of "cff/generation", owned
  GstCaps *caps = nullptr;
  bool eos = false;
  std::string error;
  GQuark error_domain = 0;
  int error_code = 0;

  GenerateRun() = default;
  GenerateRun(const GenerateRun &) = delete;
  GenerateRun(GenerateRun &&o) noexcept
      : frames(std::move(o.frames)), pts(std::move(o.pts)), durations(std::move(o.durations)),
        metas(std::move(o.metas)), caps(o.caps), eos(o.eos), error(std::move(o.error)),
        error_domain(o.error_domain), error_code(o.error_code) {
    o.caps = nullptr;
    o.metas.clear();
  }
  ~GenerateRun() {
    for (auto *s : metas) gst_structure_free(s);
    if (caps) gst_caps_unref(caps);
  }
  int int_at(size_t i, const char *field) const {
    int v = -12345;
    EXPECT_TRUE(gst_structure_get_int(metas.at(i), field, &v)) << field;
    return v;
  }
};

const GstStructure *generation_param(GstBuffer *buffer) {
  gpointer state = nullptr;
  while (GstMeta *meta = gst_buffer_iterate_meta_filtered(buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    auto *roi = reinterpret_cast<GstVideoRegionOfInterestMeta *>(meta);
    if (roi->roi_type != g_quark_from_string("cff")) continue;
    if (auto *s = gst_video_region_of_interest_meta_get_param(roi, "cff/generation")) return s;
  }
  return nullptr;
}

void take_error(GstElement *pipeline, GenerateRun &run) {
  if (!run.error.empty()) return;
  GstBus *bus = gst_element_get_bus(pipeline);
  if (GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
    GError *error = nullptr;
    gst_message_parse_error(msg, &error, nullptr);
    run.error = error->message;
    run.error_domain = error->domain;
    run.error_code = error->code;
    g_error_free(error);
    gst_message_unref(msg);
  }
  gst_object_unref(bus);
}

// Pulls up to max_frames, until EOS, an error on the bus, or 60 s without a frame.
void pull(GstElement *pipeline, GstElement *sink, GenerateRun &run, int max_frames) {
  int idle_ms = 0;
  while (static_cast<int>(run.frames.size()) < max_frames && idle_ms < 60000) {
    GstSample *sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 200 * GST_MSECOND);
    if (!sample) {
      if (gst_app_sink_is_eos(GST_APP_SINK(sink))) break;
      take_error(pipeline, run);
      if (!run.error.empty()) break;
      idle_ms += 200;
      continue;
    }
    idle_ms = 0;
    GstBuffer *buffer = gst_sample_get_buffer(sample);
    if (!run.caps) run.caps = gst_caps_ref(gst_sample_get_caps(sample));
    GstMapInfo map;
    gst_buffer_map(buffer, &map, GST_MAP_READ);
    run.frames.emplace_back(map.data, map.data + map.size);
    gst_buffer_unmap(buffer, &map);
    run.pts.push_back(GST_BUFFER_PTS(buffer));
    run.durations.push_back(GST_BUFFER_DURATION(buffer));
    const GstStructure *s = generation_param(buffer);
    EXPECT_NE(s, nullptr) << "no cff/generation meta";
    run.metas.push_back(s ? gst_structure_copy(s) : gst_structure_new_empty("none"));
    gst_sample_unref(sample);
  }
}

std::string pipeline_text(const std::string &properties, const std::string &caps, const std::string &model) {
  return "cffgenerate name=gen device=cpu threads=1 model=\"" + model + "\" " + properties + " ! " +
         (caps.empty() ? "" : caps + " ! ") + "appsink name=sink sync=false";
}

// Runs to EOS (or error, or max_frames).
GenerateRun run_generate(const std::string &properties, const std::string &caps = "", int max_frames = 1000,
                 const std::string &model = "") {
  cff_gst_test::ensure_gst();
  GenerateRun run;
  GError *error = nullptr;
  GstElement *pipeline =
      gst_parse_launch(pipeline_text(properties, caps, model.empty() ? test_model().path : model).c_str(), &error);
  EXPECT_EQ(error, nullptr) << (error ? error->message : "");
  if (!pipeline) return run;
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE) pull(pipeline, sink, run, max_frames);
  run.eos = gst_app_sink_is_eos(GST_APP_SINK(sink));
  take_error(pipeline, run);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  return run;
}

// The frame's pixels as model input ((p / 255 - 0.5) / 0.5), for GRAY8 frames of the test model.
std::vector<float> as_input(const std::vector<uint8_t> &frame) {
  // GRAY8 rows of 28 bytes are padded to 28 (already a multiple of 4).
  std::vector<float> x(static_cast<size_t>(kSide * kSide));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(frame[i] / 127.5 - 1.0);
  return x;
}

}  // namespace

TEST(CffGenerate, BuffersCapsTimestampsAndEos) {
  auto run = run_generate("num-buffers=5 steps=5");
  ASSERT_TRUE(run.error.empty()) << run.error;
  ASSERT_EQ(run.frames.size(), 5u);
  EXPECT_TRUE(run.eos);
  GstVideoInfo info;
  ASSERT_TRUE(gst_video_info_from_caps(&info, run.caps));
  EXPECT_EQ(GST_VIDEO_INFO_FORMAT(&info), GST_VIDEO_FORMAT_GRAY8);
  EXPECT_EQ(GST_VIDEO_INFO_WIDTH(&info), kSide);
  EXPECT_EQ(GST_VIDEO_INFO_HEIGHT(&info), kSide);
  EXPECT_EQ(GST_VIDEO_INFO_FPS_N(&info), 30);  // fixated default
  EXPECT_EQ(GST_VIDEO_INFO_FPS_D(&info), 1);
  for (size_t i = 0; i < run.frames.size(); ++i) {
    EXPECT_EQ(run.frames[i].size(), GST_VIDEO_INFO_SIZE(&info));
    EXPECT_EQ(run.pts[i], gst_util_uint64_scale(i, GST_SECOND, 30)) << i;
    EXPECT_EQ(run.pts[i] + run.durations[i], gst_util_uint64_scale(i + 1, GST_SECOND, 30)) << i;
    EXPECT_EQ(run.int_at(i, "steps"), 5);
    EXPECT_STREQ(gst_structure_get_string(run.metas[i], "sampler"), "centripetal");
    double energy = 0.0, confidence = 0.0;
    EXPECT_TRUE(gst_structure_get_double(run.metas[i], "energy", &energy));
    EXPECT_TRUE(gst_structure_get_double(run.metas[i], "confidence", &confidence));
    EXPECT_GT(confidence, 0.0);
  }

  auto slow = run_generate("num-buffers=3 steps=2", "video/x-raw,framerate=10/1");
  ASSERT_EQ(slow.frames.size(), 3u);
  EXPECT_TRUE(slow.eos);
  EXPECT_EQ(slow.pts[2], 200 * GST_MSECOND);
  EXPECT_EQ(slow.durations[2], 100 * GST_MSECOND);
}

TEST(CffGenerate, SameSeedSameFramesOtherSeedOtherFrames) {
  auto a = run_generate("num-buffers=3 steps=5 seed=5");
  auto b = run_generate("num-buffers=3 steps=5 seed=5");
  auto c = run_generate("num-buffers=3 steps=5 seed=6");
  ASSERT_EQ(a.frames.size(), 3u);
  ASSERT_EQ(b.frames.size(), 3u);
  ASSERT_EQ(c.frames.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(a.frames[i], b.frames[i]) << i;
    EXPECT_NE(a.frames[i], c.frames[i]) << i;
    guint64 seed_a = 0, seed_c = 0;
    gst_structure_get_uint64(a.metas[i], "seed", &seed_a);
    gst_structure_get_uint64(c.metas[i], "seed", &seed_c);
    EXPECT_NE(seed_a, seed_c);
  }
  EXPECT_NE(a.frames[0], a.frames[1]);  // frames of one stream differ
}

TEST(CffGenerate, BatchGivesTheSameFrames) {
  // eta = 0 and no corrector: no step noise, so a sample depends on its own seed only, batched or not.
  auto single = run_generate("num-buffers=6 steps=5 eta=0 corrector-steps=0 batch=1");
  auto batched = run_generate("num-buffers=6 steps=5 eta=0 corrector-steps=0 batch=4");
  ASSERT_EQ(single.frames.size(), 6u);
  ASSERT_EQ(batched.frames.size(), 6u);
  EXPECT_TRUE(batched.eos);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(batched.int_at(i, "class-id"), static_cast<int>(i));  // label=cycle
    int worst = 0;
    for (size_t j = 0; j < single.frames[i].size(); ++j) {
      worst = std::max(worst, std::abs(single.frames[i][j] - batched.frames[i][j]));
    }
    EXPECT_LE(worst, 2) << "frame " << i;  // batched convolutions may round differently
  }
}

TEST(CffGenerate, TrajectoryEmitsEveryStep) {
  auto run = run_generate("num-buffers=8 steps=4 trajectory=true seed=9");
  ASSERT_EQ(run.frames.size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(run.int_at(i, "step"), static_cast<int>(i % 4)) << i;
    guint64 sample = 99;
    gst_structure_get_uint64(run.metas[i], "sample", &sample);
    EXPECT_EQ(sample, i / 4) << i;
  }
  EXPECT_NE(run.frames[0], run.frames[3]);  // the movie moves
  // The last step of a trajectory is the finished sample.
  auto finished = run_generate("num-buffers=2 steps=4 seed=9");
  ASSERT_EQ(finished.frames.size(), 2u);
  EXPECT_EQ(run.frames[3], finished.frames[0]);
  EXPECT_EQ(run.frames[7], finished.frames[1]);
}

TEST(CffGenerate, LabelByIndexNameNoneAndCycle) {
  const auto &labels = test_model().labels;
  auto by_name = run_generate("num-buffers=2 steps=2 label=" + labels[1]);
  ASSERT_EQ(by_name.frames.size(), 2u) << by_name.error;
  EXPECT_EQ(by_name.int_at(0, "class-id"), 1);
  EXPECT_EQ(std::string(gst_structure_get_string(by_name.metas[0], "label")), labels[1]);
  auto by_index = run_generate("num-buffers=2 steps=2 label=7");
  ASSERT_EQ(by_index.frames.size(), 2u);
  EXPECT_EQ(by_index.int_at(1, "class-id"), 7);
  auto none = run_generate("num-buffers=2 steps=2 label=none");
  ASSERT_EQ(none.frames.size(), 2u);
  EXPECT_EQ(none.int_at(0, "class-id"), -1);
  EXPECT_STREQ(gst_structure_get_string(none.metas[0], "label"), "");
  auto cycle = run_generate("num-buffers=12 steps=1 label=cycle batch=5");
  ASSERT_EQ(cycle.frames.size(), 12u);
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(cycle.int_at(i, "class-id"), static_cast<int>(i % 10));
}

TEST(CffGenerate, OtherSamplersAndDecoupledGuidance) {
  for (const char *sampler : {"langevin", "ascent"}) {
    auto run = run_generate(std::string("num-buffers=2 steps=3 label=2 sampler=") + sampler);
    ASSERT_EQ(run.frames.size(), 2u) << sampler << ": " << run.error;
    EXPECT_STREQ(gst_structure_get_string(run.metas[0], "sampler"), sampler);
  }
  // The model guiding itself through the decoupled path: grad LSE + w grad log p(y|x) is the same
  // field as the coupled (1 - w) grad LSE + w grad f_y, so the frames must agree.
  auto guided = run_generate("num-buffers=2 steps=3 label=2 guidance=2 guide-model=\"" + test_model().path + "\"");
  ASSERT_EQ(guided.frames.size(), 2u) << guided.error;
  auto plain = run_generate("num-buffers=2 steps=3 label=2 guidance=2");
  ASSERT_EQ(plain.frames.size(), 2u);
  int worst = 0;
  for (size_t j = 0; j < plain.frames[0].size(); ++j) {
    worst = std::max(worst, std::abs(guided.frames[0][j] - plain.frames[0][j]));
  }
  EXPECT_LE(worst, 2);
  auto unguided = run_generate("num-buffers=2 steps=3 label=2 guidance=0");
  EXPECT_NE(unguided.frames.at(0), plain.frames[0]);  // guidance changes the path
}

TEST(CffGenerate, StepSpacingAndCorrectorReachTheSampler) {
  // eta = 0 and the same seed: only the new settings can change the frames.
  auto plain = run_generate("num-buffers=2 steps=4 eta=0 seed=3 spacing-power=1 corrector-steps=0");
  auto spaced = run_generate("num-buffers=2 steps=4 eta=0 seed=3 spacing-power=2 corrector-steps=0");
  auto corrected = run_generate("num-buffers=2 steps=4 eta=0 seed=3 spacing-power=1 corrector-steps=1");
  auto stronger = run_generate("num-buffers=2 steps=4 eta=0 seed=3 spacing-power=1 corrector-steps=1 corrector-snr=0.3");
  ASSERT_EQ(plain.frames.size(), 2u) << plain.error;
  ASSERT_EQ(spaced.frames.size(), 2u) << spaced.error;
  ASSERT_EQ(corrected.frames.size(), 2u) << corrected.error;
  ASSERT_EQ(stronger.frames.size(), 2u) << stronger.error;
  EXPECT_NE(plain.frames[0], spaced.frames[0]);
  EXPECT_NE(plain.frames[0], corrected.frames[0]);
  EXPECT_NE(corrected.frames[0], stronger.frames[0]);
  // A corrector adds passes, not frames: a trajectory still has one frame per step.
  auto movie = run_generate("num-buffers=4 steps=4 eta=0 seed=3 corrector-steps=2 trajectory=true");
  ASSERT_EQ(movie.frames.size(), 4u) << movie.error;
  EXPECT_EQ(movie.int_at(3, "step"), 3);

  // The defaults are libcff's (docs/recipe.md), and out-of-range values are refused by the property.
  cff_gst_test::ensure_gst();
  GstElement *gen = gst_element_factory_make("cffgenerate", nullptr);
  ASSERT_NE(gen, nullptr);
  double power = 0.0, snr = 0.0, t_start = 0.0;
  guint corrector = 99;
  g_object_get(gen, "spacing-power", &power, "corrector-steps", &corrector, "corrector-snr", &snr, "t-start", &t_start,
               nullptr);
  EXPECT_DOUBLE_EQ(t_start, cff::CentripetalDefaults::t_start);
  EXPECT_DOUBLE_EQ(power, cff::CentripetalDefaults::spacing_power);
  EXPECT_EQ(corrector, static_cast<guint>(cff::CentripetalDefaults::corrector_steps));
  EXPECT_DOUBLE_EQ(snr, cff::CentripetalDefaults::corrector_snr);
  GParamSpec *spec = g_object_class_find_property(G_OBJECT_GET_CLASS(gen), "spacing-power");
  ASSERT_NE(spec, nullptr);
  GValue value = G_VALUE_INIT;
  g_value_init(&value, G_TYPE_DOUBLE);
  g_value_set_double(&value, 0.0);
  EXPECT_TRUE(g_param_value_validate(spec, &value));  // 0 is out of range and gets clamped
  g_value_unset(&value);
  gst_object_unref(gen);
}

TEST(CffGenerate, LabelChangeWhilePlayingTakesEffect) {
  cff_gst_test::ensure_gst();
  const std::string text = "cffgenerate name=gen device=cpu threads=1 steps=2 label=1 model=\"" + test_model().path +
                           "\" ! appsink name=sink sync=false max-buffers=1";
  GstElement *pipeline = gst_parse_launch(text.c_str(), nullptr);
  ASSERT_NE(pipeline, nullptr);
  GstElement *gen = gst_bin_get_by_name(GST_BIN(pipeline), "gen");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GenerateRun before, after;
  pull(pipeline, sink, before, 3);
  g_object_set(gen, "label", "5", nullptr);
  pull(pipeline, sink, after, 6);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  ASSERT_EQ(before.frames.size(), 3u);
  ASSERT_EQ(after.frames.size(), 6u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(before.int_at(i, "class-id"), 1);
  // At most the frame in the appsink queue and the one blocked in push were made before the change.
  for (size_t i = 2; i < 6; ++i) EXPECT_EQ(after.int_at(i, "class-id"), 5) << i;
  gchar *label = nullptr;
  g_object_get(gen, "label", &label, nullptr);
  EXPECT_STREQ(label, "5");
  g_free(label);
  gst_object_unref(gen);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
}

TEST(CffGenerate, GeneratedFramesShowTheRequestedClass) {
  // 20 steps of the default sampler (docs/recipe.md). The test model is weak (~45%
  // accuracy after seconds of training), so the bar is 2x chance, read by the same model.
  const int frames = 20;
  auto run = run_generate("num-buffers=" + std::to_string(frames) + " steps=20 label=cycle batch=10 seed=1");
  ASSERT_EQ(run.frames.size(), static_cast<size_t>(frames)) << run.error;
  auto engine = cff::Engine::acquire(test_model().path, "cpu", -1);
  std::vector<float> batch;
  for (const auto &f : run.frames) {
    auto x = as_input(f);
    batch.insert(batch.end(), x.begin(), x.end());
  }
  auto results = engine->classify(batch.data(), frames);
  int agree = 0, meta_agree = 0;
  for (int i = 0; i < frames; ++i) {
    agree += results[static_cast<size_t>(i)].class_id == i % 10;
    meta_agree += run.int_at(static_cast<size_t>(i), "predicted-class-id") == i % 10;
  }
  std::printf("[cffgenerate] %d of %d generated frames classified as the requested class (chance: %d); "
              "meta says %d\n",
              agree, frames, frames / 10, meta_agree);
  EXPECT_GE(agree, 2 * frames / 10);
}

TEST(CffGenerate, LiveSourceAndColourModel) {
  auto live = run_generate("num-buffers=3 steps=2 is-live=true");
  ASSERT_EQ(live.frames.size(), 3u) << live.error;
  EXPECT_TRUE(live.eos);
  // A live source's timestamps are running times (base class offset), one frame duration apart.
  EXPECT_EQ(live.pts[2] - live.pts[1], gst_util_uint64_scale(2, GST_SECOND, 30) - gst_util_uint64_scale(1, GST_SECOND, 30));

  auto colour = run_generate("num-buffers=2 steps=2", "", 1000, cff_gst_test::colour_model_path());
  ASSERT_EQ(colour.frames.size(), 2u) << colour.error;
  GstVideoInfo info;
  ASSERT_TRUE(gst_video_info_from_caps(&info, colour.caps));
  EXPECT_EQ(GST_VIDEO_INFO_FORMAT(&info), GST_VIDEO_FORMAT_RGB);
  EXPECT_EQ(GST_VIDEO_INFO_WIDTH(&info), 16);
  EXPECT_EQ(GST_VIDEO_INFO_HEIGHT(&info), 12);
}

// A live cffgenerate answers the LATENCY query with one frame (videotestsrc does the same), so a live
// pipeline's sinks wait for it; frames come from a buffer pool, strides and all.
TEST(CffGenerate, LiveLatencyIsOneFrameAndFramesComeFromAPool) {
  cff_gst_test::ensure_gst();
  const std::string text = "cffgenerate name=gen device=cpu threads=1 steps=1 is-live=true model=\"" +
                           test_model().path + "\" ! video/x-raw,framerate=10/1 ! appsink name=sink max-buffers=2";
  GstElement *pipeline = gst_parse_launch(text.c_str(), nullptr);
  ASSERT_NE(pipeline, nullptr);
  GstElement *gen = gst_bin_get_by_name(GST_BIN(pipeline), "gen");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstSample *sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 10 * GST_SECOND);
  ASSERT_NE(sample, nullptr);
  GstBuffer *buffer = gst_sample_get_buffer(sample);
  EXPECT_NE(buffer->pool, nullptr);
  EXPECT_NE(gst_buffer_get_video_region_of_interest_meta(buffer), nullptr);
  gst_sample_unref(sample);
  GstQuery *latency = gst_query_new_latency();
  ASSERT_TRUE(gst_element_query(gen, latency));
  gboolean live = FALSE;
  GstClockTime min = 0, max = 0;
  gst_query_parse_latency(latency, &live, &min, &max);
  EXPECT_TRUE(live);
  EXPECT_EQ(min, GST_SECOND / 10);
  gst_query_unref(latency);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(gen);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
}

TEST(CffGenerate, NoModel_n) {
  cff_gst_test::ensure_gst();
  GstElement *pipeline = gst_parse_launch("cffgenerate num-buffers=1 ! fakesink", nullptr);
  ASSERT_NE(pipeline, nullptr);
  EXPECT_EQ(gst_element_set_state(pipeline, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  GenerateRun run;
  take_error(pipeline, run);
  EXPECT_NE(run.error.find("No model"), std::string::npos) << run.error;
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}

TEST(CffGenerate, MissingAndCorruptModelFiles_n) {
  const std::string missing = cff_gst_test::temporary_path("missing-generate.cff");
  auto run = run_generate("num-buffers=1", "", 1000, missing);
  EXPECT_TRUE(run.frames.empty());
  EXPECT_NE(run.error.find(missing), std::string::npos) << run.error;
  EXPECT_EQ(run.error_domain, GST_RESOURCE_ERROR);
  EXPECT_EQ(run.error_code, GST_RESOURCE_ERROR_NOT_FOUND);

  const std::string corrupt = cff_gst_test::temporary_path("corrupt-generate.cff");
  std::ofstream(corrupt, std::ios::binary) << "CFFMODEL and then nothing sensible";
  auto bad = run_generate("num-buffers=1", "", 1000, corrupt);
  EXPECT_TRUE(bad.frames.empty());
  EXPECT_NE(bad.error.find(corrupt), std::string::npos) << bad.error;
  EXPECT_EQ(bad.error_code, GST_RESOURCE_ERROR_SETTINGS);

  const std::string guide = cff_gst_test::temporary_path("missing-guide.cff");
  auto no_guide = run_generate("num-buffers=1 guide-model=\"" + guide + "\"");
  EXPECT_NE(no_guide.error.find(guide), std::string::npos) << no_guide.error;
  auto mismatch = run_generate("num-buffers=1 guide-model=\"" + cff_gst_test::colour_model_path() + "\"");
  EXPECT_NE(mismatch.error.find("does not match"), std::string::npos) << mismatch.error;
}

TEST(CffGenerate, UnknownLabel_n) {
  auto run = run_generate("num-buffers=1 label=Sneakerz");
  EXPECT_TRUE(run.frames.empty());
  EXPECT_NE(run.error.find("Sneakerz"), std::string::npos) << run.error;
  auto out_of_range = run_generate("num-buffers=1 label=10");
  EXPECT_NE(out_of_range.error.find("10"), std::string::npos) << out_of_range.error;
}

// The warnings on the pipeline's bus so far, their debug texts joined.
std::vector<std::string> take_warnings(GstElement *pipeline) {
  std::vector<std::string> warnings;
  GstBus *bus = gst_element_get_bus(pipeline);
  while (GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING)) {
    GError *error = nullptr;
    gchar *debug = nullptr;
    gst_message_parse_warning(msg, &error, &debug);
    warnings.push_back(std::string(error->message) + " | " + (debug ? debug : ""));
    g_error_free(error);
    g_free(debug);
    gst_message_unref(msg);
  }
  gst_object_unref(bus);
  return warnings;
}

// t-start beyond the model's T and an unknown label are treated alike: refused at start; set while
// playing, warned about once each while the frames go on with the previous values.
TEST(CffGenerate, SettingsThatDoNotFitTheModelAreRefusedAtStartAndWarnedAboutWhilePlaying_n) {
  auto refused = run_generate("num-buffers=1 t-start=5000");
  EXPECT_TRUE(refused.frames.empty());
  EXPECT_NE(refused.error.find("t_start must be in (0, 1000]"), std::string::npos) << refused.error;

  cff_gst_test::ensure_gst();
  const std::string text = "cffgenerate name=gen device=cpu threads=1 steps=2 label=1 model=\"" + test_model().path +
                           "\" ! appsink name=sink sync=false max-buffers=1";
  GstElement *pipeline = gst_parse_launch(text.c_str(), nullptr);
  ASSERT_NE(pipeline, nullptr);
  GstElement *gen = gst_bin_get_by_name(GST_BIN(pipeline), "gen");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GenerateRun run;
  pull(pipeline, sink, run, 2);
  g_object_set(gen, "t-start", 5000.0, "label", "Nope", nullptr);
  pull(pipeline, sink, run, 8);
  const auto warnings = take_warnings(pipeline);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  EXPECT_TRUE(run.error.empty()) << run.error;
  ASSERT_EQ(run.frames.size(), 8u);
  for (size_t i = 0; i < run.frames.size(); ++i) {
    EXPECT_EQ(run.int_at(i, "class-id"), 1) << i;
    EXPECT_EQ(run.int_at(i, "steps"), 2) << i;
  }
  int t_start = 0, label = 0;
  for (const auto &w : warnings) {
    t_start += w.find("t_start must be in (0, 1000]") != std::string::npos;
    label += w.find("'Nope'") != std::string::npos;
  }
  EXPECT_EQ(t_start, 1) << testing::PrintToString(warnings);
  EXPECT_EQ(label, 1) << testing::PrintToString(warnings);
  gst_object_unref(gen);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
}

TEST(CffGenerate, StateCyclingNullPlayingNull_n) {
  cff_gst_test::ensure_gst();
  const std::string text =
      "cffgenerate steps=1 device=cpu threads=1 model=\"" + test_model().path + "\" ! fakesink sync=false";
  cff_gst_test::cycle_states(text, cff_gst_test::state_cycles(10));
}
