"""Writes a class-folder split as raw float32 rows (C*H*W pixels in [-1, 1], then the label) for diag.cpp.
Usage: dump.py SPLIT_DIR OUT.f32 N (N images, shuffled with seed 0)."""
import sys, glob, os, numpy as np, cv2
d, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
classes = sorted(os.listdir(d)); rows = []
files = [(f, i) for i, c in enumerate(classes) for f in sorted(glob.glob(os.path.join(d, c, '*')))]
rng = np.random.default_rng(0); rng.shuffle(files)
for f, i in files[:n]:
    im = cv2.imread(f, cv2.IMREAD_UNCHANGED).astype(np.float32) / 127.5 - 1
    if im.ndim == 3: im = im[..., ::-1].transpose(2, 0, 1)
    rows.append(np.concatenate([im.reshape(-1), [i]]).astype(np.float32))
np.stack(rows).tofile(out)
