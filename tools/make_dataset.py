#!/usr/bin/env python3
"""Makes small labelled image folders (DIR/train/<class>/*.png, DIR/test/<class>/*.png) for trying
cff-train on data that is not Fashion-MNIST. Everything is drawn here with OpenCV (Debian's
python3-opencv); nothing is downloaded.

Families:
  glyphs   grey 28x28, 10 classes: the digits 0-9 drawn in OpenCV's Hershey fonts, thin to medium strokes,
           white on black, with size, position, slant and thickness jitter
  letters  grey 28x28, 10 classes: the letters A-J, same jitter, grey on a dark textured background
  shapes   RGB 32x32 (--size to change), 4 classes: filled circle, square, triangle, cross in a random
           colour on a random-coloured noisy background
  patches  RGB 32x32, one class per texture: crops of the pictures shipped in Debian's opencv-doc
  digits   grey 28x28, 10 classes: the 5000 handwritten digits of opencv-doc's digits.png (20x20, padded to
           28x28 as MNIST is); train and test take different images, --train + --test <= 5000

usage: make_dataset.py FAMILY OUT_DIR [--train N] [--test N] [--size WxH] [--seed S]
"""
import argparse
import glob
import os
import sys

import numpy as np

try:
    import cv2
except ImportError:  # pragma: no cover - setup.sh installs python3-opencv
    sys.exit("make_dataset.py: error: needs OpenCV for Python (apt-get install python3-opencv)")

FONTS = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX,
         cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_COMPLEX_SMALL]


def glyph(rng, text, h, w, fg, bg):
    """One character, drawn large and then warped (scale, slant, rotation, shift) into an h x w image."""
    big = 4 * max(h, w)
    canvas = np.zeros((big, big), np.float32)
    font = FONTS[rng.integers(len(FONTS))]
    thickness = int(rng.integers(2, 9))
    scale = cv2.getFontScaleFromHeight(font, big // 2, thickness)
    (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    cv2.putText(canvas, text, ((big - tw) // 2, (big + th) // 2), font, scale, 1.0, thickness, cv2.LINE_AA)
    ys, xs = np.nonzero(canvas > 0.1)
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    extent = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
    target = min(h, w) * rng.uniform(0.55, 0.85)
    s = target / extent
    angle = np.deg2rad(rng.uniform(-15, 15))
    shear = rng.uniform(-0.3, 0.3)
    a = s * np.array([[np.cos(angle), -np.sin(angle) + shear], [np.sin(angle), np.cos(angle)]])
    centre = np.array([w / 2 + rng.uniform(-0.12, 0.12) * w, h / 2 + rng.uniform(-0.12, 0.12) * h])
    m = np.hstack([a, (centre - a @ np.array([cx, cy]))[:, None]])
    mask = cv2.warpAffine(canvas, m, (w, h), flags=cv2.INTER_AREA)
    return bg * (1 - mask[..., None]) + fg * mask[..., None]


def make_glyphs(rng, classes, h, w, textured):
    def draw(label):
        if textured:
            bg = rng.uniform(0, 60) + cv2.GaussianBlur(rng.normal(0, 25, (h, w)).astype(np.float32), (0, 0), 1.5)
            fg = rng.uniform(150, 255)
            img = glyph(rng, classes[label], h, w, np.float32(fg), bg[..., None])
        else:
            img = glyph(rng, classes[label], h, w, np.float32(255), np.float32(0) * np.ones((h, w, 1), np.float32))
        return img[..., 0]
    return draw


def polygon(kind, rng, cx, cy, r):
    if kind == "triangle":
        a0 = rng.uniform(0, 2 * np.pi)
        return np.array([[cx + r * np.cos(a0 + k * 2 * np.pi / 3), cy + r * np.sin(a0 + k * 2 * np.pi / 3)] for k in range(3)])
    a0 = rng.uniform(0, np.pi / 2)
    return np.array([[cx + r * np.cos(a0 + k * np.pi / 2), cy + r * np.sin(a0 + k * np.pi / 2)] for k in range(4)])


def make_shapes(rng, h, w):
    kinds = ["circle", "cross", "square", "triangle"]

    def draw(label):
        bg = rng.uniform(0, 255, 3)
        img = (np.ones((h, w, 3), np.float32) * bg + rng.normal(0, 18, (h, w, 3))).astype(np.float32)
        # A foreground colour at least some distance from the background.
        while True:
            fg = rng.uniform(0, 255, 3)
            if np.abs(fg - bg).max() > 80:
                break
        r = min(h, w) * rng.uniform(0.2, 0.35)
        cx, cy = w / 2 + rng.uniform(-0.15, 0.15) * w, h / 2 + rng.uniform(-0.15, 0.15) * h
        scale = 16  # sub-pixel coordinates for cv2's fixed-point drawing
        kind = kinds[label]
        if kind == "circle":
            cv2.circle(img, (int(cx * scale), int(cy * scale)), int(r * scale), fg.tolist(), -1, cv2.LINE_AA, 4)
        elif kind == "cross":
            t = max(1, int(round(r * rng.uniform(0.35, 0.55))))
            a = rng.uniform(0, np.pi / 2)
            for ang in (a, a + np.pi / 2):
                d = np.array([np.cos(ang), np.sin(ang)]) * r
                p0, p1 = np.array([cx, cy]) - d, np.array([cx, cy]) + d
                cv2.line(img, tuple(int(v * scale) for v in p0), tuple(int(v * scale) for v in p1), fg.tolist(), t,
                         cv2.LINE_AA, 4)
        else:
            pts = (polygon(kind, rng, cx, cy, r * (1.25 if kind == "triangle" else 1.1)) * scale).astype(np.int32)
            cv2.fillPoly(img, [pts], fg.tolist(), cv2.LINE_AA, 4)
        return img
    return kinds, draw


def make_patches(rng, h, w):
    folder = "/usr/share/doc/opencv-doc/examples/data"
    names = ["baboon.jpg", "fruits.jpg", "building.jpg", "messi5.jpg", "board.jpg", "graf1.png", "starry_night.jpg",
             "orange.jpg"]
    sources = []
    for n in names:
        path = os.path.join(folder, n)
        img = cv2.imread(path, cv2.IMREAD_COLOR) if os.path.exists(path) else None
        if img is None:
            sys.exit(f"make_dataset.py: error: {path}: cannot read (install opencv-doc)")
        sources.append(img.astype(np.float32))
    classes = [os.path.splitext(n)[0] for n in names]

    def draw(label):
        src = sources[label]
        crop = int(min(src.shape[:2]) * rng.uniform(0.15, 0.3))
        y = rng.integers(0, src.shape[0] - crop)
        x = rng.integers(0, src.shape[1] - crop)
        return cv2.resize(src[y:y + crop, x:x + crop], (w, h), interpolation=cv2.INTER_AREA)[..., ::-1]
    return classes, draw


def make_digits(rng, h, w, total):
    path = "/usr/share/doc/opencv-doc/examples/data/digits.png"
    sheet = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if sheet is None:
        sys.exit(f"make_dataset.py: error: {path}: cannot read (install opencv-doc)")
    if total > 5000:
        sys.exit("make_dataset.py: error: digits has 5000 images: --train + --test must be at most 5000")
    # 50 rows x 100 columns of 20x20 cells; digit d fills rows 5d..5d+4.
    cells = [[] for _ in range(10)]
    for r in range(50):
        for c in range(100):
            cells[r // 5].append(sheet[20 * r:20 * r + 20, 20 * c:20 * c + 20])
    for d in range(10):
        rng.shuffle(cells[d])
    used = [0] * 10

    def draw(label):
        cell = cells[label][used[label]].astype(np.float32)
        used[label] += 1
        return cv2.resize(cv2.copyMakeBorder(cell, 4, 4, 4, 4, cv2.BORDER_CONSTANT, value=0), (w, h),
                          interpolation=cv2.INTER_AREA)
    return [str(d) for d in range(10)], draw


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("family", choices=["glyphs", "letters", "shapes", "patches", "digits"])
    p.add_argument("out")
    p.add_argument("--train", type=int, default=3600, help="training images (spread evenly over the classes)")
    p.add_argument("--test", type=int, default=400, help="test images")
    p.add_argument("--size", default=None, help="WxH (width x height, as in every cff tool) [28x28 for glyphs/letters, 32x32 otherwise]")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    grey = a.family in ("glyphs", "letters", "digits")
    size = a.size or ("28x28" if grey else "32x32")
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        sys.exit(f"make_dataset.py: error: --size: expected WxH, got '{size}'")
    rng = np.random.default_rng(a.seed)
    if a.family == "glyphs":
        classes = [str(d) for d in range(10)]
        draw = make_glyphs(rng, classes, h, w, textured=False)
    elif a.family == "letters":
        classes = list("ABCDEFGHIJ")
        draw = make_glyphs(rng, classes, h, w, textured=True)
    elif a.family == "shapes":
        classes, draw = make_shapes(rng, h, w)
    elif a.family == "digits":
        classes, draw = make_digits(rng, h, w, a.train + a.test)
    else:
        classes, draw = make_patches(rng, h, w)
    for split, count in (("train", a.train), ("test", a.test)):
        for c in classes:
            os.makedirs(os.path.join(a.out, split, c), exist_ok=True)
        for i in range(count):
            label = i % len(classes)
            img = np.clip(np.rint(draw(label)), 0, 255).astype(np.uint8)
            if img.ndim == 3:
                img = img[..., ::-1]  # RGB -> OpenCV's BGR
            cv2.imwrite(os.path.join(a.out, split, classes[label], f"{i:06d}.png"), img)
    print(f"{a.out}: {a.family}, {len(classes)} classes, {a.train} train + {a.test} test images of {h}x{w}"
          f"{'' if grey else ' RGB'}")


if __name__ == "__main__":
    main()
