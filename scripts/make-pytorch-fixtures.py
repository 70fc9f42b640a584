#!/usr/bin/env python3
"""Writes the torch.save test fixtures in test/fixtures/pytorch/ (committed; the tests never run Python).

  /usr/bin/python3 scripts/make-pytorch-fixtures.py [--out test/fixtures/pytorch]

Needs PyTorch and torchvision (Debian: apt-get install python3-torch python3-torchvision).

Files (the tiny torchvision DenseNet is the one of make-torchvision-fixtures.py, same seed, same
weights, so tiny-densenet-io.safetensors holds its input and logits):
  state-dict.pth           torch.save(model.state_dict())
  checkpoint.pth           a training checkpoint: {'epoch', 'arch', 'best_acc1', 'state_dict', 'optimizer'}
  dataparallel.pth         the state dict of nn.DataParallel(model): every key prefixed 'module.'
  cifar-bc.pth             a CIFAR DenseNet-BC (depth 16, k 6) with a BatchNorm-ReLU after its stem conv and
                           key names of its own (conv0, bn0, dense<b>.unit<l>.bn_a/conv_a/bn_b/conv_b,
                           trans<t>.bn/conv, bn_final, fc), saved under 'model' with an epoch number
  cifar-bc-io.safetensors  its input (NCHW and NHWC) and logits in eval mode
  tensors.pth              float64, float16, bfloat16 and int64 tensors, a transposed (non-contiguous)
                           view and a slice at a storage offset, each beside its float32 contiguous copy
  evil.pth                 a pickle whose object calls os.system when unpickled (never unpickle it in
                           Python): the reader must refuse it
"""
import argparse
import importlib.util
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("tvfix", os.path.join(HERE, "make-torchvision-fixtures.py"))
tvfix = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tvfix)

CIFAR = {"depth": 16, "growth_rate": 6, "num_classes": 10, "batch": 2, "input_hwc": [32, 32, 3], "seed": 7}


class Unit(nn.Module):
    def __init__(self, channels, k):
        super().__init__()
        self.bn_a = nn.BatchNorm2d(channels)
        self.conv_a = nn.Conv2d(channels, 4 * k, 1, bias=False)
        self.bn_b = nn.BatchNorm2d(4 * k)
        self.conv_b = nn.Conv2d(4 * k, k, 3, padding=1, bias=False)

    def forward(self, x):
        y = self.conv_a(F.relu(self.bn_a(x)))
        y = self.conv_b(F.relu(self.bn_b(y)))
        return torch.cat([x, y], 1)  # previous maps first, as torchvision and the zoo concatenate


class Transition(nn.Module):
    def __init__(self, channels, out):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, out, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class CifarDenseNetBC(nn.Module):
    """DenseNet-BC for 32x32 images with a BN-ReLU after the stem, as many public CIFAR repositories write it."""

    def __init__(self, depth, k, num_classes):
        super().__init__()
        n = (depth - 4) // 6
        channels = 2 * k
        self.conv0 = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(channels)
        for b in range(1, 4):
            units = nn.Module()
            for l in range(1, n + 1):
                units.add_module(f"unit{l}", Unit(channels, k))
                channels += k
            setattr(self, f"dense{b}", units)
            if b < 3:
                setattr(self, f"trans{b}", Transition(channels, channels // 2))
                channels //= 2
        self.bn_final = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = F.relu(self.bn0(self.conv0(x)))
        for b in range(1, 4):
            for unit in getattr(self, f"dense{b}").children():
                x = unit(x)
            if b < 3:
                x = getattr(self, f"trans{b}")(x)
        x = F.adaptive_avg_pool2d(F.relu(self.bn_final(x)), 1).flatten(1)
        return self.fc(x)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this pickle ran code",))


def tiny_torchvision_densenet():
    """The same model, seed and randomised BatchNorm as make-torchvision-fixtures.py's."""
    c = tvfix.CONFIG
    torch.manual_seed(c["seed"])
    gen = torch.Generator().manual_seed(c["seed"])
    model = tvfix.DenseNet(growth_rate=c["growth_rate"], block_config=tuple(c["block_config"]),
                           num_init_features=c["num_init_features"], bn_size=c["bn_size"], drop_rate=c["drop_rate"],
                           num_classes=c["num_classes"])
    tvfix.randomise_batchnorm(model, gen)
    with torch.no_grad():
        model.classifier.bias.copy_(torch.randn(c["num_classes"], generator=gen) * 0.1)
    return model.eval()


def cifar_bc(out):
    torch.manual_seed(CIFAR["seed"])
    gen = torch.Generator().manual_seed(CIFAR["seed"])
    model = CifarDenseNetBC(CIFAR["depth"], CIFAR["growth_rate"], CIFAR["num_classes"])
    tvfix.randomise_batchnorm(model, gen)
    model.eval()
    h, w, c = CIFAR["input_hwc"]
    x = torch.randn(CIFAR["batch"], c, h, w, generator=gen)
    with torch.no_grad():
        logits = model(x)
    torch.save({"epoch": 300, "model": model.state_dict()}, os.path.join(out, "cifar-bc.pth"))
    tvfix.save_safetensors({"input_nchw": x, "input_nhwc": x.permute(0, 2, 3, 1).contiguous(), "logits": logits},
                           os.path.join(out, "cifar-bc-io.safetensors"), {"format": "pt"})
    return sum(p.numel() for p in model.parameters())


def tensors(out):
    gen = torch.Generator().manual_seed(3)
    base = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    items = {
        "f64": base, "f16": base.to(torch.float16), "bf16": base.to(torch.bfloat16),
        "i64": torch.tensor([[1, -2, 3], [2**40, 5, -6]], dtype=torch.int64),
        "transposed": base.to(torch.float32).t(), "offset_slice": base.to(torch.float32)[1:, 2:],
    }
    saved = dict(items)
    for name, t in items.items():
        saved[name + "_as_f32"] = t.to(torch.float32).contiguous().clone()
    torch.save(saved, os.path.join(out, "tensors.pth"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(HERE, "..", "test", "fixtures", "pytorch"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    model = tiny_torchvision_densenet()
    state = model.state_dict()
    torch.save(state, os.path.join(args.out, "state-dict.pth"))
    torch.save({"epoch": 7, "arch": "densenet", "best_acc1": 71.5, "state_dict": state,
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0, 1]}]}},
               os.path.join(args.out, "checkpoint.pth"))
    torch.save(nn.DataParallel(model).state_dict(), os.path.join(args.out, "dataparallel.pth"))
    params = cifar_bc(args.out)
    tensors(args.out)
    torch.save({"state_dict": RunsCode()}, os.path.join(args.out, "evil.pth"))
    print(f"torch {torch.__version__}; CIFAR DenseNet-BC: {params} parameters")
    for name in sorted(os.listdir(args.out)):
        print(f"  {name}: {os.path.getsize(os.path.join(args.out, name))} bytes")


if __name__ == "__main__":
    main()
