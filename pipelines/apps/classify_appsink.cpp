/* cff-classify-app: an application reading cffclassify's results from an appsink.
 *
 * It plays a video file (or any pipeline description ending in `appsink name=sink`) through cffclassify,
 * pulls every frame from the appsink, reads the "cff/classification" structure that cffclassify attached
 * to the frame's GstVideoRegionOfInterestMeta, and prints one line per frame. Given the ground-truth CSV
 * that cff-make-clip writes, it also prints the accuracy on in-distribution frames and how often each
 * kind of frame was flagged out of distribution.
 *
 * Usage: cff-classify-app [--model FILE] [--truth CSV] [--quiet] [--threads N] CLIP   (GOption: --help-all lists GStreamer's options too)
 *        cff-classify-app --launch "PIPELINE ... ! appsink name=sink" [--truth CSV] [--quiet]
 *
 * It uses only the GStreamer C API (no torch, no cff headers): what a user's own application would do.
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>

typedef struct {
  int kind_in; /* 1 = in-distribution frame, 0 = out-of-distribution frame */
  int label;
} TruthRow;

typedef struct {
  TruthRow *rows;
  gsize count;
} Truth;

static gboolean read_truth(const char *path, Truth *truth, GError **error) {
  gchar *contents = NULL;
  if (!g_file_get_contents(path, &contents, NULL, error)) return FALSE;
  gchar **lines = g_strsplit(contents, "\n", -1);
  g_free(contents);
  guint n = g_strv_length(lines);
  truth->rows = g_new0(TruthRow, n);
  truth->count = 0;
  for (guint i = 1; i < n; ++i) { /* line 0 is the header */
    if (lines[i][0] == '\0') continue;
    gchar **f = g_strsplit(lines[i], ",", 4);
    if (g_strv_length(f) < 3 || (strcmp(f[1], "in") != 0 && strcmp(f[1], "ood") != 0)) {
      g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: line %u is not 'frame,kind,label,name'", path, i + 1);
      g_strfreev(f);
      g_strfreev(lines);
      return FALSE;
    }
    truth->rows[truth->count].kind_in = strcmp(f[1], "in") == 0;
    truth->rows[truth->count].label = atoi(f[2]);
    truth->count++;
    g_strfreev(f);
  }
  g_strfreev(lines);
  return TRUE;
}

int main(int argc, char **argv) {
  /* g_autofree: the option parser allocates these strings; they are freed on every return. */
  g_autofree gchar *model = NULL;
  g_autofree gchar *truth_path = NULL;
  g_autofree gchar *launch = NULL;
  gint threads = 1;
  gboolean quiet = FALSE;
  /* GLib's option parser, with GStreamer's own options (--gst-debug, ...) as a group of it. */
  const GOptionEntry entries[] = {
      {"model", 0, 0, G_OPTION_ARG_FILENAME, &model, "model file [models/fashion-mnist-cff.cff]", "FILE"},
      {"truth", 0, 0, G_OPTION_ARG_FILENAME, &truth_path, "ground truth from cff-make-clip: adds accuracy and OOD rates",
       "CSV"},
      {"threads", 0, 0, G_OPTION_ARG_INT, &threads, "LibTorch threads of cffclassify [1]", "N"},
      {"launch", 0, 0, G_OPTION_ARG_STRING, &launch, "use this pipeline instead of CLIP; it must end in an appsink named 'sink'",
       "DESC"},
      {"quiet", 0, 0, G_OPTION_ARG_NONE, &quiet, "print only the summary", NULL},
      {NULL, 0, 0, G_OPTION_ARG_NONE, NULL, NULL, NULL}};
  GOptionContext *context = g_option_context_new("[CLIP]");
  g_option_context_set_summary(context, "Plays CLIP through cffclassify and prints, per frame, what cffclassify attached to it.");
  g_option_context_add_main_entries(context, entries, NULL);
  g_option_context_add_group(context, gst_init_get_option_group());
  GError *error = NULL;
  const gboolean parsed = g_option_context_parse(context, &argc, &argv, &error);
  g_option_context_free(context);
  const char *clip = argc == 2 ? argv[1] : NULL;
  if (parsed && argc > 2) {
    g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "unexpected argument '%s'", argv[2]);
  } else if (parsed && (clip == NULL) == (launch == NULL)) {
    g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "give either CLIP or --launch");
  } else if (parsed && threads < 1) {
    g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--threads must be at least 1");
  }
  if (error != NULL) {
    fprintf(stderr, "cff-classify-app: %s (see --help)\n", error->message);
    g_clear_error(&error);
    return 2;
  }
  if (model == NULL) model = g_strdup("models/fashion-mnist-cff.cff");

  Truth truth = {NULL, 0};
  if (truth_path != NULL && !read_truth(truth_path, &truth, &error)) {
    fprintf(stderr, "cff-classify-app: %s\n", error->message);
    g_clear_error(&error);
    return 1;
  }

  gchar *description;
  if (launch != NULL) {
    description = g_strdup(launch);
  } else {
    gchar *loc = g_strescape(clip, NULL), *mod = g_strescape(model, NULL);
    description = g_strdup_printf(
        "filesrc location=\"%s\" ! decodebin ! videoconvert ! cffclassify model=\"%s\" threads=%d ! "
        "appsink name=sink sync=false",
        loc, mod, threads);
    g_free(loc);
    g_free(mod);
  }
  GstElement *pipeline = gst_parse_launch(description, &error);
  g_free(description);
  if (pipeline == NULL || error != NULL) {
    fprintf(stderr, "cff-classify-app: pipeline: %s\n", error ? error->message : "could not be built");
    g_clear_error(&error);
    if (pipeline) gst_object_unref(pipeline);
    g_free(truth.rows);
    return 1;
  }
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  if (sink == NULL || !GST_IS_APP_SINK(sink)) {
    fprintf(stderr, "cff-classify-app: pipeline: no appsink named 'sink'\n");
    if (sink) gst_object_unref(sink);
    gst_object_unref(pipeline);
    g_free(truth.rows);
    return 1;
  }
  gst_element_set_state(pipeline, GST_STATE_PLAYING);

  gsize frames = 0, with_result = 0, in_frames = 0, in_correct = 0, in_flagged = 0, ood_frames = 0, ood_flagged = 0;
  GstSample *sample;
  while ((sample = gst_app_sink_pull_sample(GST_APP_SINK(sink))) != NULL) {
    GstBuffer *buffer = gst_sample_get_buffer(sample);
    /* A buffer may carry several region metas (cffgenerate adds one too): take the one with our result. */
    GstStructure *s = NULL;
    gpointer state = NULL;
    GstMeta *meta;
    while (s == NULL &&
           (meta = gst_buffer_iterate_meta_filtered(buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) != NULL) {
      s = gst_video_region_of_interest_meta_get_param((GstVideoRegionOfInterestMeta *)meta, "cff/classification");
    }
    if (s != NULL) {
      const gchar *label = gst_structure_get_string(s, "label");
      gint class_id = -1;
      gdouble confidence = 0, energy = 0;
      gboolean ood = FALSE;
      gst_structure_get_int(s, "class-id", &class_id);
      gst_structure_get_double(s, "confidence", &confidence);
      gst_structure_get_double(s, "energy", &energy);
      gst_structure_get_boolean(s, "ood", &ood);
      ++with_result;
      if (!quiet) {
        printf("frame %4" G_GSIZE_FORMAT "  pts %" GST_TIME_FORMAT "  %-12s p=%.3f  U=%8.3f%s\n", frames,
               GST_TIME_ARGS(GST_BUFFER_PTS(buffer)), label ? label : "?", confidence, energy, ood ? "  OOD" : "");
      }
      if (frames < truth.count) {
        if (truth.rows[frames].kind_in) {
          ++in_frames;
          in_correct += class_id == truth.rows[frames].label;
          in_flagged += ood;
        } else {
          ++ood_frames;
          ood_flagged += ood;
        }
      }
    } else if (!quiet) {
      printf("frame %4" G_GSIZE_FORMAT "  no cff/classification meta\n", frames);
    }
    ++frames;
    gst_sample_unref(sample);
  }

  /* The appsink returns NULL at EOS or on an error: tell them apart from the bus. */
  int status = 0;
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  if (msg != NULL) {
    GError *err = NULL;
    gchar *debug = NULL;
    gst_message_parse_error(msg, &err, &debug);
    fprintf(stderr, "cff-classify-app: %s: %s\n", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)), err->message);
    g_clear_error(&err);
    g_free(debug);
    gst_message_unref(msg);
    status = 1;
  }
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(pipeline);

  printf("frames %" G_GSIZE_FORMAT ", with a classification %" G_GSIZE_FORMAT "\n", frames, with_result);
  if (truth.count > 0) {
    if (in_frames > 0) {
      printf("in-distribution frames %" G_GSIZE_FORMAT ": accuracy %.3f, flagged OOD %.3f\n", in_frames,
             (double)in_correct / in_frames, (double)in_flagged / in_frames);
    }
    if (ood_frames > 0) {
      printf("out-of-distribution frames %" G_GSIZE_FORMAT ": flagged OOD %.3f\n", ood_frames,
             (double)ood_flagged / ood_frames);
    }
    if (frames != truth.count) {
      fprintf(stderr, "cff-classify-app: the clip had %" G_GSIZE_FORMAT " frames, the truth file %" G_GSIZE_FORMAT "\n",
              frames, truth.count);
      status = 1;
    }
  }
  if (frames > 0 && with_result != frames) status = 1;
  g_free(truth.rows);
  return status;
}
