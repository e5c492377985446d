// cff-soak: runs a gst-launch pipeline for a while, samples this process's resident set (VmRSS) every few
// seconds and checks downstream that no frame was dropped or duplicated (issue 19, "Soak").
//
// The pipeline needs a source element named "src" and an appsink named "sink". Buffers are counted on the
// source's src pad and at the sink; at the end (EOS sent after --seconds) both counts must agree, every
// buffer's PTS must be the first one plus i frame durations (from the caps' framerate), so strictly
// increasing by one frame, and every buffer must carry the --meta structure (a cff region-of-interest
// parameter; "" checks none). Prints the RSS series and the growth from the end of the warm-up to the end.
// Exit status: 0 pass, 1 a check failed (growth >= --max-growth, frames lost, duplicated or misstamped, an
// error or warning on the bus), 2 bad command line.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/gstvideometa.h>
#include <gst/video/video.h>

#include "support/cli.h"

namespace {

struct Options {
  double seconds = 600;
  double every = 5;
  double warmup = 60;
  double max_growth = 2.0;  // percent
  std::string meta = "cff/classification";
  std::string description;
};

Options parse_options(int argc, char **argv) {
  using cff::cli::to_double;
  Options o;
  const std::vector<cff::cli::Option> options = {
      {"seconds", "S", "how long the pipeline runs before EOS is sent [600]",
       [&](auto v) { o.seconds = to_double("seconds", v); }},
      {"every", "S", "seconds between RSS samples [5]", [&](auto v) { o.every = to_double("every", v); }},
      {"warmup", "S", "seconds left out before the growth is measured [60]",
       [&](auto v) { o.warmup = to_double("warmup", v); }},
      {"max-growth", "PERCENT", "RSS growth after the warm-up that fails the run [2]",
       [&](auto v) { o.max_growth = to_double("max-growth", v); }},
      {"meta", "NAME", "cff region-of-interest parameter every buffer must carry; \"\" for none [cff/classification]",
       [&](auto v) { o.meta = v; }},
  };
  const cff::cli::Program program{
      "cff-soak", "[options] DESCRIPTION...",
      "Runs a gst-launch pipeline with a source named \"src\" and an appsink named \"sink\" for --seconds,\n"
      "prints VmRSS every --every seconds, and checks that every frame the source made reached the sink once,\n"
      "with timestamps one frame duration apart.",
      /*arguments=*/true};
  o.description = cff::cli::join(cff::cli::parse_or_exit(argc, argv, options, program), " ");
  if (o.description.empty()) cff::cli::usage_exit(program, "no pipeline description");
  if (o.seconds <= 0 || o.every <= 0 || o.warmup < 0) cff::cli::usage_exit(program, "--seconds and --every must be > 0");
  if (o.warmup >= o.seconds) cff::cli::usage_exit(program, "--warmup must be shorter than --seconds");
  return o;
}

long resident_kb() {
  std::FILE *status = std::fopen("/proc/self/status", "r");
  if (!status) return 0;
  char line[256];
  long kb = 0;
  while (std::fgets(line, sizeof line, status)) {
    if (std::sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  }
  std::fclose(status);
  return kb;
}

GstPadProbeReturn count_buffer(GstPad *, GstPadProbeInfo *info, gpointer counter) {
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER) {
    static_cast<std::atomic<guint64> *>(counter)->fetch_add(1);
  } else if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    static_cast<std::atomic<guint64> *>(counter)->fetch_add(gst_buffer_list_length(GST_PAD_PROBE_INFO_BUFFER_LIST(info)));
  }
  return GST_PAD_PROBE_OK;
}

bool has_param(GstBuffer *buffer, const std::string &name) {
  gpointer state = nullptr;
  while (GstMeta *meta = gst_buffer_iterate_meta_filtered(buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    if (gst_video_region_of_interest_meta_get_param(reinterpret_cast<GstVideoRegionOfInterestMeta *>(meta),
                                                    name.c_str())) {
      return true;
    }
  }
  return false;
}

// ERROR and WARNING messages on the bus, printed; returns how many.
int drain_bus(GstBus *bus, bool *eos = nullptr) {
  int problems = 0;
  while (GstMessage *msg = gst_bus_pop(bus)) {
    const auto type = GST_MESSAGE_TYPE(msg);
    if (type == GST_MESSAGE_ERROR || type == GST_MESSAGE_WARNING) {
      GError *error = nullptr;
      gchar *debug = nullptr;
      if (type == GST_MESSAGE_ERROR) {
        gst_message_parse_error(msg, &error, &debug);
      } else {
        gst_message_parse_warning(msg, &error, &debug);
      }
      std::fprintf(stderr, "cff-soak: %s from %s: %s (%s)\n", type == GST_MESSAGE_ERROR ? "error" : "warning",
                   GST_MESSAGE_SRC_NAME(msg), error ? error->message : "?", debug ? debug : "");
      g_clear_error(&error);
      g_free(debug);
      ++problems;
    } else if (type == GST_MESSAGE_EOS && eos) {
      *eos = true;
    }
    gst_message_unref(msg);
  }
  return problems;
}

}  // namespace

int main(int argc, char **argv) {
  const Options o = parse_options(argc, argv);
  gst_init(nullptr, nullptr);

  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(o.description.c_str(), &error);
  if (!pipeline || error) {
    std::fprintf(stderr, "cff-soak: cannot build the pipeline: %s\n", error ? error->message : "?");
    return 1;
  }
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  if (!src || !sink || !GST_IS_APP_SINK(sink)) {
    std::fprintf(stderr, "cff-soak: the pipeline needs an element named \"src\" and an appsink named \"sink\"\n");
    return 1;
  }
  std::atomic<guint64> produced{0};
  GstPad *src_pad = gst_element_get_static_pad(src, "src");
  gst_pad_add_probe(src_pad, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                    count_buffer, &produced, nullptr);
  gst_object_unref(src_pad);

  std::printf("soak: %s\n", o.description.c_str());
  std::printf("soak: %.0f s, RSS every %.0f s, warm-up %.0f s, growth limit %.1f%%\n", o.seconds, o.every, o.warmup,
              o.max_growth);
  std::printf("%8s %10s %8s %10s\n", "t_s", "frames", "fps", "rss_kb");
  std::fflush(stdout);

  GstBus *bus = gst_element_get_bus(pipeline);
  int problems = 0;
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    drain_bus(bus);
    std::fprintf(stderr, "cff-soak: the pipeline does not start\n");
    return 1;
  }

  const gint64 start = g_get_monotonic_time();
  auto elapsed = [&] { return static_cast<double>(g_get_monotonic_time() - start) / 1e6; };
  struct Point {
    double t;
    guint64 frames;
    long rss;
  };
  std::vector<Point> series;
  series.push_back({0.0, 0, resident_kb()});
  std::printf("%8.0f %10d %8s %10ld\n", 0.0, 0, "-", series.back().rss);

  guint64 frames = 0, misstamped = 0, without_meta = 0;
  GstClockTime first_pts = GST_CLOCK_TIME_NONE, last_pts = GST_CLOCK_TIME_NONE;
  int fps_n = 0, fps_d = 1;
  bool eos_sent = false, eos = false;
  double next_sample = o.every;
  while (!eos) {
    if (GstSample *sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 100 * GST_MSECOND)) {
      GstBuffer *buffer = gst_sample_get_buffer(sample);
      if (fps_n == 0) {
        GstVideoInfo info;
        if (GstCaps *caps = gst_sample_get_caps(sample); caps && gst_video_info_from_caps(&info, caps)) {
          fps_n = GST_VIDEO_INFO_FPS_N(&info);
          fps_d = GST_VIDEO_INFO_FPS_D(&info);
        }
        if (fps_n <= 0) {
          std::fprintf(stderr, "cff-soak: the sink's caps have no framerate: cannot check timestamps\n");
          ++problems;
          fps_n = -1;
        }
      }
      const GstClockTime pts = GST_BUFFER_PTS(buffer);
      if (frames == 0) first_pts = pts;
      const GstClockTime expected =
          GST_CLOCK_TIME_IS_VALID(first_pts) && fps_n > 0
              ? first_pts + gst_util_uint64_scale(frames, GST_SECOND * static_cast<guint64>(fps_d), static_cast<guint64>(fps_n))
              : GST_CLOCK_TIME_NONE;
      const bool increasing = frames == 0 || (GST_CLOCK_TIME_IS_VALID(pts) && pts > last_pts);
      if (!GST_CLOCK_TIME_IS_VALID(pts) || pts != expected || !increasing) {
        if (misstamped < 10) {
          std::fprintf(stderr, "cff-soak: frame %llu has PTS %" GST_TIME_FORMAT ", expected %" GST_TIME_FORMAT
                               " (previous %" GST_TIME_FORMAT ")\n",
                       static_cast<unsigned long long>(frames), GST_TIME_ARGS(pts), GST_TIME_ARGS(expected),
                       GST_TIME_ARGS(last_pts));
        }
        ++misstamped;
      }
      if (!o.meta.empty() && !has_param(buffer, o.meta)) ++without_meta;
      last_pts = pts;
      ++frames;
      gst_sample_unref(sample);
    } else if (gst_app_sink_is_eos(GST_APP_SINK(sink))) {
      eos = true;
    }
    problems += drain_bus(bus);
    const double t = elapsed();
    if (t >= next_sample) {
      const double dt = t - series.back().t;
      series.push_back({t, frames, resident_kb()});
      const double fps = dt > 0 ? static_cast<double>(frames - series[series.size() - 2].frames) / dt : 0.0;
      std::printf("%8.0f %10llu %8.1f %10ld\n", t, static_cast<unsigned long long>(frames), fps, series.back().rss);
      std::fflush(stdout);
      next_sample += o.every;
    }
    if (!eos_sent && t >= o.seconds) {
      gst_element_send_event(pipeline, gst_event_new_eos());
      eos_sent = true;
    }
    if (eos_sent && t >= o.seconds + 60) {
      std::fprintf(stderr, "cff-soak: no EOS 60 s after sending it\n");
      ++problems;
      break;
    }
    if (problems > 0 && !eos_sent) {  // an error stops the stream: end now
      gst_element_send_event(pipeline, gst_event_new_eos());
      eos_sent = true;
    }
  }
  if (!eos_sent) {
    std::fprintf(stderr, "cff-soak: the stream ended after %.0f s, before --seconds\n", elapsed());
    ++problems;
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  problems += drain_bus(bus);
  const guint64 made = produced.load();

  // Growth: from the first sample at or after the warm-up to the last sample.
  const Point *base = nullptr;
  long peak = 0;
  for (const auto &p : series) {
    if (!base && p.t >= o.warmup) base = &p;
    if (base) peak = std::max(peak, p.rss);
  }
  const Point &last = series.back();
  double growth = 0, peak_growth = 0;
  bool growth_ok = base && base != &last;
  if (growth_ok) {
    growth = 100.0 * static_cast<double>(last.rss - base->rss) / static_cast<double>(base->rss);
    peak_growth = 100.0 * static_cast<double>(peak - base->rss) / static_cast<double>(base->rss);
    growth_ok = growth < o.max_growth;
  }

  std::printf("soak: %llu frames made by src, %llu reached the sink, %llu misstamped, %llu without %s\n",
              static_cast<unsigned long long>(made), static_cast<unsigned long long>(frames),
              static_cast<unsigned long long>(misstamped), static_cast<unsigned long long>(without_meta),
              o.meta.empty() ? "(no meta check)" : o.meta.c_str());
  if (fps_n > 0 && GST_CLOCK_TIME_IS_VALID(first_pts)) {
    std::printf("soak: timestamps %" GST_TIME_FORMAT " to %" GST_TIME_FORMAT " at %d/%d fps\n", GST_TIME_ARGS(first_pts),
                GST_TIME_ARGS(last_pts), fps_n, fps_d);
  }
  if (base && base != &last) {
    std::printf("soak: RSS %ld kB at start, %ld kB after warm-up (t=%.0f s), %ld kB at end (t=%.0f s): growth %+.2f%% "
                "(peak %+.2f%%, limit %.1f%%)\n",
                series.front().rss, base->rss, base->t, last.rss, last.t, growth, peak_growth, o.max_growth);
  } else {
    std::printf("soak: too short to measure the growth after the warm-up\n");
  }
  const bool frames_ok = frames > 0 && made == frames && misstamped == 0 && without_meta == 0;
  const bool pass = frames_ok && growth_ok && problems == 0;
  std::printf("soak: %s\n", pass ? "PASS" : "FAIL");
  gst_object_unref(bus);
  gst_object_unref(src);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  return pass ? 0 : 1;
}
