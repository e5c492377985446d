# pycffclassify: a Python peer of cffclassify, for benchmarks only (tools/bench/python_peer.sh).
#
# It does the element's job the way a Python developer would: it reads the same .cff model file
# (header, JSON metadata, raw float32 tensors, CRC-32; libcff/include/cff/model_file.h), builds the
# same pre-activation ResNet with GroupNorm in PyTorch (libcff/src/network.cpp), converts each frame
# as gst-plugin/frame_convert.cpp does (BT.601 luma or RGB, area average when shrinking, bilinear
# when growing, x = (p / 255 - mean) / std), runs the forward pass under torch.no_grad and attaches
# a GstVideoRegionOfInterestMeta of type "cff" with a "cff/classification" param, like cffclassify
# with roi=frame. Only the whole frame is classified (no interval, overlay, messages or upstream ROIs).
#
# gst-python loads it from a folder `python/` under a GST_PLUGIN_PATH entry; run it with the system
# Python's modules (Debian: python3-gst-1.0, gstreamer1.0-python3-plugin-loader, python3-torch,
# python3-numpy).
import json
import math
import os
import struct
import zlib

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstBase", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GObject, Gst, GstBase, GstVideo  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

MAGIC = b"CFFMODEL"
FORMAT_VERSION = 1
HEADER = struct.Struct("<8sIIQQI")  # magic, version, flags, metadata size, tensor size, CRC-32
PARAM_NAME = "cff/classification"
LIMITED_RANGE = getattr(GstVideo.VideoColorRange, "16_235")  # not a valid Python name
FORMATS = "{ GRAY8, RGB, BGR, RGBA, BGRA, RGBx, BGRx, xRGB, xBGR, ARGB, ABGR, I420, NV12 }"

# Byte offsets of R, G, B in a pixel and bytes per pixel (frame_convert.cpp's packed_layout).
PACKED = {
    "RGB": (0, 1, 2, 3), "BGR": (2, 1, 0, 3),
    "RGBA": (0, 1, 2, 4), "RGBx": (0, 1, 2, 4),
    "BGRA": (2, 1, 0, 4), "BGRx": (2, 1, 0, 4),
    "ARGB": (1, 2, 3, 4), "xRGB": (1, 2, 3, 4),
    "ABGR": (3, 2, 1, 4), "xBGR": (3, 2, 1, 4),
}


class ModelFileError(Exception):
    pass


# ---- the network (libcff/src/network.cpp) -------------------------------------------------------

def fitting_groups(groups, channels):
    g = max(1, min(groups, channels))
    while channels % g:
        g -= 1
    return g


def activation(name):
    return {"silu": F.silu, "gelu": F.gelu, "softplus": F.softplus}[name]


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride, groups, act):
        super().__init__()
        self.act = activation(act)
        self.norm1 = nn.GroupNorm(fitting_groups(groups, in_channels), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(fitting_groups(groups, out_channels), out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x):
        h = self.act(self.norm1(x))
        skip = self.shortcut(h) if self.shortcut is not None else x  # pre-activation projection
        h = self.conv1(h)
        h = self.conv2(self.act(self.norm2(h)))
        return skip + h


class Classifier(nn.Module):
    def __init__(self, config):
        super().__init__()
        widths, groups, act = config["widths"], config["groups"], config["activation"]
        self.act = activation(act)
        self.stem = nn.Conv2d(config["channels"], widths[0], 3, padding=1)
        blocks, in_channels = [], widths[0]
        for stage, out_channels in enumerate(widths):
            for b in range(config["blocks_per_stage"]):
                stride = 2 if stage > 0 and b == 0 else 1
                blocks.append(ResidualBlock(in_channels, out_channels, stride, groups, act))
                in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.head_norm = nn.GroupNorm(fitting_groups(groups, in_channels), in_channels)
        self.head = nn.Linear(in_channels, config["num_classes"])

    def forward(self, x):
        h = self.blocks(self.stem(x))
        h = self.act(self.head_norm(h))
        return self.head(h.mean(dim=(2, 3)))


# ---- the model file (libcff/src/model_file.cpp) -------------------------------------------------

def read_tensors(block, path):
    tensors, pos = {}, 0

    def take(n, what):
        nonlocal pos
        if n > len(block) - pos:
            raise ModelFileError(f"{path}: truncated while reading {what}")
        piece = block[pos:pos + n]
        pos += n
        return piece

    while pos < len(block):
        (name_size,) = struct.unpack("<I", take(4, "tensor name length"))
        if name_size == 0 or name_size > 4096:
            raise ModelFileError(f"{path}: bad tensor name length")
        name = take(name_size, "tensor name").decode("utf-8")
        (rank,) = struct.unpack("<I", take(4, "tensor rank"))
        if rank > 8:
            raise ModelFileError(f"{path}: tensor '{name}' has rank {rank}")
        dims = struct.unpack(f"<{rank}q", take(8 * rank, "tensor shape"))
        if any(d < 0 for d in dims):
            raise ModelFileError(f"{path}: tensor '{name}' has a bad dimension")
        count = math.prod(dims)
        values = np.frombuffer(take(4 * count, "tensor data"), dtype="<f4").reshape(dims)
        if name in tensors:
            raise ModelFileError(f"{path}: tensor '{name}' appears twice")
        if not np.isfinite(values).all():
            raise ModelFileError(f"{path}: tensor '{name}' holds NaN or Inf values")
        tensors[name] = torch.from_numpy(values.astype(np.float32))
    return tensors


def load_model(path):
    """Returns (network in eval mode, metadata dict). Raises ModelFileError naming the file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ModelFileError(f"{path}: cannot open ({e.strerror})") from e
    if len(data) < HEADER.size or data[:8] != MAGIC:
        raise ModelFileError(f"{path}: not a cff model file (wrong magic)")
    _, version, _, metadata_size, tensor_size, checksum = HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path}: unsupported format version {version}")
    body = data[HEADER.size:]
    if metadata_size + tensor_size != len(body):
        raise ModelFileError(f"{path}: header announces {metadata_size + tensor_size} bytes, file has {len(body)}")
    if zlib.crc32(body) != checksum:
        raise ModelFileError(f"{path}: checksum mismatch (the file is corrupt)")
    try:
        metadata = json.loads(body[:metadata_size].decode("utf-8"))
    except ValueError as e:
        raise ModelFileError(f"{path}: metadata is not valid JSON ({e})") from e
    config = metadata["network"]
    if config.get("type", "resnet-gn") != "resnet-gn":
        raise ModelFileError(f"{path}: network type '{config['type']}' is not supported")
    if len(metadata["labels"]) != config["num_classes"]:
        raise ModelFileError(f"{path}: {len(metadata['labels'])} labels for {config['num_classes']} classes")

    network = Classifier(config)
    expected = network.state_dict()
    # The fitted OOD scores' class models ("ood/..." tensors) are not the network's: this peer flags by the energy.
    tensors = {k: v for k, v in read_tensors(body[metadata_size:], path).items() if not k.startswith("ood/")}
    for name, value in tensors.items():
        if name not in expected:
            raise ModelFileError(f"{path}: tensor '{name}' does not belong to the architecture in the metadata")
        if tuple(value.shape) != tuple(expected[name].shape):
            raise ModelFileError(f"{path}: tensor '{name}' has shape {list(value.shape)} but the "
                                 f"architecture expects {list(expected[name].shape)}")
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise ModelFileError(f"{path}: tensor '{missing[0]}' is missing")
    network.load_state_dict(tensors, strict=True)
    network.eval()
    for p in network.parameters():
        p.requires_grad_(False)
    return network, metadata


# ---- frame conversion (gst-plugin/frame_convert.cpp) --------------------------------------------

def resampling_matrix(source, target):
    """target x source weights: area average when shrinking, bilinear (centres aligned) when growing."""
    m = np.zeros((target, source), dtype=np.float32)
    scale = source / target
    for d in range(target):
        if source > target:
            start, end = d * scale, (d + 1) * scale
            first, last = int(math.floor(start)), min(source - 1, int(math.ceil(end)) - 1)
            for i in range(first, last + 1):
                overlap = min(end, i + 1.0) - max(start, float(i))
                m[d, i] = np.float32(max(0.0, overlap) / scale)
        else:
            s = min(max((d + 0.5) * scale - 0.5, 0.0), float(source - 1))
            i0 = int(math.floor(s))
            f = s - i0
            if i0 + 1 < source and f > 0.0:
                m[d, i0], m[d, i0 + 1] = np.float32(1.0 - f), np.float32(f)
            else:
                m[d, i0] = 1.0
    return m


class FrameConverter:
    """Pixels of one caps -> C x H x W float32 model input."""

    def __init__(self, info, channels, height, width, mean, std):
        self.format = GstVideo.VideoFormat.to_string(info.finfo.format)
        self.frame_w, self.frame_h = info.width, info.height
        self.channels = channels
        self.offsets = [info.offset[p] for p in range(4)]
        self.strides = [info.stride[p] for p in range(4)]
        self.limited = bool(info.finfo.flags & GstVideo.VideoFormatFlags.YUV) and \
            info.colorimetry.range == LIMITED_RANGE
        self.horizontal = resampling_matrix(self.frame_w, width).T.copy()  # frame_w x width
        self.vertical = resampling_matrix(self.frame_h, height)             # height x frame_h
        self.scale = np.array([1.0 / (255.0 * s) for s in std], dtype=np.float32).reshape(-1, 1, 1)
        self.offset = np.array([m / s for m, s in zip(mean, std)], dtype=np.float32).reshape(-1, 1, 1)

    def plane(self, data, index, rows, row_bytes, offsets=None, strides=None):
        offset = (offsets or self.offsets)[index]
        stride = (strides or self.strides)[index]
        return np.lib.stride_tricks.as_strided(data[offset:], shape=(rows, row_bytes), strides=(stride, 1))

    def planes_rgb_or_grey(self, data, offsets, strides):
        """Full-range float32 channel planes, frame size: [luma] or [r, g, b]."""
        w, h, fmt = self.frame_w, self.frame_h, self.format
        if fmt in PACKED:
            r, g, b, n = PACKED[fmt]
            pixels = self.plane(data, 0, h, w * n, offsets, strides).reshape(h, w, n)
            red, green, blue = (pixels[:, :, k].astype(np.float32) for k in (r, g, b))
            if self.channels == 1:
                return [np.float32(0.299) * red + np.float32(0.587) * green + np.float32(0.114) * blue]
            return [red, green, blue]
        luma = self.plane(data, 0, h, w, offsets, strides).astype(np.float32)
        if fmt == "GRAY8":
            return [luma] * self.channels
        if self.limited:
            luma = (luma - np.float32(16.0)) * np.float32(255.0 / 219.0)
        if self.channels == 1:
            return [np.clip(luma, 0.0, 255.0)]
        ch = (h + 1) // 2
        cw = (w + 1) // 2
        if fmt == "I420":
            u = self.plane(data, 1, ch, cw, offsets, strides).astype(np.float32)
            v = self.plane(data, 2, ch, cw, offsets, strides).astype(np.float32)
        else:  # NV12
            uv = self.plane(data, 1, ch, 2 * cw, offsets, strides).reshape(ch, cw, 2).astype(np.float32)
            u, v = uv[:, :, 0], uv[:, :, 1]
        u = np.repeat(np.repeat(u, 2, axis=0), 2, axis=1)[:h, :w]
        v = np.repeat(np.repeat(v, 2, axis=0), 2, axis=1)[:h, :w]
        if self.limited:
            cb, cr = (u - np.float32(128.0)) * np.float32(255.0 / 224.0), (v - np.float32(128.0)) * np.float32(255.0 / 224.0)
        else:
            cb, cr = u - np.float32(128.0), v - np.float32(128.0)
        return [np.clip(luma + np.float32(1.402) * cr, 0.0, 255.0),
                np.clip(luma - np.float32(0.344136) * cb - np.float32(0.714136) * cr, 0.0, 255.0),
                np.clip(luma + np.float32(1.772) * cb, 0.0, 255.0)]

    def __call__(self, data, offsets=None, strides=None):
        planes = np.stack(self.planes_rgb_or_grey(data, offsets, strides))  # C x frame_h x frame_w
        resized = self.vertical @ (planes @ self.horizontal)                # C x H x W
        return resized * self.scale - self.offset


# ---- the element --------------------------------------------------------------------------------

def value_array(values):
    return Gst.ValueArray(values)


class PyCffClassify(GstBase.BaseTransform):
    __gstmetadata__ = ("cff classifier (Python peer)", "Filter/Analyzer/Video",
                       "Classifies each frame with a cff model file in PyTorch (benchmark peer of cffclassify)",
                       "cff")
    __gsttemplates__ = (
        Gst.PadTemplate.new("sink", Gst.PadDirection.SINK, Gst.PadPresence.ALWAYS,
                            Gst.Caps.from_string(f"video/x-raw, format={FORMATS}")),
        Gst.PadTemplate.new("src", Gst.PadDirection.SRC, Gst.PadPresence.ALWAYS,
                            Gst.Caps.from_string(f"video/x-raw, format={FORMATS}")),
    )
    __gproperties__ = {
        "model": (str, "Model", "cff model file", None, GObject.ParamFlags.READWRITE),
        "device": (str, "Device", "auto, cpu, cuda or cuda:N", "auto", GObject.ParamFlags.READWRITE),
        "threads": (int, "Threads", "PyTorch intra-op threads, 0 = one per core (process-wide)",
                    0, 1024, 0, GObject.ParamFlags.READWRITE),
        "top-k": (int, "Top k", "Classes listed per result (clamped to the model's K)",
                  1, 1000, 3, GObject.ParamFlags.READWRITE),
    }

    def __init__(self):
        super().__init__()
        self.model_path = None
        self.device_spec = "auto"
        self.threads = 0
        self.top_k = 3
        self.network = None
        self.metadata = None
        self.device = None
        self.converter = None
        self.set_in_place(True)
        self.set_passthrough(False)

    def do_get_property(self, prop):
        return {"model": self.model_path, "device": self.device_spec, "threads": self.threads,
                "top-k": self.top_k}[prop.name]

    def do_set_property(self, prop, value):
        if prop.name == "model":
            self.model_path = value
        elif prop.name == "device":
            self.device_spec = value or "auto"
        elif prop.name == "threads":
            self.threads = value
        elif prop.name == "top-k":
            self.top_k = value
        else:
            raise AttributeError(f"unknown property {prop.name}")

    def error(self, domain_error, text):
        Gst.Element.message_full(self, Gst.MessageType.ERROR, Gst.resource_error_quark(), domain_error,
                                 text, None, __file__, "start", 0)

    def do_start(self):
        if not self.model_path:
            self.error(Gst.ResourceError.SETTINGS, "No model file set")
            return False
        if not os.path.exists(self.model_path):
            self.error(Gst.ResourceError.NOT_FOUND, f"Model file '{self.model_path}' not found")
            return False
        try:
            torch.set_num_threads(self.threads if self.threads > 0 else (os.cpu_count() or 1))
            if self.device_spec == "auto":
                self.device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
            else:
                self.device = torch.device(self.device_spec)
            self.network, self.metadata = load_model(self.model_path)
            self.network.to(self.device)
        except (ModelFileError, KeyError, ValueError, RuntimeError) as e:
            self.error(Gst.ResourceError.SETTINGS, f"Cannot load model file '{self.model_path}': {e}")
            return False
        ood = self.metadata.get("ood", {})
        self.threshold = ood.get("threshold", 0.0) if ood.get("calibrated", False) else math.inf
        return True

    def do_stop(self):
        self.network = None
        self.converter = None
        return True

    def do_set_caps(self, incaps, outcaps):
        try:
            info = GstVideo.VideoInfo.new_from_caps(incaps)
            config, norm = self.metadata["network"], self.metadata["normalization"]
            self.converter = FrameConverter(info, config["channels"], config["height"], config["width"],
                                            norm["mean"], norm["std"])
            return True
        except Exception as e:
            Gst.Element.message_full(self, Gst.MessageType.ERROR, Gst.core_error_quark(), Gst.CoreError.NEGOTIATION,
                                     f"Cannot handle caps {incaps.to_string()}: {e}", None, __file__, "set_caps", 0)
            return False

    def classify(self, chw):
        x = torch.from_numpy(np.ascontiguousarray(chw, dtype=np.float32)).unsqueeze(0)
        finite = bool(torch.isfinite(x).all())
        if not finite:
            x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        with torch.no_grad():
            logits = self.network(x.to(self.device)).to("cpu", torch.float64)[0]
        finite = finite and bool(torch.isfinite(logits).all())
        labels = self.metadata["labels"]
        s = Gst.Structure.new_empty(PARAM_NAME)
        if not finite:
            s.set_value("label", "")
            s.set_value("class-id", -1)
            s.set_value("confidence", 0.0)
            s.set_value("energy", math.inf)
            s.set_value("ood", True)
            s.set_value("non-finite", True)
            s.set_value("ood-threshold", float(self.threshold))
            return s
        energy = -torch.logsumexp(logits, 0).item()
        probabilities, ids = torch.softmax(logits, 0).topk(max(1, min(self.top_k, len(labels))))
        ids, probabilities = ids.tolist(), probabilities.tolist()
        s.set_value("label", labels[ids[0]])
        s.set_value("class-id", ids[0])
        s.set_value("confidence", probabilities[0])
        s.set_value("energy", energy)
        s.set_value("ood", energy > self.threshold)
        s.set_value("ood-threshold", float(self.threshold))
        s.set_value("non-finite", False)
        s.set_value("top-k-labels", value_array([labels[i] for i in ids]))
        s.set_value("top-k-class-ids", value_array(ids))
        s.set_value("top-k-probabilities", value_array(probabilities))
        return s

    def do_transform_ip(self, buf):
        try:
            meta = GstVideo.buffer_get_video_meta(buf)
            offsets = list(meta.offset) if meta else None
            strides = list(meta.stride) if meta else None
            ok, mapping = buf.map(Gst.MapFlags.READ)
            if not ok:
                raise RuntimeError("cannot map the buffer")
            try:
                data = np.frombuffer(mapping.data, dtype=np.uint8)
                chw = self.converter(data, offsets, strides)
            finally:
                buf.unmap(mapping)
            result = self.classify(chw)
            roi = GstVideo.buffer_add_video_region_of_interest_meta(buf, "cff", 0, 0, self.converter.frame_w,
                                                                    self.converter.frame_h)
            roi.add_param(result)
            return Gst.FlowReturn.OK
        except Exception as e:  # the exception firewall: the streaming thread gets an error, not a traceback
            Gst.Element.message_full(self, Gst.MessageType.ERROR, Gst.stream_error_quark(), Gst.StreamError.FAILED,
                                     f"Classification failed: {e}", None, __file__, "transform_ip", 0)
            return Gst.FlowReturn.ERROR


GObject.type_register(PyCffClassify)
__gstelementfactory__ = ("pycffclassify", Gst.Rank.NONE, PyCffClassify)
