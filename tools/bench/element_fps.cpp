// Frames per second of a GStreamer pipeline in steady state: model loading, caps negotiation and the
// first frames are left out. The pipeline is any gst-launch description with a sink named "sink"
// (fakesink or appsink); a pad probe on that sink's pad stamps each buffer as it arrives, and
//
//   fps = (buffers - warmup) / (arrival of the last buffer - arrival of buffer number `warmup`)
//
// so the timed span holds exactly the work of the buffers after the warm-up ones. For an element that
// makes its frames in batches (cffgenerate batch=B) and pushes them one by one, pick num-buffers and
// --warmup as multiples of B: then both stamps fall at the end of a batch and the span is whole batches.
// The sink is made to run as fast as it can (sync=false; an appsink drops what nobody pulls).
//
// Usage: bench-element-fps [--warmup 1] [--repeat 1] [--timeout 600] [--json FILE] DESCRIPTION...
//   e.g. bench-element-fps --warmup 2 'videotestsrc num-buffers=50 ! cffdenoise model=M threads=1 ! fakesink name=sink'
// Prints one line per run and, with --repeat > 1, the median. Exits 1 on a pipeline error or too few buffers.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include <gst/gst.h>
#include <nlohmann/json.hpp>

#include "support/cli.h"
#include "support/files.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int warmup = 1;
  int repeat = 1;
  int timeout_seconds = 600;
  std::string json_path;
  std::string description;
};

// Exits 0 after --help, 2 with a one-line reason on a bad command line.
Options parse_options(int argc, char **argv) {
  using cff::cli::to_int;
  Options o;
  const std::vector<cff::cli::Option> options = {
      {"warmup", "N", "buffers left out before timing, at least 1 (the first carries the start-up) [1]",
       [&](auto v) { o.warmup = static_cast<int>(to_int("warmup", v, 1)); }},
      {"repeat", "N", "runs of the pipeline; the median is printed [1]", [&](auto v) { o.repeat = static_cast<int>(to_int("repeat", v, 1)); }},
      {"timeout", "S", "seconds a run may take [600]", [&](auto v) { o.timeout_seconds = static_cast<int>(to_int("timeout", v, 1)); }},
      {"json", "FILE", "also write the results as JSON", [&](auto v) { o.json_path = v; }},
  };
  const cff::cli::Program program{
      "bench-element-fps", "[options] DESCRIPTION...",
      "Frames/s of a gst-launch pipeline whose sink is named \"sink\", from the end of the warm-up buffers\n"
      "to the last buffer (model loading and negotiation left out).",
      /*arguments=*/true};
  // The arguments that are not options are the description, as gst-launch-1.0 takes it (one or many).
  o.description = cff::cli::join(cff::cli::parse_or_exit(argc, argv, options, program), " ");
  if (o.description.empty()) cff::cli::usage_exit(program, "no pipeline description");
  return o;
}

struct RunResult {
  guint64 buffers = 0;         // buffers that reached the sink
  guint64 timed_buffers = 0;   // those after the warm-up ones
  double startup_seconds = 0;  // from PLAYING to the first buffer
  double timed_seconds = 0;    // from buffer `warmup` to the last buffer
  double fps = 0;
};

// Arrival stamps, written by the streaming thread, read after EOS.
struct Arrivals {
  GMutex mutex{};
  guint64 count = 0;
  guint64 warmup = 1;
  guint64 count_at_warmup = 0;  // equals warmup unless a buffer list crossed it
  Clock::time_point first, at_warmup, last;
};

GstPadProbeReturn on_data(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *arrivals = static_cast<Arrivals *>(data);
  const auto now = Clock::now();
  guint n = 1;
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    n = gst_buffer_list_length(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
  }
  g_mutex_lock(&arrivals->mutex);
  if (arrivals->count == 0) arrivals->first = now;
  arrivals->count += n;
  if (arrivals->count - n < arrivals->warmup && arrivals->count >= arrivals->warmup) {
    arrivals->at_warmup = now;
    arrivals->count_at_warmup = arrivals->count;
  }
  arrivals->last = now;
  g_mutex_unlock(&arrivals->mutex);
  return GST_PAD_PROBE_OK;
}

std::string error_text(GstMessage *message) {
  GError *error = nullptr;
  gchar *debug = nullptr;
  gst_message_parse_error(message, &error, &debug);
  std::string text = std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(message))) + ": " + (error ? error->message : "error");
  if (debug) text += std::string(" (") + debug + ")";
  g_clear_error(&error);
  g_free(debug);
  return text;
}

void set_if_present(GstElement *element, const char *property, gboolean value) {
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(element), property)) g_object_set(element, property, value, nullptr);
}

RunResult run_once(const Options &o) {
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(o.description.c_str(), &error);
  if (!pipeline || error) {
    const std::string reason = error ? error->message : "unknown error";
    g_clear_error(&error);
    if (pipeline) gst_object_unref(pipeline);
    throw std::runtime_error("cannot build the pipeline: " + reason);
  }
  GstElement *sink = GST_IS_BIN(pipeline) ? gst_bin_get_by_name(GST_BIN(pipeline), "sink") : nullptr;
  if (!sink) {
    gst_object_unref(pipeline);
    throw std::runtime_error("the description has no element named 'sink' (end it with '! fakesink name=sink')");
  }
  set_if_present(sink, "sync", FALSE);
  set_if_present(sink, "drop", TRUE);  // appsink: keep no queue of unread buffers
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(sink), "max-buffers")) g_object_set(sink, "max-buffers", 1u, nullptr);

  Arrivals arrivals;
  g_mutex_init(&arrivals.mutex);
  arrivals.warmup = static_cast<guint64>(o.warmup);
  GstPad *pad = gst_element_get_static_pad(sink, "sink");
  if (!pad) {
    gst_object_unref(sink);
    gst_object_unref(pipeline);
    g_mutex_clear(&arrivals.mutex);
    throw std::runtime_error("the element named 'sink' has no sink pad");
  }
  gst_pad_add_probe(pad, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST), on_data,
                    &arrivals, nullptr);
  gst_object_unref(pad);
  gst_object_unref(sink);

  std::string failure;
  const auto started = Clock::now();
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) failure = "the pipeline does not start";
  GstBus *bus = gst_element_get_bus(pipeline);
  // On a failed start the error message (if any) says why; wait for it, or for EOS, or the time limit.
  GstMessage *message = gst_bus_timed_pop_filtered(
      bus, static_cast<GstClockTime>(o.timeout_seconds) * GST_SECOND,
      static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  if (!message) {
    if (failure.empty()) failure = "no EOS within " + std::to_string(o.timeout_seconds) + " s (set num-buffers on the source)";
  } else {
    if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) failure = error_text(message);
    gst_message_unref(message);
  }
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);

  RunResult result;
  g_mutex_lock(&arrivals.mutex);
  result.buffers = arrivals.count;
  result.timed_buffers = arrivals.count - arrivals.count_at_warmup;
  const auto first = arrivals.first, at_warmup = arrivals.at_warmup, last = arrivals.last;
  g_mutex_unlock(&arrivals.mutex);
  g_mutex_clear(&arrivals.mutex);
  if (!failure.empty()) throw std::runtime_error(failure);
  if (result.buffers <= static_cast<guint64>(o.warmup)) {
    throw std::runtime_error(std::to_string(result.buffers) + " buffers reached the sink, need more than --warmup " +
                             std::to_string(o.warmup));
  }
  result.startup_seconds = std::chrono::duration<double>(first - started).count();
  result.timed_seconds = std::chrono::duration<double>(last - at_warmup).count();
  result.fps = static_cast<double>(result.timed_buffers) / result.timed_seconds;
  return result;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  const Options o = parse_options(argc, argv);
  try {
    nlohmann::json runs = nlohmann::json::array();
    std::vector<double> fps;
    for (int r = 0; r < o.repeat; ++r) {
      const RunResult result = run_once(o);
      std::printf("run %d: %9.3f frames/s (%llu buffers, %llu timed in %.3f s after %d warm-up; first buffer after %.3f s)\n",
                  r + 1, result.fps, static_cast<unsigned long long>(result.buffers),
                  static_cast<unsigned long long>(result.timed_buffers), result.timed_seconds, o.warmup,
                  result.startup_seconds);
      std::fflush(stdout);
      fps.push_back(result.fps);
      runs.push_back({{"fps", result.fps},
                      {"buffers", result.buffers},
                      {"timed_buffers", result.timed_buffers},
                      {"timed_seconds", result.timed_seconds},
                      {"startup_seconds", result.startup_seconds}});
    }
    const double fps_median = median(fps);
    std::printf("fps %.3f frames/s (median of %d)\n", fps_median, o.repeat);
    if (!o.json_path.empty()) {
      const nlohmann::json results = {{"benchmark", "element_fps"}, {"description", o.description}, {"warmup", o.warmup},
                                      {"fps", fps_median}, {"runs", runs}};
      cff::files::write_atomically(o.json_path, results.dump(2) + "\n");
    }
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "bench-element-fps: %s\n", e.what());
    return 1;
  }
}
