// State and threading stress (issue 19): properties set from several threads while buffers flow, two
// cffclassify elements sharing one model file with different settings, and two pipelines run at once in
// two threads of one process. Each test checks what reaches the sink (count, timestamps, results) and
// that no error or warning reaches the bus; the suite runs with G_DEBUG=fatal-criticals, so a GLib
// critical aborts. The elements keep the process's LibTorch thread count (no threads=: setting one that
// differs from an earlier test's is a warning).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/gstvideometa.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include "fixture.h"

using cff_gst_test::kSide;
using cff_gst_test::test_model;

namespace {

// PTS of frame i of every stream here (30/1), as the sources stamp them.
GstClockTime pts_of(int i) { return gst_util_uint64_scale(static_cast<guint64>(i), GST_SECOND, 30); }

std::string quoted_model() { return "\"" + test_model().path + "\""; }

// The "cff/classification" structures on a buffer, and how many "cff" region metas it carries.
std::vector<const GstStructure *> classifications(GstBuffer *buffer, int *cff_metas = nullptr) {
  std::vector<const GstStructure *> found;
  gpointer state = nullptr;
  int count = 0;
  while (GstMeta *meta = gst_buffer_iterate_meta_filtered(buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    auto *roi = reinterpret_cast<GstVideoRegionOfInterestMeta *>(meta);
    if (roi->roi_type == g_quark_from_string("cff")) ++count;
    if (auto *s = gst_video_region_of_interest_meta_get_param(roi, "cff/classification")) found.push_back(s);
  }
  if (cff_metas) *cff_metas = count;
  return found;
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
guint array_size(const GstStructure *s, const char *name) {
  const GValue *v = gst_structure_get_value(s, name);
  return v && GST_VALUE_HOLDS_ARRAY(v) ? gst_value_array_get_size(v) : 0;
}

// The test model's held-out samples as GRAY8 28 x 28 frames (rows of 28 bytes need no padding), frame i
// being sample i % samples at PTS i / 30 s.
void push_samples(GstElement *appsrc, int frames) {
  const auto &samples = test_model().samples;
  for (int i = 0; i < frames; ++i) {
    const auto &pixels = samples[static_cast<size_t>(i) % samples.size()].pixels;
    GstBuffer *buffer = gst_buffer_new_memdup(pixels.data(), pixels.size());
    GST_BUFFER_PTS(buffer) = pts_of(i);
    GST_BUFFER_DURATION(buffer) = pts_of(i + 1) - pts_of(i);
    ASSERT_EQ(gst_app_src_push_buffer(GST_APP_SRC(appsrc), buffer), GST_FLOW_OK) << i;
  }
  ASSERT_EQ(gst_app_src_end_of_stream(GST_APP_SRC(appsrc)), GST_FLOW_OK);
}

int reference_class(int frame) {
  const auto &samples = test_model().samples;
  return samples[static_cast<size_t>(frame) % samples.size()].reference_class;
}

std::string sample_caps() {
  return "video/x-raw,format=GRAY8,width=" + std::to_string(kSide) + ",height=" + std::to_string(kSide) +
         ",framerate=30/1";
}

// A pipeline from a description, with its elements looked up by name; unrefs it at the end.
struct Pipeline {
  GstElement *pipeline = nullptr;

  explicit Pipeline(const std::string &description) {
    cff_gst_test::ensure_gst();
    GError *error = nullptr;
    pipeline = gst_parse_launch(description.c_str(), &error);
    EXPECT_EQ(error, nullptr) << (error ? error->message : "") << "\n" << description;
    g_clear_error(&error);
  }
  ~Pipeline() {
    if (pipeline) {
      gst_element_set_state(pipeline, GST_STATE_NULL);
      gst_object_unref(pipeline);
    }
  }
  // A new reference, unref it when done (or use `with`).
  GstElement *get(const char *name) const { return gst_bin_get_by_name(GST_BIN(pipeline), name); }

  bool play() const { return gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE; }

  // Every ERROR and WARNING on the bus so far, one per line ("" when none); element messages named
  // `message_name` are counted into *messages.
  std::string bus_problems(const char *message_name = nullptr, int *messages = nullptr) const {
    std::string problems;
    GstBus *bus = gst_element_get_bus(pipeline);
    while (GstMessage *msg = gst_bus_pop(bus)) {
      if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR || GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING) {
        GError *error = nullptr;
        gchar *debug = nullptr;
        if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
          gst_message_parse_error(msg, &error, &debug);
        } else {
          gst_message_parse_warning(msg, &error, &debug);
        }
        problems += std::string(GST_MESSAGE_SRC_NAME(msg)) + ": " + (error ? error->message : "?") + " (" +
                    (debug ? debug : "") + ")\n";
        g_clear_error(&error);
        g_free(debug);
      } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ELEMENT && message_name && messages) {
        const GstStructure *s = gst_message_get_structure(msg);
        if (s && gst_structure_has_name(s, message_name)) ++*messages;
      }
      gst_message_unref(msg);
    }
    gst_object_unref(bus);
    return problems;
  }
};

// Pulls every buffer of the appsink named `name` until EOS (or 60 s without a buffer), calling `each`
// with its index; returns how many came and whether EOS was reached.
struct Pulled {
  int frames = 0;
  bool eos = false;
};
Pulled pull_all(const Pipeline &p, const char *name, const std::function<void(GstBuffer *, int)> &each) {
  Pulled pulled;
  GstElement *sink = p.get(name);
  EXPECT_NE(sink, nullptr) << name;
  if (!sink) return pulled;
  while (GstSample *sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 60 * GST_SECOND)) {
    each(gst_sample_get_buffer(sample), pulled.frames++);
    gst_sample_unref(sample);
  }
  pulled.eos = gst_app_sink_is_eos(GST_APP_SINK(sink));
  gst_object_unref(sink);
  return pulled;
}

// Runs `setters` (each given a random generator) in their own threads, over and over with a short pause,
// until the returned object is stopped or destroyed; also a thread reading every property back.
class PropertyStorm {
 public:
  PropertyStorm(GstElement *element, std::vector<std::function<void(GstElement *, std::mt19937 &)>> setters)
      : element_(GST_ELEMENT(gst_object_ref(element))) {
    unsigned seed = 1;
    setters.push_back([](GstElement *e, std::mt19937 &) {  // reader: get_property against the setters
      guint n = 0;
      GParamSpec **specs = g_object_class_list_properties(G_OBJECT_GET_CLASS(e), &n);
      for (guint i = 0; i < n; ++i) {
        if (!(specs[i]->flags & G_PARAM_READABLE)) continue;
        GValue v = G_VALUE_INIT;
        g_value_init(&v, specs[i]->value_type);
        g_object_get_property(G_OBJECT(e), specs[i]->name, &v);
        g_value_unset(&v);
      }
      g_free(specs);
    });
    for (auto &setter : setters) {
      threads_.emplace_back([this, setter, seed] {
        std::mt19937 rng(seed);
        while (!stop_.load()) {
          setter(element_, rng);
          calls_.fetch_add(1);
          g_usleep(200);
        }
      });
      ++seed;
    }
  }
  ~PropertyStorm() { stop(); }
  // Stops the threads; returns how many property calls they made.
  long stop() {
    stop_.store(true);
    for (auto &t : threads_) {
      if (t.joinable()) t.join();
    }
    if (element_) {
      gst_object_unref(element_);
      element_ = nullptr;
    }
    return calls_.load();
  }

 private:
  GstElement *element_;
  std::atomic<bool> stop_{false};
  std::atomic<long> calls_{0};
  std::vector<std::thread> threads_;
};

// Sets a property from its string form (enums by nick), as gst-launch would.
void set(GstElement *e, const char *name, const std::string &value) {
  gst_util_set_object_arg(G_OBJECT(e), name, value.c_str());
}

// Checks a cffclassify result of frame i while interval (1, 2 or 3) and top-k (1, 3 or 10) change under it.
// A frame carries the result of the last frame the model ran on, which with those intervals is one of
// frames i - 5 .. i (only multiples of lcm(2, 3) = 6 are sure to run); the result must be that frame's
// reference (class and confidence), never older than the one before (*source: the frame it came from).
// The top-k list is headed by the class, and the OOD flag agrees with the score and threshold it carries.
void check_classification(GstBuffer *buffer, int i, int *source) {
  int metas = 0;
  auto found = classifications(buffer, &metas);
  ASSERT_EQ(found.size(), 1u) << "frame " << i;
  EXPECT_EQ(metas, 1) << "frame " << i;
  const GstStructure *s = found[0];
  const int class_id = int_field(s, "class-id");
  const double confidence = double_field(s, "confidence");
  const auto &samples = test_model().samples;
  int from = -1;
  for (int j = i; j >= std::max(0, i - 5) && from < 0; --j) {
    const auto &sample = samples[static_cast<size_t>(j) % samples.size()];
    if (sample.reference_class == class_id && std::abs(sample.reference_confidence - confidence) < 1e-4) from = j;
  }
  EXPECT_GE(from, 0) << "frame " << i << ": class " << class_id << " (confidence " << confidence
                     << ") is the result of none of the last six frames";
  if (from >= 0) {
    EXPECT_GE(from, *source) << "frame " << i << " carries an older result than the frame before";
    *source = from;
  }
  const guint k = array_size(s, "top-k-class-ids");
  EXPECT_TRUE(k == 1 || k == 3 || k == 10) << "frame " << i << ": top-k " << k;
  if (k > 0) {
    const GValue *ids = gst_structure_get_value(s, "top-k-class-ids");
    EXPECT_EQ(g_value_get_int(gst_value_array_get_value(ids, 0)), class_id) << "frame " << i;
  }
  EXPECT_EQ(array_size(s, "top-k-labels"), k);
  EXPECT_EQ(array_size(s, "top-k-probabilities"), k);
  if (!bool_field(s, "non-finite")) {
    EXPECT_EQ(bool_field(s, "ood"), double_field(s, "score") > double_field(s, "ood-threshold")) << "frame " << i;
  }
}

}  // namespace

TEST(Stress, ClassifyPropertiesFromThreadsWhilePlaying) {
  constexpr int kFrames = 900;
  Pipeline p("appsrc name=src format=time max-bytes=0 caps=\"" + sample_caps() +
             "\" ! cffclassify name=classify device=cpu model=" + quoted_model() +
             " ! appsink name=sink sync=false");
  ASSERT_NE(p.pipeline, nullptr);
  GstElement *classify = p.get("classify");
  PropertyStorm storm(classify, {
      [](GstElement *e, std::mt19937 &rng) {
        if (rng() % 4 == 0) {
          g_object_set(e, "calibrated-threshold", TRUE, nullptr);
        } else {
          g_object_set(e, "ood-threshold", std::uniform_real_distribution<double>(-20.0, 20.0)(rng), nullptr);
        }
      },
      [](GstElement *e, std::mt19937 &rng) { g_object_set(e, "top-k", std::vector<guint>{1, 3, 10}[rng() % 3], nullptr); },
      [](GstElement *e, std::mt19937 &rng) { g_object_set(e, "interval", 1 + static_cast<guint>(rng() % 3), nullptr); },
      [](GstElement *e, std::mt19937 &rng) {
        set(e, "message", std::vector<std::string>{"none", "ood", "all"}[rng() % 3]);
        g_object_set(e, "overlay", static_cast<gboolean>(rng() % 2), nullptr);
      },
  });
  ASSERT_TRUE(p.play());
  GstElement *src = p.get("src");
  push_samples(src, kFrames);
  gst_object_unref(src);
  GstClockTime last = GST_CLOCK_TIME_NONE;
  int source = 0;
  const auto pulled = pull_all(p, "sink", [&](GstBuffer *buffer, int i) {
    EXPECT_EQ(GST_BUFFER_PTS(buffer), pts_of(i)) << "frame " << i;
    EXPECT_TRUE(last == GST_CLOCK_TIME_NONE || GST_BUFFER_PTS(buffer) > last) << "frame " << i;
    last = GST_BUFFER_PTS(buffer);
    check_classification(buffer, i, &source);
  });
  const long calls = storm.stop();
  gst_object_unref(classify);
  EXPECT_EQ(pulled.frames, kFrames);
  EXPECT_TRUE(pulled.eos);
  EXPECT_GT(calls, 10);
  int messages = 0;
  EXPECT_EQ(p.bus_problems("cffclassify", &messages), "");
  EXPECT_LE(messages, kFrames);
  std::printf("[ stress   ] %d frames, %ld property calls, %d messages\n", pulled.frames, calls, messages);
}

TEST(Stress, DenoisePropertiesFromThreadsWhilePlaying) {
  constexpr int kFrames = 60;
  Pipeline p("videotestsrc num-buffers=" + std::to_string(kFrames) +
             " pattern=snow ! video/x-raw,format=GRAY8,width=40,height=30,framerate=30/1 ! "
             "cffdenoise name=denoise device=cpu steps=1 model=" + quoted_model() +
             " ! appsink name=sink sync=false");
  ASSERT_NE(p.pipeline, nullptr);
  GstElement *denoise = p.get("denoise");
  PropertyStorm storm(denoise, {
      [](GstElement *e, std::mt19937 &rng) {
        g_object_set(e, "sigma", std::uniform_real_distribution<double>(0.0, 60.0)(rng), nullptr);
      },
      [](GstElement *e, std::mt19937 &rng) {
        g_object_set(e, "strength", std::uniform_real_distribution<double>(0.0, 1.0)(rng), nullptr);
      },
      [](GstElement *e, std::mt19937 &rng) { g_object_set(e, "steps", 1 + static_cast<guint>(rng() % 3), nullptr); },
      [](GstElement *e, std::mt19937 &rng) { g_object_set(e, "message", static_cast<gboolean>(rng() % 2), nullptr); },
  });
  ASSERT_TRUE(p.play());
  const auto pulled = pull_all(p, "sink", [&](GstBuffer *buffer, int i) {
    EXPECT_EQ(GST_BUFFER_PTS(buffer), pts_of(i)) << "frame " << i;
    EXPECT_EQ(gst_buffer_get_size(buffer), 40u * 30u) << "frame " << i;
  });
  const long calls = storm.stop();
  gst_object_unref(denoise);
  EXPECT_EQ(pulled.frames, kFrames);
  EXPECT_TRUE(pulled.eos);
  EXPECT_GT(calls, 10);
  int messages = 0;
  EXPECT_EQ(p.bus_problems("cffdenoise", &messages), "");
  EXPECT_LE(messages, kFrames);
  std::printf("[ stress   ] %d frames, %ld property calls, %d messages\n", pulled.frames, calls, messages);
}

TEST(Stress, GeneratePropertiesFromThreadsWhilePlaying) {
  constexpr int kFrames = 40;
  Pipeline p("cffgenerate name=generate num-buffers=" + std::to_string(kFrames) +
             " steps=2 device=cpu model=" + quoted_model() + " ! appsink name=sink sync=false");
  ASSERT_NE(p.pipeline, nullptr);
  GstElement *generate = p.get("generate");
  const auto &labels = test_model().labels;
  PropertyStorm storm(generate, {
      [&labels](GstElement *e, std::mt19937 &rng) {
        const int choice = static_cast<int>(rng() % 4);
        const std::string label = choice == 0 ? "cycle" : choice == 1 ? "none" : choice == 2 ? "3" : labels.at(1);
        g_object_set(e, "label", label.c_str(), nullptr);
      },
      [](GstElement *e, std::mt19937 &rng) { g_object_set(e, "seed", static_cast<guint64>(rng()), nullptr); },
      [](GstElement *e, std::mt19937 &rng) { g_object_set(e, "steps", 1 + static_cast<guint>(rng() % 3), nullptr); },
      [](GstElement *e, std::mt19937 &rng) {
        g_object_set(e, "guidance", std::uniform_real_distribution<double>(0.0, 3.0)(rng), nullptr);
      },
  });
  ASSERT_TRUE(p.play());
  const auto pulled = pull_all(p, "sink", [&](GstBuffer *buffer, int i) {
    EXPECT_EQ(GST_BUFFER_PTS(buffer), pts_of(i)) << "frame " << i;
    EXPECT_EQ(gst_buffer_get_size(buffer), static_cast<gsize>(kSide * kSide)) << "frame " << i;
    const GstStructure *s = nullptr;
    gpointer state = nullptr;
    while (GstMeta *meta = gst_buffer_iterate_meta_filtered(buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
      s = gst_video_region_of_interest_meta_get_param(reinterpret_cast<GstVideoRegionOfInterestMeta *>(meta),
                                                      "cff/generation");
      if (s) break;
    }
    ASSERT_NE(s, nullptr) << "frame " << i;
    const int steps = int_field(s, "steps");
    EXPECT_TRUE(steps >= 1 && steps <= 3) << "frame " << i << ": steps " << steps;
    const int class_id = int_field(s, "class-id");
    EXPECT_TRUE(class_id >= -1 && class_id < static_cast<int>(labels.size())) << "frame " << i;
  });
  const long calls = storm.stop();
  gst_object_unref(generate);
  EXPECT_EQ(pulled.frames, kFrames);
  EXPECT_TRUE(pulled.eos);
  EXPECT_GT(calls, 10);
  EXPECT_EQ(p.bus_problems(), "");
  std::printf("[ stress   ] %d frames, %ld property calls\n", pulled.frames, calls);
}

// Two cffclassify elements on one model file (one shared engine) behind a tee, with different top-k,
// interval and thresholds: each branch gets its own results, right for its own settings.
TEST(Stress, TwoClassifiersShareOneModelWithDifferentSettings) {
  constexpr int kFrames = 200;
  Pipeline p("appsrc name=src format=time max-bytes=0 caps=\"" + sample_caps() +
             "\" ! tee name=t "
             "t. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! cffclassify name=a device=cpu "
             "top-k=1 interval=1 score=energy model=" + quoted_model() + " ! appsink name=sink_a sync=false "
             "t. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! cffclassify name=b device=cpu "
             "top-k=5 interval=2 ood-threshold=-1e9 overlay=true model=" + quoted_model() +
             " ! appsink name=sink_b sync=false");
  ASSERT_NE(p.pipeline, nullptr);
  ASSERT_TRUE(p.play());
  GstElement *src = p.get("src");
  push_samples(src, kFrames);
  gst_object_unref(src);
  const auto &samples = test_model().samples;
  std::vector<int> class_a(kFrames, -1);
  std::vector<double> confidence_a(kFrames, -1.0);
  const auto pulled_a = pull_all(p, "sink_a", [&](GstBuffer *buffer, int i) {
    EXPECT_EQ(GST_BUFFER_PTS(buffer), pts_of(i)) << "frame " << i;
    int metas = 0;
    auto found = classifications(buffer, &metas);
    ASSERT_EQ(found.size(), 1u) << "a, frame " << i;
    EXPECT_EQ(metas, 1);
    const auto &sample = samples[static_cast<size_t>(i) % samples.size()];
    class_a[static_cast<size_t>(i)] = int_field(found[0], "class-id");
    confidence_a[static_cast<size_t>(i)] = double_field(found[0], "confidence");
    EXPECT_EQ(class_a[static_cast<size_t>(i)], sample.reference_class) << "a, frame " << i;
    EXPECT_NEAR(confidence_a[static_cast<size_t>(i)], sample.reference_confidence, 1e-3) << "a, frame " << i;
    EXPECT_EQ(array_size(found[0], "top-k-class-ids"), 1u);
    EXPECT_NEAR(double_field(found[0], "ood-threshold"), test_model().threshold, 1e-6 * (1 + std::abs(test_model().threshold)));
  });
  const auto pulled_b = pull_all(p, "sink_b", [&](GstBuffer *buffer, int i) {
    EXPECT_EQ(GST_BUFFER_PTS(buffer), pts_of(i)) << "frame " << i;
    int metas = 0;
    auto found = classifications(buffer, &metas);
    ASSERT_EQ(found.size(), 1u) << "b, frame " << i;
    EXPECT_EQ(metas, 1);
    const int ran = i - i % 2;  // interval 2: odd frames carry the previous frame's result
    const auto &sample = samples[static_cast<size_t>(ran) % samples.size()];
    EXPECT_EQ(int_field(found[0], "class-id"), sample.reference_class) << "b, frame " << i;
    EXPECT_NEAR(double_field(found[0], "confidence"), sample.reference_confidence, 1e-3) << "b, frame " << i;
    EXPECT_EQ(array_size(found[0], "top-k-class-ids"), 5u);
    EXPECT_TRUE(bool_field(found[0], "ood")) << "b, frame " << i;
    EXPECT_EQ(double_field(found[0], "ood-threshold"), -1e9);
  });
  EXPECT_EQ(pulled_a.frames, kFrames);
  EXPECT_EQ(pulled_b.frames, kFrames);
  EXPECT_TRUE(pulled_a.eos && pulled_b.eos);
  EXPECT_EQ(p.bus_problems(), "");
}

// Two pipelines, each in its own thread, at the same time in one process, three times over: samples
// through cffclassify (results checked), and cffgenerate into cffclassify (count and timestamps).
TEST(Stress, TwoPipelinesInParallelThreads) {
  test_model();  // trained (or copied) before the threads start
  cff_gst_test::ensure_gst();
  static constexpr int kRounds = 3, kClassifyFrames = 300, kGenerateFrames = 30;
  auto classify_run = [] {
    for (int round = 0; round < kRounds; ++round) {
      Pipeline p("appsrc name=src format=time max-bytes=0 caps=\"" + sample_caps() +
                 "\" ! cffclassify device=cpu top-k=2 model=" + quoted_model() +
                 " ! appsink name=sink sync=false");
      ASSERT_NE(p.pipeline, nullptr);
      ASSERT_TRUE(p.play());
      GstElement *src = p.get("src");
      push_samples(src, kClassifyFrames);
      gst_object_unref(src);
      const auto pulled = pull_all(p, "sink", [&](GstBuffer *buffer, int i) {
        EXPECT_EQ(GST_BUFFER_PTS(buffer), pts_of(i)) << "frame " << i;
        auto found = classifications(buffer);
        ASSERT_EQ(found.size(), 1u) << "frame " << i;
        EXPECT_EQ(int_field(found[0], "class-id"), reference_class(i)) << "frame " << i;
        EXPECT_EQ(array_size(found[0], "top-k-class-ids"), 2u);
      });
      EXPECT_EQ(pulled.frames, kClassifyFrames) << "round " << round;
      EXPECT_TRUE(pulled.eos);
      EXPECT_EQ(p.bus_problems(), "") << "round " << round;
    }
  };
  auto generate_run = [] {
    for (int round = 0; round < kRounds; ++round) {
      Pipeline p("cffgenerate num-buffers=" + std::to_string(kGenerateFrames) + " steps=2 seed=" +
                 std::to_string(round) + " device=cpu model=" + quoted_model() +
                 " ! cffclassify device=cpu model=" + quoted_model() + " ! appsink name=sink sync=false");
      ASSERT_NE(p.pipeline, nullptr);
      ASSERT_TRUE(p.play());
      const auto pulled = pull_all(p, "sink", [&](GstBuffer *buffer, int i) {
        EXPECT_EQ(GST_BUFFER_PTS(buffer), pts_of(i)) << "frame " << i;
        EXPECT_EQ(classifications(buffer).size(), 1u) << "frame " << i;
      });
      EXPECT_EQ(pulled.frames, kGenerateFrames) << "round " << round;
      EXPECT_TRUE(pulled.eos);
      EXPECT_EQ(p.bus_problems(), "") << "round " << round;
    }
  };
  std::thread first(classify_run), second(generate_run);
  first.join();
  second.join();
}
