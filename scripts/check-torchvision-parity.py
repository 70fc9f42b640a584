#!/usr/bin/env python3
"""Checks the zoo's ImageNet DenseNets against torchvision: same weights, same input -> same logits.

  npm run build
  /usr/bin/python3 scripts/check-torchvision-parity.py [densenet121 densenet161 ...] [--size 224] [--batch 2]
      [--backend wasm|cpu|tensorflow] [--tolerance 1e-4]

Needs PyTorch and torchvision (Debian: apt-get install python3-torch python3-torchvision; a pyenv or
venv `python3` earlier on PATH may not see them, hence /usr/bin/python3) and node. Nothing is
downloaded: each model gets torchvision's own random initialisation, then non-trivial BN parameters
(random affine, running statistics calibrated on random images in training mode, so activations
keep a realistic scale), and the classifier is rescaled so the logits are of order 1. The state dict
goes to a .safetensors file (torchvision keys, num_batches_tracked included), which the zoo loads
with loadTorchvisionSafetensors into zoo.create(name); both run the same NCHW/NHWC input.
Prints one line per model and exits non-zero when any max |difference| exceeds the tolerance.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import torch
import torchvision

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MODELS = ["densenet121", "densenet161", "densenet169", "densenet201"]

# Runs in node: build the zoo model, load the safetensors, predict, print JSON.
NODE_CHECK = r"""
const [repo, name, weights, inputFile, backendName] = process.argv.slice(2);
const path = require('path');
const d = (p) => require(path.join(repo, 'dist', p));
const tf = d('src/tf');
const { init } = d('src/backend');
const zoo = d('zoo');
const { readSafetensors } = d('src/weights/safetensors');
const { loadTorchvisionSafetensors } = d('src/weights/torchvision');
(async () => {
  const chosen = await init(backendName || undefined, { log: null });
  const io = await readSafetensors(inputFile);
  const shape = io.shape('input_nhwc');
  const model = zoo.create(name, { inputShape: shape.slice(1) });
  const report = await loadTorchvisionSafetensors(model, weights);
  const x = tf.tensor(io.read('input_nhwc'), shape);
  const t0 = Date.now();
  const y = model.predict(x);
  const got = await y.data();
  const ms = Date.now() - t0;
  const want = io.read('logits');
  let diff = 0;
  for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(got[i] - want[i]));
  console.log(JSON.stringify({ backend: chosen.name, maxAbsDiff: diff, loaded: report.loaded.length, ignored: report.ignored.length, forwardMs: ms }));
})().catch((e) => { console.error(e.message); process.exit(1); });
"""

DTYPE_NAMES = {torch.float32: "F32", torch.int64: "I64"}


def save_safetensors(tensors, path):
    """The safetensors format by hand (the safetensors module is not a Debian package)."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        blob = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def make_model(name, size, gen):
    model = getattr(torchvision.models, name)(weights=None)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.weight.copy_(torch.rand(m.num_features, generator=gen) * 0.5 + 0.75)
            m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
        model.train()
        for _ in range(2):
            model(torch.randn(4, 3, size, size, generator=gen))
        model.eval()
        # Logits of order 1: rescale the head by the spread of the calibration logits.
        probe = model(torch.randn(2, 3, size, size, generator=gen))
        scale = float(probe.std()) or 1.0
        model.classifier.weight.div_(scale)
        model.classifier.bias.copy_(torch.randn(model.classifier.out_features, generator=gen) * 0.1)
    return model


def check(name, args, workdir, gen):
    model = make_model(name, args.size, gen)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=gen)
    with torch.no_grad():
        logits = model(x)
    weights = os.path.join(workdir, f"{name}.safetensors")
    io_file = os.path.join(workdir, f"{name}-io.safetensors")
    save_safetensors(dict(model.state_dict()), weights)
    save_safetensors({"input_nhwc": x.permute(0, 2, 3, 1).contiguous(), "logits": logits}, io_file)
    script = os.path.join(workdir, "check.js")
    with open(script, "w") as f:
        f.write(NODE_CHECK)
    t0 = time.time()
    out = subprocess.run(
        ["node", script, REPO, name, weights, io_file, args.backend or ""],
        capture_output=True, text=True,
    )
    if out.returncode != 0:
        print(f"{name}: FAILED in node: {out.stderr.strip()}")
        return False
    result = json.loads(out.stdout.strip().splitlines()[-1])
    ok = result["maxAbsDiff"] <= args.tolerance
    print(
        f"{name}: max |zoo - torchvision| = {result['maxAbsDiff']:.3g} (logits max |x| {float(logits.abs().max()):.3g}), "
        f"{result['loaded']} tensors loaded, {result['ignored']} ignored, backend {result['backend']}, "
        f"forward {result['forwardMs']} ms, node total {time.time() - t0:.1f} s -> {'ok' if ok else 'MISMATCH'}"
    )
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=MODELS)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--backend", default=None, help="densenet-zoo backend name (default: the best installed)")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not os.path.exists(os.path.join(REPO, "dist", "zoo", "index.js")):
        sys.exit("build the package first: npm run build")
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, input {args.batch}x3x{args.size}x{args.size}")
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory(prefix="densenet-parity-") as workdir:
        results = [check(name, args, workdir, gen) for name in args.models]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
