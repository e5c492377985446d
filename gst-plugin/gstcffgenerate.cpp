// cffgenerate: properties, caps, timestamps, buffers and metas. The sampling is cff::Engine::generate
// (libcff); the writing of its images into frames frame_convert.cpp.
#include "gstcffgenerate.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <gst/video/gstvideometa.h>
#include <gst/video/gstvideopool.h>
#include <gst/video/video.h>

#include "cff/engine.h"
#include "cff/seeds.h"
#include "element_common.h"
#include "frame_convert.h"
#include "result_meta.h"

GST_DEBUG_CATEGORY_STATIC(gst_cff_generate_debug);
#define GST_CAT_DEFAULT gst_cff_generate_debug

namespace {

constexpr const char *kParamName = "cff/generation";
constexpr const char *kDefaultLabel = "cycle";
// The sampler defaults are libcff's measured choice (docs/recipe.md), as cff::SamplerSettings has them.
const cff::SamplerSettings kSamplerDefaults;
constexpr guint kDefaultBatch = 1;

using Sampler = cff::Engine::Sampler;

enum {
  PROP_0,
  PROP_MODEL,
  PROP_DEVICE,
  PROP_THREADS,
  PROP_LABEL,
  PROP_GUIDANCE,
  PROP_GUIDE_MODEL,
  PROP_STEPS,
  PROP_ETA,
  PROP_T_START,
  PROP_SPACING_POWER,
  PROP_CORRECTOR_STEPS,
  PROP_CORRECTOR_SNR,
  PROP_SEED,
  PROP_SAMPLER,
  PROP_BATCH,
  PROP_TRAJECTORY,
  PROP_IS_LIVE,
};

GType sampler_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(Sampler::centripetal), "Centripetal steps along the force field (the CFF sampler)",
       cff::sampler_names()[static_cast<size_t>(Sampler::centripetal)].c_str()},
      {static_cast<gint>(Sampler::langevin), "Langevin dynamics / SGLD from uniform noise (JEM baseline)",
       cff::sampler_names()[static_cast<size_t>(Sampler::langevin)].c_str()},
      {static_cast<gint>(Sampler::ascent), "Normalised gradient ascent on log p(y|x) from uniform noise",
       cff::sampler_names()[static_cast<size_t>(Sampler::ascent)].c_str()},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstCffGenerateSampler", values));
  return type;
}

// What the `label` property asks for, resolved against the model's class names.
struct LabelChoice {
  bool cycle = false;
  int class_id = -1;  // -1 = unconditional (ignored when cycle)
};

// "cycle", "-1"/"none"/"" (unconditional) or a class as ModelInfo::find_class takes it. Returns false if
// it names no class.
bool resolve_label(const std::string &text, const cff::ModelInfo &info, LabelChoice &out) {
  if (text.empty() || g_ascii_strcasecmp(text.c_str(), "none") == 0 || text == "-1") {
    out = LabelChoice{false, -1};
    return true;
  }
  if (g_ascii_strcasecmp(text.c_str(), "cycle") == 0) {
    out = LabelChoice{true, -1};
    return true;
  }
  const int class_id = info.find_class(text);
  out = LabelChoice{false, class_id};
  return class_id >= 0;
}

// The settings a batch is generated with, copied under the object lock.
struct Settings {
  std::string label = kDefaultLabel;
  cff::SamplerSettings sampling;  // sampler, steps, eta, t-start, guidance, spacing, corrector
  guint64 seed = 0;
  guint batch = kDefaultBatch;
  bool trajectory = false;
};

// One frame waiting to be pushed.
struct PendingFrame {
  std::vector<float> image;  // C x H x W, model input units
  guint64 sample = 0;
  guint64 seed = 0;
  int class_id = -1;
  int step = 0;
  int steps = 0;
  Sampler sampler = Sampler::centripetal;
  double guidance = 0.0;
  cff::Classification reading;
  double label_probability = -1.0;
};

struct Private {
  // Set while stopped, read in start() (object lock).
  cff::gst::ModelSettings model;  // model, device, threads
  std::string guide_path;
  // Read by the streaming thread per batch (object lock); any change bumps `version`, which drops
  // the frames generated with the old settings so that the change shows at the next frame.
  Settings settings;
  std::atomic<guint64> version{0};

  // Streaming state (start() to stop(), streaming thread).
  std::shared_ptr<cff::Engine> engine;
  std::shared_ptr<cff::Engine> guide;
  GstVideoInfo video_info;
  bool have_info = false;
  guint64 frames = 0;       // frames pushed since start (timestamps)
  guint64 next_sample = 0;  // index of the next sample to push
  std::deque<PendingFrame> queue;
  guint64 queue_version = 0;
  LabelChoice label;
  std::string label_text;
  // The sampler settings last found valid for the model (t-start <= the model's T...), and the reason the
  // current ones were refused (empty while they are valid), so a refusal is warned about once.
  cff::SamplerSettings sampling;
  std::string sampling_refused;
};

}  // namespace

struct _GstCffGenerate {
  GstPushSrc parent;
  Private *priv;
};

G_DEFINE_TYPE(GstCffGenerate, gst_cff_generate, GST_TYPE_PUSH_SRC);
GST_ELEMENT_REGISTER_DEFINE(cffgenerate, "cffgenerate", GST_RANK_NONE, GST_TYPE_CFF_GENERATE);

namespace {

Settings snapshot(GstCffGenerate *self) {
  GST_OBJECT_LOCK(self);
  Settings s = self->priv->settings;
  GST_OBJECT_UNLOCK(self);
  return s;
}

gboolean start(GstBaseSrc *src) {
  auto *self = GST_CFF_GENERATE(src);
  auto &p = *self->priv;
  try {
    const auto settings = cff::gst::snapshot(G_OBJECT(self), p.model);
    const std::string &path = settings.model_path;
    GST_OBJECT_LOCK(self);
    const std::string guide_path = p.guide_path;
    GST_OBJECT_UNLOCK(self);
    p.engine = cff::gst::acquire_model(GST_ELEMENT(self), settings);
    if (!p.engine) return FALSE;
    const auto &info = p.engine->info();
    if (!guide_path.empty()) {
      p.guide = cff::gst::acquire_engine(GST_ELEMENT(self), guide_path, settings, "Guide model");
      if (!p.guide) {
        p.engine.reset();
        return FALSE;
      }
      const auto &g = p.guide->info();
      if (g.channels != info.channels || g.height != info.height || g.width != info.width ||
          g.num_classes != info.num_classes) {
        GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                          ("Guide model '%s' (%dx%dx%d, %d classes) does not match model '%s' (%dx%dx%d, %d classes)",
                           guide_path.c_str(), g.channels, g.height, g.width, g.num_classes, path.c_str(),
                           info.channels, info.height, info.width, info.num_classes),
                          (nullptr));
        p.engine.reset();
        p.guide.reset();
        return FALSE;
      }
    }
    const Settings s = snapshot(self);
    if (!resolve_label(s.label, info, p.label)) {
      GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                        ("Label '%s' names no class of model '%s' (%d classes)", s.label.c_str(), path.c_str(),
                         info.num_classes),
                        ("use a class index, a class name, -1/none or cycle"));
      p.engine.reset();
      p.guide.reset();
      return FALSE;
    }
    p.label_text = s.label;
    try {
      s.sampling.validate(info.max_time);
    } catch (const std::invalid_argument &e) {
      GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                        ("Sampler settings do not fit model '%s': %s", path.c_str(), e.what()),
                        ("t-start may not exceed the T of the model's noise schedule"));
      p.engine.reset();
      p.guide.reset();
      return FALSE;
    }
    p.sampling = s.sampling;
    p.sampling_refused.clear();
    p.frames = 0;
    p.next_sample = 0;
    p.queue.clear();
    p.have_info = false;
    GST_INFO_OBJECT(self, "model %s: %dx%dx%d, %d classes, on %s", path.c_str(), info.channels, info.height,
                    info.width, info.num_classes, p.engine->describe_device().c_str());
    return TRUE;
  } catch (const std::exception &e) {
    GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("%s", e.what()), (nullptr));
    p.engine.reset();
    p.guide.reset();
    return FALSE;
  }
}

gboolean stop(GstBaseSrc *src) {
  auto *self = GST_CFF_GENERATE(src);
  auto &p = *self->priv;
  try {
    p.engine.reset();
    p.guide.reset();
    p.queue.clear();
    return TRUE;
  } catch (const std::exception &e) {
    GST_ELEMENT_ERROR(self, LIBRARY, SHUTDOWN, ("%s", e.what()), (nullptr));
    return FALSE;
  }
}

GstCaps *get_caps(GstBaseSrc *src, GstCaps *filter) {
  auto *self = GST_CFF_GENERATE(src);
  auto &p = *self->priv;
  GstCaps *caps = nullptr;
  try {
    // The model fixes format and size once it is loaded (start() runs before negotiation).
    if (p.engine) {
      const auto &info = p.engine->info();
      const char *format = gst_video_format_to_string(cff::gst::native_format(info.channels));
      caps = gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, format,
                                 "width", G_TYPE_INT, info.width, "height", G_TYPE_INT, info.height, "framerate",
                                 GST_TYPE_FRACTION_RANGE, 0, 1, G_MAXINT, 1, "pixel-aspect-ratio", GST_TYPE_FRACTION,
                                 1, 1, nullptr);
    }
  } catch (const std::exception &e) {
    GST_WARNING_OBJECT(self, "get_caps: %s", e.what());
  }
  if (!caps) caps = gst_pad_get_pad_template_caps(GST_BASE_SRC_PAD(src));
  if (filter) {
    GstCaps *intersection = gst_caps_intersect_full(filter, caps, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref(caps);
    caps = intersection;
  }
  return caps;
}

GstCaps *fixate(GstBaseSrc *src, GstCaps *caps) {
  caps = gst_caps_make_writable(caps);
  GstStructure *s = gst_caps_get_structure(caps, 0);
  if (gst_structure_has_field(s, "framerate")) gst_structure_fixate_field_nearest_fraction(s, "framerate", 30, 1);
  else gst_structure_set(s, "framerate", GST_TYPE_FRACTION, 30, 1, nullptr);
  return GST_BASE_SRC_CLASS(gst_cff_generate_parent_class)->fixate(src, caps);
}

gboolean set_caps(GstBaseSrc *src, GstCaps *caps) {
  auto *self = GST_CFF_GENERATE(src);
  auto &p = *self->priv;
  GstVideoInfo info;
  if (!gst_video_info_from_caps(&info, caps)) {
    GST_ERROR_OBJECT(self, "cannot parse caps %" GST_PTR_FORMAT, caps);
    return FALSE;
  }
  GST_OBJECT_LOCK(self);  // the LATENCY query reads them from the application's thread
  p.video_info = info;
  p.have_info = true;
  GST_OBJECT_UNLOCK(self);
  // GstBaseSrc allocates buffers of the block size: one frame.
  gst_base_src_set_blocksize(src, static_cast<guint>(GST_VIDEO_INFO_SIZE(&info)));
  return TRUE;
}

// Live sources are paced by the clock: each buffer is due at its timestamp.
void get_times(GstBaseSrc *src, GstBuffer *buffer, GstClockTime *start, GstClockTime *end) {
  *start = *end = GST_CLOCK_TIME_NONE;
  if (!gst_base_src_is_live(src)) return;
  const GstClockTime pts = GST_BUFFER_PTS(buffer);
  if (!GST_CLOCK_TIME_IS_VALID(pts)) return;
  *start = pts;
  if (GST_BUFFER_DURATION_IS_VALID(buffer)) *end = pts + GST_BUFFER_DURATION(buffer);
}

// Generates the next batch with the current settings into the queue.
void generate_batch(GstCffGenerate *self, const Settings &s) {
  auto &p = *self->priv;
  auto &engine = *p.engine;
  const auto &info = engine.info();
  if (s.label != p.label_text) {
    LabelChoice choice;
    if (resolve_label(s.label, info, choice)) {
      p.label = choice;
    } else {
      GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS, ("Label '%s' names no class; keeping the previous one",
                                                     s.label.c_str()), (nullptr));
    }
    p.label_text = s.label;
  }
  // A change while PLAYING that does not fit the model is treated like an unknown label: warned about once,
  // and the last valid settings stay.
  try {
    s.sampling.validate(info.max_time);
    p.sampling = s.sampling;
    p.sampling_refused.clear();
  } catch (const std::invalid_argument &e) {
    if (p.sampling_refused != e.what()) {
      GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                          ("Sampler settings do not fit the model (%s); keeping the previous ones", e.what()),
                          (nullptr));
      p.sampling_refused = e.what();
    }
  }
  const int n = static_cast<int>(std::max(1u, s.batch));
  std::vector<int> labels(static_cast<size_t>(n));
  std::vector<uint64_t> seeds(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const guint64 sample = p.next_sample + static_cast<guint64>(i);
    labels[static_cast<size_t>(i)] =
        p.label.cycle ? static_cast<int>(sample % static_cast<guint64>(info.num_classes)) : p.label.class_id;
    seeds[static_cast<size_t>(i)] = cff::derive_seed(s.seed, sample);
  }
  cff::Engine::GenerateOptions options;
  static_cast<cff::SamplerSettings &>(options) = p.sampling;
  options.guide = p.guide;
  options.trajectory = s.trajectory;
  auto generated = engine.generate(labels, seeds, options);

  // Every frame is read back by the model (one batched forward pass, cheap next to the sampling).
  const size_t per_image = static_cast<size_t>(info.channels) * info.height * info.width;
  const int per_sample = s.trajectory ? std::max(1, generated.steps) : 1;
  const std::vector<float> &frames = s.trajectory && generated.steps > 0 ? generated.trajectory : generated.images;
  const int count = n * per_sample;
  auto readings = engine.classify(frames.data(), count, info.num_classes);
  for (int i = 0; i < n; ++i) {
    for (int step = 0; step < per_sample; ++step) {
      // The trajectory is step-major: step k holds all n images.
      const size_t index = s.trajectory && generated.steps > 0 ? static_cast<size_t>(step) * n + i : i;
      PendingFrame f;
      f.image.assign(frames.begin() + static_cast<std::ptrdiff_t>(index * per_image),
                     frames.begin() + static_cast<std::ptrdiff_t>((index + 1) * per_image));
      f.sample = p.next_sample + static_cast<guint64>(i);
      f.seed = seeds[static_cast<size_t>(i)];
      f.class_id = labels[static_cast<size_t>(i)];
      f.steps = static_cast<int>(p.sampling.steps);
      f.step = s.trajectory ? step : static_cast<int>(p.sampling.steps) - 1;
      f.sampler = p.sampling.sampler;
      f.guidance = p.sampling.guidance;
      f.reading = readings[index];
      if (f.class_id >= 0) {
        for (const auto &entry : f.reading.top_k) {
          if (entry.class_id == f.class_id) f.label_probability = entry.probability;
        }
        if (f.reading.non_finite) f.label_probability = 0.0;
      }
      p.queue.push_back(std::move(f));
    }
  }
}

// Buffers come from a GstVideoBufferPool (downstream's if it offers one), with GstVideoMeta when
// downstream reads it, as videotestsrc does: fill() then maps them with their own strides.
gboolean decide_allocation(GstBaseSrc *src, GstQuery *query) {
  GstCaps *caps = nullptr;
  gst_query_parse_allocation(query, &caps, nullptr);
  GstVideoInfo info;
  if (!caps || !gst_video_info_from_caps(&info, caps)) return FALSE;
  GstBufferPool *pool = nullptr;
  guint size = static_cast<guint>(GST_VIDEO_INFO_SIZE(&info)), min = 0, max = 0;
  const bool update = gst_query_get_n_allocation_pools(query) > 0;
  if (update) {
    guint offered = 0;
    gst_query_parse_nth_allocation_pool(query, 0, &pool, &offered, &min, &max);
    size = std::max(size, offered);
  }
  if (!pool) pool = gst_video_buffer_pool_new();
  GstStructure *config = gst_buffer_pool_get_config(pool);
  gst_buffer_pool_config_set_params(config, caps, size, min, max);
  if (gst_query_find_allocation_meta(query, GST_VIDEO_META_API_TYPE, nullptr)) {
    gst_buffer_pool_config_add_option(config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  }
  gst_buffer_pool_set_config(pool, config);
  if (update) {
    gst_query_set_nth_allocation_pool(query, 0, pool, size, min, max);
  } else {
    gst_query_add_allocation_pool(query, pool, size, min, max);
  }
  gst_object_unref(pool);
  return GST_BASE_SRC_CLASS(gst_cff_generate_parent_class)->decide_allocation(src, query);
}

// A live generator is one frame late at least: the frame due at t is made once t has come.
gboolean query(GstBaseSrc *src, GstQuery *query) {
  auto *self = GST_CFF_GENERATE(src);
  if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
    GST_OBJECT_LOCK(self);
    const bool known = self->priv->have_info && GST_VIDEO_INFO_FPS_N(&self->priv->video_info) > 0;
    const GstClockTime frame = known ? gst_util_uint64_scale(GST_SECOND, GST_VIDEO_INFO_FPS_D(&self->priv->video_info),
                                                             GST_VIDEO_INFO_FPS_N(&self->priv->video_info))
                                     : 0;
    GST_OBJECT_UNLOCK(self);
    if (!known) return FALSE;
    gst_query_set_latency(query, gst_base_src_is_live(src), frame, frame);
    return TRUE;
  }
  return GST_BASE_SRC_CLASS(gst_cff_generate_parent_class)->query(src, query);
}

GstFlowReturn fill(GstPushSrc *push_src, GstBuffer *buffer) {
  auto *self = GST_CFF_GENERATE(push_src);
  auto &p = *self->priv;
  try {
    if (!p.engine || !p.have_info) {
      GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("No model loaded or caps not negotiated"), (nullptr));
      return GST_FLOW_NOT_NEGOTIATED;
    }
    const guint64 version = p.version.load();
    if (version != p.queue_version) {
      // A setting changed: frames made with the old one are dropped, the next frame shows the new one.
      p.queue.clear();
      p.queue_version = version;
    }
    if (p.queue.empty()) generate_batch(self, snapshot(self));
    PendingFrame f = std::move(p.queue.front());
    p.queue.pop_front();
    if (p.queue.empty() || p.queue.front().sample != f.sample) p.next_sample = f.sample + 1;

    const auto &info = p.engine->info();
    GstVideoFrame frame;
    if (!gst_video_frame_map(&frame, &p.video_info, buffer, GST_MAP_WRITE)) {
      GST_ELEMENT_ERROR(self, RESOURCE, WRITE, ("Cannot map an output buffer"), (nullptr));
      return GST_FLOW_ERROR;
    }
    try {
      cff::gst::write_image(cff::gst::mutable_pixel_view(frame),
                            cff::gst::InputLayout{info.channels, info.height, info.width, info.mean, info.std},
                            f.image.data());
    } catch (...) {
      gst_video_frame_unmap(&frame);
      throw;
    }
    gst_video_frame_unmap(&frame);

    const int fps_n = GST_VIDEO_INFO_FPS_N(&p.video_info), fps_d = GST_VIDEO_INFO_FPS_D(&p.video_info);
    if (fps_n > 0) {
      const GstClockTime pts = gst_util_uint64_scale(p.frames, fps_d * GST_SECOND, fps_n);
      GST_BUFFER_PTS(buffer) = pts;
      GST_BUFFER_DURATION(buffer) = gst_util_uint64_scale(p.frames + 1, fps_d * GST_SECOND, fps_n) - pts;
    } else {
      GST_BUFFER_PTS(buffer) = p.frames == 0 ? 0 : GST_CLOCK_TIME_NONE;
    }
    GST_BUFFER_DTS(buffer) = GST_CLOCK_TIME_NONE;
    GST_BUFFER_OFFSET(buffer) = p.frames;
    GST_BUFFER_OFFSET_END(buffer) = p.frames + 1;
    if (p.frames == 0) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DISCONT);
    ++p.frames;

    const std::string label = f.class_id >= 0 ? info.labels.at(static_cast<size_t>(f.class_id)) : "";
    GstStructure *st = gst_structure_new(
        kParamName, "label", G_TYPE_STRING, label.c_str(), "class-id", G_TYPE_INT, f.class_id, "seed", G_TYPE_UINT64,
        static_cast<guint64>(f.seed), "sample", G_TYPE_UINT64, static_cast<guint64>(f.sample), "step", G_TYPE_INT,
        f.step, "steps", G_TYPE_INT, f.steps, "sampler", G_TYPE_STRING, cff::sampler_name(f.sampler).c_str(), "guidance",
        G_TYPE_DOUBLE, f.guidance, "predicted-label", G_TYPE_STRING, f.reading.label.c_str(), "predicted-class-id",
        G_TYPE_INT, f.reading.class_id, "confidence", G_TYPE_DOUBLE, f.reading.confidence, "label-probability",
        G_TYPE_DOUBLE, f.label_probability, "energy", G_TYPE_DOUBLE, f.reading.energy, nullptr);
    cff::gst::add_frame_result(buffer, info.width, info.height, st);
    return GST_FLOW_OK;
  } catch (const std::exception &e) {
    GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Generation failed: %s", e.what()), (nullptr));
    return GST_FLOW_ERROR;
  }
}

void set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
  auto *self = GST_CFF_GENERATE(object);
  auto &p = *self->priv;
  try {
    if (cff::gst::set_model_property(object, p.model, PROP_MODEL, prop_id, value)) return;
    GST_OBJECT_LOCK(self);
    auto &s = p.settings;
    bool generation_setting = true;
    switch (prop_id) {
      case PROP_GUIDE_MODEL: {
        const gchar *v = g_value_get_string(value);
        p.guide_path = v ? v : "";
        generation_setting = false;
        break;
      }
      case PROP_LABEL: {
        const gchar *v = g_value_get_string(value);
        s.label = v ? v : "";
        break;
      }
      case PROP_GUIDANCE: s.sampling.guidance = g_value_get_double(value); break;
      case PROP_STEPS: s.sampling.steps = g_value_get_uint(value); break;
      case PROP_ETA: s.sampling.eta = g_value_get_double(value); break;
      case PROP_T_START: s.sampling.t_start = g_value_get_double(value); break;
      case PROP_SPACING_POWER: s.sampling.spacing_power = g_value_get_double(value); break;
      case PROP_CORRECTOR_STEPS: s.sampling.corrector_steps = g_value_get_uint(value); break;
      case PROP_CORRECTOR_SNR: s.sampling.corrector_snr = g_value_get_double(value); break;
      case PROP_SEED: s.seed = g_value_get_uint64(value); break;
      case PROP_SAMPLER: s.sampling.sampler = static_cast<Sampler>(g_value_get_enum(value)); break;
      case PROP_BATCH: s.batch = g_value_get_uint(value); break;
      case PROP_TRAJECTORY: s.trajectory = g_value_get_boolean(value); break;
      case PROP_IS_LIVE:
        generation_setting = false;
        GST_OBJECT_UNLOCK(self);
        gst_base_src_set_live(GST_BASE_SRC(self), g_value_get_boolean(value));
        return;
      default:
        generation_setting = false;
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
    if (generation_setting) ++p.version;
    GST_OBJECT_UNLOCK(self);
  } catch (const std::exception &e) {
    GST_OBJECT_UNLOCK(self);
    GST_ERROR_OBJECT(self, "cannot set property %s: %s", pspec->name, e.what());
  }
}

void get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  auto *self = GST_CFF_GENERATE(object);
  auto &p = *self->priv;
  if (prop_id == PROP_IS_LIVE) {
    g_value_set_boolean(value, gst_base_src_is_live(GST_BASE_SRC(self)));
    return;
  }
  if (cff::gst::get_model_property(object, p.model, PROP_MODEL, prop_id, value)) return;
  GST_OBJECT_LOCK(self);
  const auto &s = p.settings;
  switch (prop_id) {
    case PROP_GUIDE_MODEL: g_value_set_string(value, p.guide_path.empty() ? nullptr : p.guide_path.c_str()); break;
    case PROP_LABEL: g_value_set_string(value, s.label.c_str()); break;
    case PROP_GUIDANCE: g_value_set_double(value, s.sampling.guidance); break;
    case PROP_STEPS: g_value_set_uint(value, static_cast<guint>(s.sampling.steps)); break;
    case PROP_ETA: g_value_set_double(value, s.sampling.eta); break;
    case PROP_T_START: g_value_set_double(value, s.sampling.t_start); break;
    case PROP_SPACING_POWER: g_value_set_double(value, s.sampling.spacing_power); break;
    case PROP_CORRECTOR_STEPS: g_value_set_uint(value, static_cast<guint>(s.sampling.corrector_steps)); break;
    case PROP_CORRECTOR_SNR: g_value_set_double(value, s.sampling.corrector_snr); break;
    case PROP_SEED: g_value_set_uint64(value, s.seed); break;
    case PROP_SAMPLER: g_value_set_enum(value, static_cast<gint>(s.sampling.sampler)); break;
    case PROP_BATCH: g_value_set_uint(value, s.batch); break;
    case PROP_TRAJECTORY: g_value_set_boolean(value, s.trajectory); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

void finalize(GObject *object) { cff::gst::finalize_private<GstCffGenerate>(object, gst_cff_generate_parent_class); }

}  // namespace

static void gst_cff_generate_class_init(GstCffGenerateClass *klass) {
  auto *gobject_class = G_OBJECT_CLASS(klass);
  auto *element_class = GST_ELEMENT_CLASS(klass);
  auto *base_src_class = GST_BASE_SRC_CLASS(klass);
  auto *push_src_class = GST_PUSH_SRC_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_cff_generate_debug, "cffgenerate", 0, "cff generator");

  cff::gst::set_object_methods(gobject_class, set_property, get_property, finalize);

  cff_install_model_properties(gobject_class, PROP_MODEL, "Path of the cff model file to generate with (required)");
  g_object_class_install_property(
      gobject_class, PROP_LABEL,
      g_param_spec_string("label", "Label",
                          "Class to generate: an index (\"3\"), a class name (\"Trouser\", any case), \"-1\" or "
                          "\"none\" for unconditional samples, or \"cycle\" to walk through the classes, one per "
                          "sample. Takes effect at the next frame",
                          kDefaultLabel, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_GUIDANCE,
      g_param_spec_double("guidance", "Guidance",
                          "Guidance scale w: 0 = unconditional force, 1 = the paper's conditional force, > 1 stronger "
                          "(centripetal sampler)",
                          0.0, 100.0, kSamplerDefaults.guidance, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_GUIDE_MODEL,
      g_param_spec_string("guide-model", "Guide model",
                          "Optional second cff model file whose log p(y|x) gradient steers the sampler (decoupled "
                          "guidance; same input size and classes as the model)",
                          nullptr, cff::gst::kMutableReady));
  g_object_class_install_property(
      gobject_class, PROP_STEPS,
      g_param_spec_uint("steps", "Steps", "Sampler steps per image", 1, 100000, static_cast<guint>(kSamplerDefaults.steps), cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_ETA,
      g_param_spec_double("eta", "Eta",
                          "Centripetal sampler: 0 = deterministic path, 1 = fresh noise at every step", 0.0, 10.0,
                          kSamplerDefaults.eta, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_T_START,
      g_param_spec_double("t-start", "Start time",
                          "Centripetal sampler: the noise is taken as x_t at this time of the model's schedule "
                          "(at most its T, usually 1000: a larger value fails the start; set while playing, it is warned about "
                          "and the previous value stays)",
                          0.001, 1e6, kSamplerDefaults.t_start, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_SPACING_POWER,
      g_param_spec_double("spacing-power", "Step spacing",
                          "Centripetal sampler: step k of the steps leaves time t-start * ((steps - k) / steps)^P; "
                          "1 = evenly spaced, 2 = more of the steps near the image, where detail forms",
                          0.25, 4.0, kSamplerDefaults.spacing_power, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_CORRECTOR_STEPS,
      g_param_spec_uint("corrector-steps", "Corrector steps",
                        "Centripetal sampler: Langevin corrector steps after each step but the last (each costs one more model "
                        "pass)",
                        0, 100, static_cast<guint>(kSamplerDefaults.corrector_steps), cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_CORRECTOR_SNR,
      g_param_spec_double("corrector-snr", "Corrector SNR",
                          "Centripetal sampler: signal-to-noise ratio that sizes each corrector step", 0.001, 1.0,
                          kSamplerDefaults.corrector_snr, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_SEED,
      g_param_spec_uint64("seed", "Seed",
                          "Seed of the stream: sample i uses a seed hashed from (seed, i), so a stream repeats "
                          "exactly",
                          0, G_MAXUINT64, 0, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_SAMPLER,
      g_param_spec_enum("sampler", "Sampler", "How noise becomes an image", sampler_get_type(),
                        static_cast<gint>(Sampler::centripetal), cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_BATCH,
      g_param_spec_uint("batch", "Batch", "Samples generated per model call (pushed one by one)", 1, 1024,
                        kDefaultBatch, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_TRAJECTORY,
      g_param_spec_boolean("trajectory", "Trajectory",
                           "Push the estimate of every sampler step as a frame (a movie of noise turning into an "
                           "image): steps frames per sample",
                           FALSE, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_IS_LIVE,
      g_param_spec_boolean("is-live", "Is live", "Act as a live source (frames paced by the clock)", FALSE, cff::gst::kMutableReady));
  gst_type_mark_as_plugin_api(sampler_get_type(), static_cast<GstPluginAPIFlags>(0));

  gst_element_class_set_static_metadata(
      element_class, "CFF generator", "Source/Video",
      "Generates images with a Central Force Field model by walking noise along its force field, with the label, seed "
      "and the model's reading of each frame as a GstVideoRegionOfInterestMeta",
      "cff developers");

  GstCaps *caps = cff::gst::video_caps(cff::gst::FormatUse::native);
  gst_element_class_add_pad_template(element_class, gst_pad_template_new("src", GST_PAD_SRC, GST_PAD_ALWAYS, caps));
  gst_caps_unref(caps);

  base_src_class->start = start;
  base_src_class->stop = stop;
  base_src_class->get_caps = get_caps;
  base_src_class->fixate = fixate;
  base_src_class->set_caps = set_caps;
  base_src_class->get_times = get_times;
  base_src_class->decide_allocation = decide_allocation;
  base_src_class->query = query;
  push_src_class->fill = fill;
}

static void gst_cff_generate_init(GstCffGenerate *self) {
  self->priv = new Private();
  gst_video_info_init(&self->priv->video_info);
  gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
  gst_base_src_set_live(GST_BASE_SRC(self), FALSE);
}
