#!/usr/bin/env python3
"""Writes the torchvision test fixtures in test/fixtures/ (committed; the tests never run Python).

  /usr/bin/python3 scripts/make-torchvision-fixtures.py [--out test/fixtures]

Needs PyTorch and torchvision (Debian: apt-get install python3-torch python3-torchvision; note that a
pyenv or venv `python3` earlier on PATH may not see Debian's packages, hence /usr/bin/python3).

Files:
  tiny-densenet.safetensors     state dict of a small torchvision.models.DenseNet (same stem, dense
                                layers with bottleneck, transitions and head as densenet121, with a
                                small growth rate and few layers), num_batches_tracked included (I64)
  tiny-densenet-io.safetensors  input_nchw [N,3,H,W], input_nhwc [N,H,W,3], logits [N,classes] (eval mode)
  tiny-densenet.json            the configuration, for the test to build the same model
  dtypes.safetensors            the same values stored as F32/F64/F16/BF16/I64 and, as F32, what
                                PyTorch reads back from each, to check our decoders against torch

BN affine parameters and running statistics are randomised, so an error in the BN mapping (or a
swapped mean/var) changes the logits; the input size is not a multiple of 32 (odd sizes after the
second transition), so padding and pooling-floor differences show too.
"""
import argparse
import json
import os
import struct

import torch
import torchvision
from torchvision.models import DenseNet

CONFIG = {
    "growth_rate": 8,
    "block_config": [2, 3, 2, 2],
    "num_init_features": 16,
    "bn_size": 4,
    "drop_rate": 0.0,
    "num_classes": 10,
    "batch": 2,
    "input_hwc": [64, 48, 3],
    "bn_eps": 1e-5,
    "seed": 20240601,
}

DTYPE_NAMES = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
}


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: take the raw 16-bit words
        t = t.view(torch.int16)
    data = t.numpy().tobytes()
    if struct.pack("=H", 1) != struct.pack("<H", 1):
        raise SystemExit("this writer assumes a little-endian machine")
    return data


def save_safetensors(tensors, path, metadata=None):
    """The safetensors format, written by hand (the safetensors module is not a Debian package):
    u64 little-endian header length, JSON header padded with spaces to 8 bytes, then the data."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    blobs, offset = [], 0
    for name, t in tensors.items():
        blob = tensor_bytes(t)
        header[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def randomise_batchnorm(model, gen):
    """Non-trivial BN: affine params and running stats away from 1/0, so a mapping error shows."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
            m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))


def make_densenet(out_dir):
    torch.manual_seed(CONFIG["seed"])
    gen = torch.Generator().manual_seed(CONFIG["seed"])
    model = DenseNet(
        growth_rate=CONFIG["growth_rate"],
        block_config=tuple(CONFIG["block_config"]),
        num_init_features=CONFIG["num_init_features"],
        bn_size=CONFIG["bn_size"],
        drop_rate=CONFIG["drop_rate"],
        num_classes=CONFIG["num_classes"],
    )
    randomise_batchnorm(model, gen)
    with torch.no_grad():  # torchvision zero-inits the classifier bias; make it count
        model.classifier.bias.copy_(torch.randn(CONFIG["num_classes"], generator=gen) * 0.1)
    model.eval()

    h, w, c = CONFIG["input_hwc"]
    x = torch.randn(CONFIG["batch"], c, h, w, generator=gen)
    with torch.no_grad():
        logits = model(x)

    state = model.state_dict()
    meta = {"format": "pt", "source": "scripts/make-torchvision-fixtures.py"}
    save_safetensors(dict(state), os.path.join(out_dir, "tiny-densenet.safetensors"), meta)
    save_safetensors(
        {"input_nchw": x, "input_nhwc": x.permute(0, 2, 3, 1).contiguous(), "logits": logits},
        os.path.join(out_dir, "tiny-densenet-io.safetensors"),
        meta,
    )
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    config = dict(CONFIG)
    config.update({
        "trainable_params": params,
        "state_dict_tensors": len(state),
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "logits_max_abs": float(logits.abs().max()),
        "files": {"weights": "tiny-densenet.safetensors", "io": "tiny-densenet-io.safetensors"},
    })
    with open(os.path.join(out_dir, "tiny-densenet.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    return params, logits


def make_dtypes(out_dir):
    """Values with exact and inexact conversions, subnormals, signed zero and infinities."""
    values = torch.tensor(
        [0.0, -0.0, 1.0, -2.5, 0.1, 3.14159265, 65504.0, 1e-7, 6e-8, -1e-3, 1e5, float("inf"), float("-inf"), 1234.5678],
        dtype=torch.float64,
    )
    tensors = {}
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        name = DTYPE_NAMES[dtype].lower()
        stored = values.to(dtype).reshape(2, 7)
        tensors[name] = stored
        tensors[name + "_as_f32"] = stored.to(torch.float32)
    ints = torch.tensor([[0, 1, -1, 7], [123456, -654321, 2**24, -(2**24)]], dtype=torch.int64)
    tensors["i64"] = ints
    tensors["i64_as_f32"] = ints.to(torch.float32)
    save_safetensors(tensors, os.path.join(out_dir, "dtypes.safetensors"), {"format": "pt"})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "test", "fixtures"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    params, logits = make_densenet(args.out)
    make_dtypes(args.out)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    print(f"tiny DenseNet: {params} trainable parameters, logits max |x| {logits.abs().max():.4f}")
    for name in sorted(os.listdir(args.out)):
        print(f"  {name}: {os.path.getsize(os.path.join(args.out, name))} bytes")


if __name__ == "__main__":
    main()
