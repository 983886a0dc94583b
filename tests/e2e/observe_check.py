#!/usr/bin/env python3
"""Checks for tests/e2e/observe_test.sh that need Python torch / TensorBoard.

  observe_check.py tensorboard LOG_DIR    the event file reads back with TensorBoard's own reader,
                                          every scalar tag at the steps metrics.jsonl says
  observe_check.py export MODEL STATE EX  a PyTorch module of that layout loads the exported
                                          state dict (strict) and gives the C++ logits on EX's input
  observe_check.py as-gpu CKPT OUT        copies checkpoint CKPT (payload .pt + manifest .json) to
                                          OUT as if written on GPUs: every tensor's storage tagged
                                          cuda:1, the manifest's size and checksum updated
"""
import glob
import json
import os
import sys


def check_tensorboard(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))
    assert len(files) == 1, files
    rows = [json.loads(l) for l in open(os.path.join(log_dir, "metrics.jsonl"))]
    train = [r for r in rows if r["kind"] == "train"]
    evals = [r for r in rows if r["kind"] == "eval"]
    ea = EventAccumulator(log_dir, size_guidance={"scalars": 0})
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    want = {"train_loss", "lr", "images_per_s", "total_test_loss", "total_test_accuracy"}
    assert tags == want, tags
    for tag, key in [("train_loss", "loss"), ("lr", "lr"), ("images_per_s", "images_per_s")]:
        got = ea.Scalars(tag)
        assert [e.step for e in got] == [r["step"] for r in train], (tag, [e.step for e in got])
        for e, r in zip(got, train):
            assert abs(e.value - r[key]) <= 1e-5 * max(1.0, abs(r[key])), (tag, e, r)
    for tag, key in [("total_test_loss", "test_loss"), ("total_test_accuracy", "test_accuracy")]:
        got = ea.Scalars(tag)
        assert [e.step for e in got] == [r["epoch"] for r in evals], (tag, [e.step for e in got])
        for e, r in zip(got, evals):
            assert abs(e.value - r[key]) <= 1e-5, (tag, e, r)
    print(f"tensorboard: {sorted(tags)}; train steps {[e.step for e in ea.Scalars('train_loss')]}, "
          f"eval steps {[e.step for e in ea.Scalars('total_test_accuracy')]}")


def make_module(name):
    import torch
    from torch import nn

    if name == "seed_cnn":
        class SeedCnn(nn.Module):
            def __init__(self):
                super().__init__()
                self.model1 = nn.Sequential(
                    nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(2),
                    nn.Conv2d(32, 32, 5, padding=2), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Linear(1024, 64), nn.Linear(64, 10))

            def forward(self, x):
                return self.model1(x)
        return SeedCnn()

    class ConvBn(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(cout)

        def forward(self, x):
            return torch.relu(self.bn(self.conv(x)))

    class ResNet9(nn.Module):
        def __init__(self):
            super().__init__()
            self.prep = ConvBn(3, 64)
            self.layer1 = nn.Sequential(ConvBn(64, 128), nn.MaxPool2d(2))
            self.res1 = nn.Sequential(ConvBn(128, 128), ConvBn(128, 128))
            self.layer2 = nn.Sequential(ConvBn(128, 256), nn.MaxPool2d(2))
            self.layer3 = nn.Sequential(ConvBn(256, 512), nn.MaxPool2d(2))
            self.res3 = nn.Sequential(ConvBn(512, 512), ConvBn(512, 512))
            self.fc = nn.Linear(512, 10, bias=False)

        def forward(self, x):
            x = self.layer1(self.prep(x))
            x = x + self.res1(x)
            x = self.layer3(self.layer2(x))
            x = x + self.res3(x)
            return self.fc(torch.amax(x, dim=(2, 3))) * 0.125

    assert name == "resnet9", name
    return ResNet9()


def check_export(name, state_path, example_path):
    import torch

    state = torch.load(state_path)  # weights_only (the default): plain tensors only
    assert isinstance(state, dict), type(state)
    module = make_module(name)
    module.load_state_dict(state, strict=True)
    module.eval()
    ex = torch.load(example_path)
    with torch.no_grad():
        logits = module(ex["input"])
    diff = (logits - ex["logits"]).abs().max().item()
    assert torch.allclose(logits, ex["logits"], atol=1e-4, rtol=1e-4), diff
    print(f"export {name}: {len(state)} tensors load strictly; logits match (max diff {diff:.2e})")


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def as_gpu_checkpoint(payload, out):
    """The TorchScript archive pickles each storage's location; a C++ save on cuda:1 writes
    'cuda:1' where a CPU save writes 'cpu' (one memoised string in data.pkl)."""
    import zipfile
    cpu, gpu = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:1"
    with zipfile.ZipFile(payload) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("/data.pkl"):
                assert data.count(cpu) == 1, data.count(cpu)
                data = data.replace(cpu, gpu)
            dst.writestr(info.filename, data)
    manifest = json.load(open(payload[:-3] + ".json"))
    body = open(out, "rb").read()
    manifest.update(payload=os.path.basename(out), payload_bytes=len(body), payload_fnv1a64="%x" % fnv1a64(body))
    json.dump(manifest, open(out[:-3] + ".json", "w"), indent=2)
    print(f"{out}: {payload} with its tensors tagged cuda:1")


if __name__ == "__main__":
    if sys.argv[1] == "tensorboard":
        check_tensorboard(sys.argv[2])
    elif sys.argv[1] == "export":
        check_export(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "as-gpu":
        as_gpu_checkpoint(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
