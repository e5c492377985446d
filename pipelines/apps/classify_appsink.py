#!/usr/bin/python3
"""Reads cffclassify's results from an appsink, in Python (gst-python / PyGObject).

Plays a clip through cffclassify, pulls every frame from an appsink and prints what cffclassify
attached to it (the "cff/classification" structure of the frame's GstVideoRegionOfInterestMeta).
With the ground-truth CSV that cff-make-clip writes, it also prints accuracy and OOD rates.

Usage: classify_appsink.py [--model FILE] [--truth CSV] [--threads N] [--quiet] CLIP

Needs Debian's python3-gst-1.0; run it with /usr/bin/python3 and GST_PLUGIN_PATH_1_0 pointing at
the folder that holds libgstcff.so (pipelines/common.sh sets it for the build tree).
"""
import argparse
import csv
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstApp, GstVideo  # noqa: E402  (after require_version)


def read_truth(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows):
        if row.get("kind") not in ("in", "ood"):
            raise ValueError(f"{path}: line {i + 2} is not 'frame,kind,label,name'")
    return [(row["kind"] == "in", int(row["label"])) for row in rows]


def classification(buffer):
    """The "cff/classification" structure of the buffer's region metas, or None.

    PyGObject cannot iterate a buffer's metas, so look them up by id: cffclassify gives its whole-frame
    meta an id no other region meta on the buffer has (0 when it is the only one).
    """
    n = buffer.get_n_meta(GstVideo.VideoRegionOfInterestMeta.get_info().api)
    for meta_id in range(n + 1):
        meta = GstVideo.buffer_get_video_region_of_interest_meta_id(buffer, meta_id)
        s = meta.get_param("cff/classification") if meta is not None else None
        if s is not None:
            return s
    return None


def main():
    parser = argparse.ArgumentParser(description="Print cffclassify's per-frame results read from an appsink.")
    parser.add_argument("clip", help="video file to classify")
    parser.add_argument("--model", default="models/fashion-mnist-cff.cff", help="model file")
    parser.add_argument("--truth", help="ground truth CSV from cff-make-clip")
    parser.add_argument("--threads", type=int, default=1, help="LibTorch threads of cffclassify")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args()

    Gst.init(None)
    truth = []
    if args.truth:
        try:
            truth = read_truth(args.truth)
        except (OSError, ValueError, KeyError) as e:
            print(f"classify_appsink.py: {e}", file=sys.stderr)
            return 1

    pipeline = Gst.Pipeline.new("app")
    src = Gst.ElementFactory.make("filesrc")
    decode = Gst.ElementFactory.make("decodebin")
    convert = Gst.ElementFactory.make("videoconvert")
    classify = Gst.ElementFactory.make("cffclassify")
    sink = Gst.ElementFactory.make("appsink")
    if classify is None:
        print("classify_appsink.py: no cffclassify element (is GST_PLUGIN_PATH_1_0 set?)", file=sys.stderr)
        return 1
    src.set_property("location", args.clip)
    classify.set_property("model", args.model)
    classify.set_property("threads", args.threads)
    sink.set_property("sync", False)
    for e in (src, decode, convert, classify, sink):
        pipeline.add(e)
    src.link(decode)
    convert.link(classify)
    classify.link(sink)
    # decodebin's pads appear once it knows the stream.
    decode.connect("pad-added", lambda _d, pad: pad.link(convert.get_static_pad("sink")))

    pipeline.set_state(Gst.State.PLAYING)
    frames = with_result = 0
    in_frames = in_correct = in_flagged = ood_frames = ood_flagged = 0
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        buffer = sample.get_buffer()
        s = classification(buffer)
        if s is not None:
            with_result += 1
            label = s.get_string("label")
            class_id = s.get_int("class-id")[1]
            confidence = s.get_double("confidence")[1]
            energy = s.get_double("energy")[1]
            ood = s.get_boolean("ood")[1]
            if not args.quiet:
                print(f"frame {frames:4d}  pts {buffer.pts / 1e9:8.3f}s  {label:<12} p={confidence:.3f}  "
                      f"U={energy:8.3f}{'  OOD' if ood else ''}")
            if frames < len(truth):
                is_in, want = truth[frames]
                if is_in:
                    in_frames += 1
                    in_correct += class_id == want
                    in_flagged += ood
                else:
                    ood_frames += 1
                    ood_flagged += ood
        elif not args.quiet:
            print(f"frame {frames:4d}  no cff/classification meta")
        frames += 1

    status = 0
    message = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
    if message is not None:
        err, _debug = message.parse_error()
        print(f"classify_appsink.py: {message.src.get_name()}: {err.message}", file=sys.stderr)
        status = 1
    pipeline.set_state(Gst.State.NULL)

    print(f"frames {frames}, with a classification {with_result}")
    if truth:
        if in_frames:
            print(f"in-distribution frames {in_frames}: accuracy {in_correct / in_frames:.3f}, "
                  f"flagged OOD {in_flagged / in_frames:.3f}")
        if ood_frames:
            print(f"out-of-distribution frames {ood_frames}: flagged OOD {ood_flagged / ood_frames:.3f}")
        if frames != len(truth):
            print(f"classify_appsink.py: the clip had {frames} frames, the truth file {len(truth)}", file=sys.stderr)
            status = 1
    if frames > 0 and with_result != frames:
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
