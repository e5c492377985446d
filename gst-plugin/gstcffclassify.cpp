// cffclassify: properties, caps, buffers and metas. The maths is cff::Engine (libcff), the pixel
// conversion frame_convert.cpp, the drawing overlay.cpp.
#include "gstcffclassify.h"

#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <gst/video/gstvideometa.h>
#include <gst/video/video.h>

#include "cff/engine.h"
#include "element_common.h"
#include "frame_convert.h"
#include "result_meta.h"
#include "overlay.h"

GST_DEBUG_CATEGORY_STATIC(gst_cff_classify_debug);
#define GST_CAT_DEFAULT gst_cff_classify_debug

namespace {

constexpr const char *kParamName = "cff/classification";
constexpr const char *kMessageName = "cffclassify";

enum MessageMode { MESSAGE_NONE, MESSAGE_OOD, MESSAGE_ALL };
enum RoiMode { ROI_FRAME, ROI_UPSTREAM };

constexpr int kDefaultTopK = 3;
constexpr guint kDefaultInterval = 1;

enum {
  PROP_0,
  PROP_MODEL,
  PROP_DEVICE,
  PROP_THREADS,
  PROP_OOD_THRESHOLD,
  PROP_CALIBRATED_THRESHOLD,
  PROP_TOP_K,
  PROP_INTERVAL,
  PROP_OVERLAY,
  PROP_MESSAGE,
  PROP_ROI,
  PROP_SCORE,
};

// The OOD score the element flags by: one of libcff's (cff/ood.h), or the one the model recommends.
enum ScoreMode { SCORE_AUTO, SCORE_ENERGY, SCORE_MSP, SCORE_MAHALANOBIS, SCORE_MOMENTS, SCORE_COMPLEXITY };

GType score_mode_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {SCORE_AUTO, "The score the model file recommends (chosen by cff-train on its OOD sets)", "auto"},
      {SCORE_ENERGY, "Free energy U(x) = -logsumexp f(x)", "energy"},
      {SCORE_MSP, "1 - the largest class probability", "msp"},
      {SCORE_MAHALANOBIS, "Mahalanobis distance of the penultimate features to the nearest class", "mahalanobis"},
      {SCORE_MOMENTS, "Mahalanobis distance of the last stage's feature mean and spread to the nearest class",
       "mahalanobis-moments"},
      {SCORE_COMPLEXITY, "Free energy corrected for the frame's complexity (bits per pixel)", "complexity-energy"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstCffClassifyScore", values));
  return type;
}

// The libcff name of a score mode ("auto" for SCORE_AUTO).
std::string score_mode_name(int mode) {
  GEnumValue *v = g_enum_get_value(static_cast<GEnumClass *>(g_type_class_peek(score_mode_get_type())), mode);
  return v ? v->value_nick : "auto";
}

GType message_mode_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {MESSAGE_NONE, "Post no messages", "none"},
      {MESSAGE_OOD, "Post a message for each out-of-distribution result", "ood"},
      {MESSAGE_ALL, "Post a message for every result", "all"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstCffClassifyMessage", values));
  return type;
}

GType roi_mode_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {ROI_FRAME, "Classify the whole frame", "frame"},
      {ROI_UPSTREAM, "Classify each region of interest attached upstream (batched, at most 64 regions per call)", "upstream"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstCffClassifyRoi", values));
  return type;
}

// The element's C++ state. Settings read by the streaming thread are atomics; the model, device
// and threads are only read in start(), under the object lock.
struct Private {
  cff::gst::ModelSettings model;  // model, device, threads: read in start(), under the object lock
  // The threshold set by the user, in force once calibrated_threshold is false (setting it makes it so).
  std::atomic<double> ood_threshold{0.0};
  std::atomic<bool> calibrated_threshold{true};
  std::atomic<int> top_k{kDefaultTopK};
  std::atomic<guint> interval{kDefaultInterval};
  std::atomic<bool> overlay{false};
  std::atomic<int> message{MESSAGE_NONE};
  std::atomic<int> roi{ROI_FRAME};
  int score = SCORE_AUTO;  // read in start(), under the object lock

  // Streaming state, touched between start() and stop() by the streaming thread only.
  std::shared_ptr<cff::Engine> engine;
  cff::gst::InputLayout layout;
  int score_index = 0;       // the active score in ModelInfo::ood_scores
  guint64 frame_count = 0;
  std::vector<cff::Classification> last_results;
  std::vector<float> input;  // model inputs of one batch of targets
  bool warned_outside = false;  // a region outside the frame was reported (once per start)
};

// The most regions of one frame classified in one call (the rest follow in further calls).
constexpr size_t kMaxBatch = 64;

struct Target {
  cff::gst::Region region;
  GstVideoRegionOfInterestMeta *meta = nullptr;  // the upstream meta, or null for the whole frame
};

}  // namespace

struct _GstCffClassify {
  GstVideoFilter parent;
  Private *priv;
};

G_DEFINE_TYPE(GstCffClassify, gst_cff_classify, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE(cffclassify, "cffclassify", GST_RANK_NONE, GST_TYPE_CFF_CLASSIFY);

namespace {

const cff::ModelInfo::OodScore &active_score(const Private &p) {
  return p.engine->info().ood_scores.at(static_cast<size_t>(p.score_index));
}

double effective_threshold(const Private &p) {
  if (!p.calibrated_threshold.load()) return p.ood_threshold.load();
  const auto &score = active_score(p);
  return score.calibrated ? score.threshold : std::numeric_limits<double>::infinity();
}

template <typename T, typename SetFunc>
void take_array(GstStructure *s, const char *field, GType type, const std::vector<T> &items, SetFunc set) {
  GValue array = G_VALUE_INIT;
  gst_value_array_init(&array, static_cast<guint>(items.size()));
  for (const auto &item : items) {
    GValue v = G_VALUE_INIT;
    g_value_init(&v, type);
    set(&v, item);
    gst_value_array_append_and_take_value(&array, &v);
  }
  gst_structure_take_value(s, field, &array);
}

GstStructure *result_structure(const char *name, const Private &p, const cff::Classification &r, double threshold) {
  const auto &labels = p.engine->info().labels;
  GstStructure *s = gst_structure_new(name, "label", G_TYPE_STRING, r.label.c_str(), "class-id", G_TYPE_INT,
                                      r.class_id, "confidence", G_TYPE_DOUBLE, r.confidence, "energy", G_TYPE_DOUBLE,
                                      r.energy, "score", G_TYPE_DOUBLE, r.scores.at(static_cast<size_t>(p.score_index)),
                                      "score-name", G_TYPE_STRING, active_score(p).name.c_str(), "ood", G_TYPE_BOOLEAN,
                                      static_cast<gboolean>(cff::is_out_of_distribution(r, p.score_index, threshold)),
                                      "ood-threshold", G_TYPE_DOUBLE, threshold, "non-finite", G_TYPE_BOOLEAN,
                                      static_cast<gboolean>(r.non_finite), nullptr);
  std::vector<std::string> top_labels;
  std::vector<int> top_ids;
  std::vector<double> top_probabilities;
  for (const auto &entry : r.top_k) {
    top_labels.push_back(labels.at(static_cast<size_t>(entry.class_id)));
    top_ids.push_back(entry.class_id);
    top_probabilities.push_back(entry.probability);
  }
  take_array(s, "top-k-labels", G_TYPE_STRING, top_labels,
             [](GValue *v, const std::string &l) { g_value_set_string(v, l.c_str()); });
  take_array(s, "top-k-class-ids", G_TYPE_INT, top_ids, [](GValue *v, int id) { g_value_set_int(v, id); });
  take_array(s, "top-k-probabilities", G_TYPE_DOUBLE, top_probabilities,
             [](GValue *v, double p) { g_value_set_double(v, p); });
  return s;
}

std::string overlay_text(const cff::Classification &r, bool ood) {
  if (r.non_finite) return "NON-FINITE";
  const int percent = static_cast<int>(std::lround(100.0 * r.confidence));
  return r.label + " " + std::to_string(percent) + "%" + (ood ? " OOD" : "");
}

gboolean start(GstBaseTransform *trans) {
  auto *self = GST_CFF_CLASSIFY(trans);
  auto &p = *self->priv;
  try {
    const auto settings = cff::gst::snapshot(G_OBJECT(self), p.model);
    const std::string &path = settings.model_path;
    GST_OBJECT_LOCK(self);
    const int score = p.score;
    GST_OBJECT_UNLOCK(self);
    p.engine = cff::gst::acquire_model(GST_ELEMENT(self), settings);
    if (!p.engine) return FALSE;
    const auto &info = p.engine->info();
    const std::string score_name = score == SCORE_AUTO ? info.ood_recommended : score_mode_name(score);
    p.score_index = info.ood_score_index(score_name);
    if (p.score_index < 0) {
      std::string have;
      for (const auto &s : info.ood_scores) have += (have.empty() ? "" : ", ") + s.name;
      GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                        ("Model file '%s' has no OOD score '%s' (it has %s)", path.c_str(), score_name.c_str(),
                         have.c_str()),
                        ("refit the model's scores with cff-train --fit-ood, or choose another 'score'"));
      p.engine.reset();
      return FALSE;
    }
    p.layout = cff::gst::InputLayout{info.channels, info.height, info.width, info.mean, info.std};
    p.frame_count = 0;
    p.warned_outside = false;
    p.last_results.clear();
    const auto &active = active_score(p);
    GST_INFO_OBJECT(self, "model %s: %dx%dx%d, %d classes, on %s, OOD score %s, threshold %s%g", path.c_str(),
                    info.channels, info.height, info.width, info.num_classes, p.engine->describe_device().c_str(), active.name.c_str(),
                    active.calibrated ? "" : "(uncalibrated) ", active.threshold);
    return TRUE;
  } catch (const std::exception &e) {
    GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("%s", e.what()), (nullptr));
    p.engine.reset();
    return FALSE;
  }
}

gboolean stop(GstBaseTransform *trans) {
  auto *self = GST_CFF_CLASSIFY(trans);
  auto &p = *self->priv;
  try {
    p.engine.reset();
    p.last_results.clear();
    p.input = {};
    return TRUE;
  } catch (const std::exception &e) {
    GST_ELEMENT_ERROR(self, LIBRARY, SHUTDOWN, ("%s", e.what()), (nullptr));
    return FALSE;
  }
}

void post_message(GstCffClassify *self, GstBuffer *buffer, const Target &target, const Private &p,
                  const cff::Classification &r, double threshold) {
  GstStructure *s = result_structure(kMessageName, p, r, threshold);
  auto *trans = GST_BASE_TRANSFORM(self);
  const GstClockTime pts = GST_BUFFER_PTS(buffer);
  GstClockTime running_time = GST_CLOCK_TIME_NONE, stream_time = GST_CLOCK_TIME_NONE;
  if (GST_CLOCK_TIME_IS_VALID(pts) && trans->segment.format == GST_FORMAT_TIME) {
    running_time = gst_segment_to_running_time(&trans->segment, GST_FORMAT_TIME, pts);
    stream_time = gst_segment_to_stream_time(&trans->segment, GST_FORMAT_TIME, pts);
  }
  gst_structure_set(s, "timestamp", G_TYPE_UINT64, static_cast<guint64>(pts), "running-time", G_TYPE_UINT64,
                    static_cast<guint64>(running_time), "stream-time", G_TYPE_UINT64,
                    static_cast<guint64>(stream_time), "x", G_TYPE_INT, target.region.x, "y", G_TYPE_INT,
                    target.region.y, "width", G_TYPE_INT, target.region.width, "height", G_TYPE_INT,
                    target.region.height, "roi-id", G_TYPE_INT, target.meta ? target.meta->id : -1, nullptr);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
}

GstFlowReturn transform_frame_ip(GstVideoFilter *filter, GstVideoFrame *frame) {
  auto *self = GST_CFF_CLASSIFY(filter);
  auto &p = *self->priv;
  try {
    if (!p.engine) {
      GST_ELEMENT_ERROR(self, CORE, STATE_CHANGE, ("No model loaded"), ("transform called before start"));
      return GST_FLOW_ERROR;
    }
    GstBuffer *buffer = frame->buffer;
    const int width = GST_VIDEO_FRAME_WIDTH(frame), height = GST_VIDEO_FRAME_HEIGHT(frame);

    std::vector<Target> targets;
    if (p.roi.load() == ROI_FRAME) {
      targets.push_back({cff::gst::Region{0, 0, width, height}, nullptr});
    } else {
      gpointer state = nullptr;
      GstMeta *meta;
      while ((meta = gst_buffer_iterate_meta_filtered(buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
        auto *roi = reinterpret_cast<GstVideoRegionOfInterestMeta *>(meta);
        if (gst_video_region_of_interest_meta_get_param(roi, kParamName)) continue;  // already classified
        const auto region = cff::gst::clamp_region(roi->x, roi->y, roi->w, roi->h, width, height);
        if (region.width > 0 && region.height > 0) {
          targets.push_back({region, roi});
        } else if (!p.warned_outside) {
          GST_ELEMENT_WARNING(self, STREAM, FORMAT,
                              ("Region of interest %d (%u,%u %ux%u) lies outside the %dx%d frame: it gets no result",
                               roi->id, roi->x, roi->y, roi->w, roi->h, width, height),
                              ("said once per start; later regions outside the frame are skipped the same way"));
          p.warned_outside = true;
        }
      }
    }
    if (targets.empty()) return GST_FLOW_OK;

    // Run every `interval` frames; in between, reuse the last results if they fit these targets.
    const guint interval = std::max(1u, p.interval.load());
    const bool run = p.frame_count % interval == 0 || p.last_results.size() != targets.size();
    ++p.frame_count;
    if (run) {
      // Regions go in batches of at most kMaxBatch images, so memory and the time of one call stay bounded
      // however many regions a frame carries.
      const auto view = cff::gst::pixel_view(*frame);
      const size_t per_image = static_cast<size_t>(p.layout.channels) * p.layout.height * p.layout.width;
      p.last_results.clear();
      for (size_t first = 0; first < targets.size(); first += kMaxBatch) {
        const size_t count = std::min(kMaxBatch, targets.size() - first);
        p.input.resize(per_image * count);
        for (size_t i = 0; i < count; ++i) {
          cff::gst::convert_region(view, targets[first + i].region, p.layout, p.input.data() + i * per_image);
        }
        auto results = p.engine->classify(p.input.data(), static_cast<int>(count), p.top_k.load(), p.score_index);
        p.last_results.insert(p.last_results.end(), std::make_move_iterator(results.begin()),
                              std::make_move_iterator(results.end()));
      }
    }

    const double threshold = effective_threshold(p);
    const int message_mode = p.message.load();
    const bool overlay = p.overlay.load();
    for (size_t i = 0; i < targets.size(); ++i) {
      const auto &target = targets[i];
      const auto &result = p.last_results[i];
      const bool ood = cff::is_out_of_distribution(result, p.score_index, threshold);
      GstStructure *params = result_structure(kParamName, p, result, threshold);
      if (target.meta) {
        gst_video_region_of_interest_meta_add_param(target.meta, params);  // an upstream region's own meta
      } else {
        cff::gst::add_frame_result(buffer, width, height, params);
      }
      if (message_mode == MESSAGE_ALL || (message_mode == MESSAGE_OOD && ood)) {
        post_message(self, buffer, target, p, result, threshold);
      }
      if (overlay) {
        // The bar is half full at the threshold and grows with the score above it, in steps of a tenth
        // of the threshold's size (at least 1: the energy's scale).
        const double reference = std::isfinite(threshold) ? threshold : 0.0;
        const double scale = std::max(1.0, 0.1 * std::fabs(reference));
        const double score = result.scores.at(static_cast<size_t>(p.score_index));
        const double fraction = result.non_finite ? 1.0 : 1.0 / (1.0 + std::exp(-(score - reference) / scale));
        cff::gst::draw_overlay(*frame, target.region, cff::gst::OverlayMarks{overlay_text(result, ood), fraction, ood});
      }
    }
    return GST_FLOW_OK;
  } catch (const std::exception &e) {
    GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Classification failed: %s", e.what()), (nullptr));
    return GST_FLOW_ERROR;
  }
}

void set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
  auto *self = GST_CFF_CLASSIFY(object);
  auto &p = *self->priv;
  try {
    if (cff::gst::set_model_property(object, p.model, PROP_MODEL, prop_id, value)) return;
    switch (prop_id) {
      case PROP_OOD_THRESHOLD:
        p.ood_threshold = g_value_get_double(value);
        // Stored after the threshold: a streaming thread that sees the flag off also sees the new value.
        if (p.calibrated_threshold.exchange(false)) g_object_notify(object, "calibrated-threshold");
        break;
      case PROP_CALIBRATED_THRESHOLD: p.calibrated_threshold = g_value_get_boolean(value); break;
      case PROP_TOP_K: p.top_k = static_cast<int>(g_value_get_uint(value)); break;
      case PROP_INTERVAL: p.interval = g_value_get_uint(value); break;
      case PROP_OVERLAY: p.overlay = g_value_get_boolean(value); break;
      case PROP_MESSAGE: p.message = g_value_get_enum(value); break;
      case PROP_ROI: p.roi = g_value_get_enum(value); break;
      case PROP_SCORE:
        GST_OBJECT_LOCK(self);
        p.score = g_value_get_enum(value);
        GST_OBJECT_UNLOCK(self);
        break;
      default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
  } catch (const std::exception &e) {
    GST_ERROR_OBJECT(self, "cannot set property %s: %s", pspec->name, e.what());
  }
}

void get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  auto *self = GST_CFF_CLASSIFY(object);
  auto &p = *self->priv;
  if (cff::gst::get_model_property(object, p.model, PROP_MODEL, prop_id, value)) return;
  switch (prop_id) {
    case PROP_OOD_THRESHOLD: g_value_set_double(value, p.ood_threshold.load()); break;
    case PROP_CALIBRATED_THRESHOLD: g_value_set_boolean(value, p.calibrated_threshold.load()); break;
    case PROP_TOP_K: g_value_set_uint(value, static_cast<guint>(p.top_k.load())); break;
    case PROP_INTERVAL: g_value_set_uint(value, p.interval.load()); break;
    case PROP_OVERLAY: g_value_set_boolean(value, p.overlay.load()); break;
    case PROP_MESSAGE: g_value_set_enum(value, p.message.load()); break;
    case PROP_ROI: g_value_set_enum(value, p.roi.load()); break;
    case PROP_SCORE:
      GST_OBJECT_LOCK(self);
      g_value_set_enum(value, p.score);
      GST_OBJECT_UNLOCK(self);
      break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

void finalize(GObject *object) { cff::gst::finalize_private<GstCffClassify>(object, gst_cff_classify_parent_class); }

}  // namespace

static void gst_cff_classify_class_init(GstCffClassifyClass *klass) {
  auto *gobject_class = G_OBJECT_CLASS(klass);
  auto *element_class = GST_ELEMENT_CLASS(klass);
  auto *trans_class = GST_BASE_TRANSFORM_CLASS(klass);
  auto *filter_class = GST_VIDEO_FILTER_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_cff_classify_debug, "cffclassify", 0, "cff classifier");

  cff::gst::set_object_methods(gobject_class, set_property, get_property, finalize);

  cff_install_model_properties(gobject_class, PROP_MODEL, "Path of the cff model file to classify with (required)");
  g_object_class_install_property(
      gobject_class, PROP_OOD_THRESHOLD,
      g_param_spec_double("ood-threshold", "OOD threshold",
                          "Value of the active OOD score (see 'score') above which a result is flagged out of "
                          "distribution. Setting it turns 'calibrated-threshold' off",
                          -G_MAXDOUBLE, G_MAXDOUBLE, 0.0, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_CALIBRATED_THRESHOLD,
      g_param_spec_boolean("calibrated-threshold", "Calibrated threshold",
                           "Compare the active score with its threshold calibrated in the model file (no result is "
                           "flagged if the file has none) instead of 'ood-threshold'. Setting 'ood-threshold' turns "
                           "this off; set it back to TRUE to return to the calibrated threshold",
                           TRUE, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_TOP_K,
      g_param_spec_uint("top-k", "Top k", "How many of the most probable classes each result lists (at most the model's "
                                          "number of classes)",
                        1, 1000, kDefaultTopK, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_INTERVAL,
      g_param_spec_uint("interval", "Interval",
                        "Run the model on every Nth frame; frames in between carry the last results", 1, G_MAXINT,
                        kDefaultInterval, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_OVERLAY,
      g_param_spec_boolean("overlay", "Overlay",
                           "Draw the label, probability and an energy bar (red when out of distribution) into the "
                           "frame",
                           FALSE, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_MESSAGE,
      g_param_spec_enum("message", "Messages", "Which results to post as element messages named \"cffclassify\"",
                        message_mode_get_type(), MESSAGE_NONE, cff::gst::kMutablePlaying));
  g_object_class_install_property(
      gobject_class, PROP_ROI,
      g_param_spec_enum("roi", "Regions", "What to classify: the whole frame, or each GstVideoRegionOfInterestMeta "
                                          "attached upstream",
                        roi_mode_get_type(), ROI_FRAME, cff::gst::kMutableReady));
  g_object_class_install_property(
      gobject_class, PROP_SCORE,
      g_param_spec_enum("score", "OOD score",
                        "Which out-of-distribution score to flag by and to report as 'score'; auto takes the model "
                        "file's recommendation (files written before the fitted scores have energy only)",
                        score_mode_get_type(), SCORE_AUTO, cff::gst::kMutableReady));
  gst_type_mark_as_plugin_api(score_mode_get_type(), static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(message_mode_get_type(), static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(roi_mode_get_type(), static_cast<GstPluginAPIFlags>(0));

  gst_element_class_set_static_metadata(
      element_class, "CFF classifier", "Filter/Analyzer/Video",
      "Classifies frames or upstream regions of interest with a Central Force Field model, attaches the label, "
      "probabilities, free energy and OOD score as a GstVideoRegionOfInterestMeta and flags out-of-distribution content",
      "cff developers");

  GstCaps *caps = cff::gst::video_caps(cff::gst::FormatUse::read);
  gst_element_class_add_pad_template(element_class, gst_pad_template_new("sink", GST_PAD_SINK, GST_PAD_ALWAYS, caps));
  gst_element_class_add_pad_template(element_class, gst_pad_template_new("src", GST_PAD_SRC, GST_PAD_ALWAYS, caps));
  gst_caps_unref(caps);

  trans_class->start = start;
  trans_class->stop = stop;
  // Results are metas, so buffers must be writable: in place, never passthrough.
  trans_class->passthrough_on_same_caps = FALSE;
  trans_class->transform_ip_on_passthrough = FALSE;
  trans_class->transform_ip = cff::gst::transform_ip_checked;
  filter_class->transform_frame_ip = transform_frame_ip;
}

static void gst_cff_classify_init(GstCffClassify *self) {
  self->priv = new Private();
  gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
}
