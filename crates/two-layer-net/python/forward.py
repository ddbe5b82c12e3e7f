#!/usr/bin/env python3
"""A model saved by `cargo xtask train`, run in NumPy on the real test set.

    python3 forward.py RUN_DIR [--predictions FILE]

(RUN_DIR may also be the model file in it.)
RUN_DIR is what `train --out` wrote. The script reads RUN_DIR/model.safetensors
with the safetensors package (W1 [784, hidden], b1 [hidden], W2 [hidden, 10],
b2 [10], in float32 or float64 as trained) and RUN_DIR/summary.json, which
names the test set's IDX files (raw or gzip) and their SHA-256. It checks the
digests, runs y = relu(x W1 + b1) W2 + b2 on x = pixels / 255 in the model's
precision, as the book's TwoLayerNet.predict does, and prints the accuracy in
the form `eval` prints it. With --predictions it also writes the predicted
class of every test image, one per line.

Needs numpy and safetensors (pip install numpy safetensors); nothing from
this project.
"""

import argparse
import gzip
import hashlib
import json
import os
import sys

try:
    import numpy as np
    from safetensors.numpy import load_file
except ImportError as e:
    sys.exit(
        f"forward.py needs numpy and safetensors ({e}); for example:\n"
        "  python3 -m venv /tmp/dlfs-venv && /tmp/dlfs-venv/bin/pip install numpy safetensors\n"
        "  /tmp/dlfs-venv/bin/python forward.py RUN_DIR"
    )


def read_idx(path):
    """The contents of an IDX file (raw or gzip), SHA-256 of the raw bytes."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data, hashlib.sha256(data).hexdigest()


def parse_idx(data, name):
    magic = int.from_bytes(data[0:4], "big")
    dims = data[3]
    if magic >> 8 != 0x08 or dims not in (1, 3):
        sys.exit(f"{name}: not an unsigned-byte IDX file (magic {magic:#x})")
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        sys.exit(f"{name}: {body.size} bytes of data for shape {shape}")
    return body.reshape(shape)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", help="a directory written by `cargo xtask train`")
    ap.add_argument("--predictions", help="write the predicted class of each test image here")
    args = ap.parse_args()

    if os.path.isfile(args.run_dir):  # the model file itself, as eval accepts
        model_path = args.run_dir
        run_dir = os.path.dirname(model_path) or "."
    else:
        run_dir = args.run_dir
        model_path = os.path.join(run_dir, "model.safetensors")
    summary_path = os.path.join(run_dir, "summary.json")
    for path in (model_path, summary_path):
        if not os.path.isfile(path):
            sys.exit(f"{path}: not found; give a directory written by `cargo xtask train`")

    try:
        tensors = load_file(model_path)
    except Exception as e:  # safetensors raises its own error types
        sys.exit(f"{model_path}: not a valid safetensors model file: {e}")
    missing = [k for k in ("W1", "b1", "W2", "b2") if k not in tensors]
    if missing:
        sys.exit(f"{model_path}: no tensor named {missing[0]} (a model holds W1, b1, W2, b2)")
    w1, b1, w2, b2 = (tensors[k] for k in ("W1", "b1", "W2", "b2"))
    dtype = w1.dtype
    if w1.ndim != 2 or w1.shape[0] != 784:
        sys.exit(f"{model_path}: W1 has shape {list(w1.shape)}, expected [784, hidden]")
    hidden = w1.shape[1]
    expected = {"b1": [hidden], "W2": [hidden, 10], "b2": [10]}
    for name, t in (("b1", b1), ("W2", w2), ("b2", b2)):
        if list(t.shape) != expected[name]:
            sys.exit(f"{model_path}: {name} has shape {list(t.shape)}, expected {expected[name]}")
        if t.dtype != dtype:
            sys.exit(f"{model_path}: {name} is {t.dtype}, W1 is {dtype}: the dtypes are mixed")
    if dtype not in (np.float32, np.float64):
        sys.exit(f"{model_path}: the tensors are {dtype}, expected float32 or float64")

    with open(summary_path) as f:
        summary = json.load(f)

    files = {f["name"]: f for f in summary["data"]["files"]}
    arrays = {}
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        entry = files[name]
        # Absolute since this script exists; older runs wrote paths relative
        # to where train ran, so a relative one is tried from here.
        path = entry["path"]
        if not os.path.isfile(path):
            sys.exit(f"{path}: not found (summary.json names it as the {name} file)")
        data, digest = read_idx(path)
        if digest != entry["sha256"]:
            sys.exit(f"{path}: SHA-256 {digest}, summary.json says {entry['sha256']}")
        arrays[name] = parse_idx(data, path)
    images = arrays["t10k-images-idx3-ubyte"]
    labels = arrays["t10k-labels-idx1-ubyte"].astype(np.int64)
    if len(images) != len(labels):
        sys.exit(f"{len(images)} test images but {len(labels)} labels")

    x = images.reshape(len(images), -1).astype(dtype) / dtype.type(255)
    hidden = np.maximum(x @ w1 + b1, dtype.type(0))
    logits = hidden @ w2 + b2
    predicted = logits.argmax(axis=1)
    correct = int((predicted == labels).sum())
    title = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}.get(summary["dataset"], summary["dataset"])
    print(
        f"{title} test accuracy {correct / len(labels):.4f} ({correct} of {len(labels)} images), "
        f"numpy {np.__version__}, {dtype}, {w1.shape[0]}-{w1.shape[1]}-{w2.shape[1]}"
    )
    if args.predictions:
        with open(args.predictions, "w") as f:
            f.write("".join(f"{p}\n" for p in predicted))


if __name__ == "__main__":
    main()
