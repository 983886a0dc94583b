#!/usr/bin/env python3
"""The Python peer of ddptrain for tests/bench/peer_compare.py: the same models (seed_cnn,
resnet9), the same kind of synthetic data (uint8 images held in memory, gathered per batch,
converted to float and normalised each step), the same SGD (lr 0.01, momentum 0.9), under
torch.nn.parallel.DistributedDataParallel with the gloo backend.

Launch it under mpirun (it reads OMPI_COMM_WORLD_RANK/SIZE; no MPI inside) or alone. Prints one
line: `peer images_per_s <global img/s over the timed steps>` from rank 0. Only steady-state
steps are timed: `--warmup` steps first, then a barrier, `--steps` timed steps, a barrier.
The caller sets the allocator like ddptrain's mallopt (MALLOC_MMAP_MAX_=0,
MALLOC_TRIM_THRESHOLD_=1073741824) for a fair comparison.
"""
import argparse
import os
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


class SeedCnn(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.model1 = nn.Sequential(
            nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 5, padding=2), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 4 * 4, 64), nn.Linear(64, classes))

    def forward(self, x):
        return self.model1(x)


def conv_bn(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class ResNet9(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.prep = conv_bn(3, 64)
        self.layer1 = nn.Sequential(conv_bn(64, 128), nn.MaxPool2d(2))
        self.res1 = nn.Sequential(conv_bn(128, 128), conv_bn(128, 128))
        self.layer2 = nn.Sequential(conv_bn(128, 256), nn.MaxPool2d(2))
        self.layer3 = nn.Sequential(conv_bn(256, 512), nn.MaxPool2d(2))
        self.res3 = nn.Sequential(conv_bn(512, 512), conv_bn(512, 512))
        self.fc = nn.Linear(512, classes, bias=False)

    def forward(self, x):
        x = self.prep(x)
        x = self.layer1(x)
        x = x + self.res1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = x + self.res3(x)
        x = torch.amax(x, dim=(2, 3))
        return self.fc(x) * 0.125


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="seed_cnn", choices=["seed_cnn", "resnet9"])
    ap.add_argument("--batch", type=int, default=64, help="per rank")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--images", type=int, default=4096, help="synthetic images per rank")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--port", default="29517")
    a = ap.parse_args()

    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
    world = int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", a.port)
    torch.set_num_threads(a.threads)
    dist.init_process_group("gloo", rank=rank, world_size=world)

    torch.manual_seed(0)
    model = SeedCnn() if a.model == "seed_cnn" else ResNet9()
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    ddp = nn.parallel.DistributedDataParallel(model)  # Broadcasts rank 0's parameters.
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)

    g = torch.Generator().manual_seed(1 + rank)
    images = torch.randint(0, 256, (a.images, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (a.images,), generator=g)
    mean = torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1)
    std = torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1)
    order = torch.randperm(a.images, generator=g)

    def step(i):
        lo = (i * a.batch) % (a.images - a.batch + 1)
        idx = order[lo:lo + a.batch]
        x = ((images.index_select(0, idx).float() / 255.0 - mean) / std).contiguous(memory_format=fmt)
        y = labels.index_select(0, idx)
        opt.zero_grad()
        loss = F.cross_entropy(ddp(x), y)
        loss.backward()
        opt.step()
        return loss

    for i in range(a.warmup):
        step(i)
    dist.barrier()
    t0 = time.perf_counter()
    for i in range(a.steps):
        step(a.warmup + i)
    dist.barrier()
    secs = time.perf_counter() - t0
    if rank == 0:
        print(f"peer images_per_s {a.steps * a.batch * world / secs:.1f}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
