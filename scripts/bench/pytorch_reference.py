#!/usr/bin/python3
"""PyTorch yardstick for `bench/side-by-side`: one model, one batch, one mode, one process.

Times training steps (forward, backward, SGD Nesterov update) and inference of the same
architecture as the zoo's, built from torchvision's own DenseNet pieces (its dense block
honours memory_efficient=True), and reports the process's peak resident memory.
Prints one JSON object. Debian's python3-torch / python3-torchvision; never used at run time.
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import densenet as tvd


class CifarDenseNet(nn.Module):
    """The paper's CIFAR DenseNet(-BC): 3x3 stem, three blocks, torchvision's blocks and transitions."""

    def __init__(self, growth_rate, block_layers, stem, bottleneck, compression, num_classes, memory_efficient):
        super().__init__()
        features = [nn.Conv2d(3, stem, 3, padding=1, bias=False)]
        channels = stem
        for i, layers in enumerate(block_layers):
            # torchvision's dense layer always has the 1x1 bottleneck; bn_size=4 is DenseNet-B.
            assert bottleneck, "the PyTorch yardstick covers bottleneck (BC) models"
            features.append(tvd._DenseBlock(layers, channels, 4, growth_rate, 0.0, memory_efficient))
            channels += layers * growth_rate
            if i + 1 < len(block_layers):
                out = int(channels * compression)
                features.append(tvd._Transition(channels, out))
                channels = out
        features += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*features)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)


def build(name, memory_efficient):
    if name.startswith("densenet-bc-"):
        depth, k = name[len("densenet-bc-"):].split("-k")
        per_block = (int(depth) - 4) // 6
        return CifarDenseNet(int(k), [per_block] * 3, 2 * int(k), True, 0.5, 10, memory_efficient), 10
    if name in ("densenet121", "densenet161", "densenet169", "densenet201"):
        return getattr(tvd, name)(memory_efficient=memory_efficient), 1000
    raise SystemExit(f"pytorch_reference: no PyTorch counterpart for '{name}'")


def peak_rss_bytes():
    # VmHWM, not getrusage: ru_maxrss carries over from the parent through fork and exec.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--input", default="32x32x3")
    p.add_argument("--mode", choices=["naive", "efficient"], required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    h, w, c = (int(v) for v in args.input.split("x"))
    model, classes = build(args.model, args.mode == "efficient")
    x = torch.randn(args.batch, c, h, w)
    y = torch.randint(0, classes, (args.batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    model.train()
    step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    train_ms = (time.perf_counter() - start) * 1000 / args.steps
    model.eval()
    with torch.no_grad():
        model(x)
        start = time.perf_counter()
        for _ in range(args.steps):
            model(x)
        infer_ms = (time.perf_counter() - start) * 1000 / args.steps
    print(json.dumps({
        "framework": f"pytorch {torch.__version__}", "model": args.model, "batch": args.batch, "mode": args.mode,
        "threads": args.threads, "msPerStep": train_ms, "trainImagesPerSec": 1000 * args.batch / train_ms,
        "inferenceImagesPerSec": 1000 * args.batch / infer_ms,
        "maxRssBytes": peak_rss_bytes(),
    }))


if __name__ == "__main__":
    main()
