"""The airbench94 recipe in plain PyTorch, sharing no training code with vggnet: a cross-check.

    python benchmarks/airbench_reference.py --data ../shared/data/cifar10-train-jpg.tar.gz \\
        [--epochs 10] [--seed 0] [--train-images 0]

``cifar-fast`` is vggnet's reading of airbench94 (Jordan, 2024), built from the project's own
parts (recipe fields, the train loop, ``vgg_fast``). This file writes the same recipe a second
time, the way the public description lays it out: one network, one loop, nothing from
``vggnet.models``, ``vggnet.train`` or ``vggnet.evaluate``. Only the images come from vggnet
(``load_data``), so both see the same seeded 45,000 / 5,000 split of the same JPEG files. If the
two disagree by more than seed noise, one of them has a bug; if they agree, the score is what
the recipe gets from this data. Prints one JSON line: top-1 with and without TTA, wall seconds,
the per-epoch curve.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from vggnet.data.datasets import load_data

BATCH, MOMENTUM, LR_PER_1024, WD_PER_1024, BIAS_SCALE = 1024, 0.85, 11.5, 0.0153, 64.0
SMOOTHING, WHITEN_BIAS_EPOCHS, BN_MOMENTUM, LOGIT_SCALE = 0.2, 3, 0.4, 1 / 9


class Block(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        convs = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.Conv2d(cout, cout, 3, padding=1, bias=False)]
        for conv in convs:
            with torch.no_grad():
                conv.weight[:conv.in_channels].copy_(nn.init.dirac_(torch.empty_like(conv.weight[:conv.in_channels])))
        norms = [nn.BatchNorm2d(cout, momentum=BN_MOMENTUM, eps=1e-12) for _ in range(2)]
        for bn in norms:
            bn.weight.requires_grad_(False)
        super().__init__(convs[0], nn.MaxPool2d(2), norms[0], nn.GELU(), convs[1], norms[1], nn.GELU())


def make_net(whiten_images: torch.Tensor) -> nn.Sequential:
    """Whitening 2x2 conv (filters from the patches' second moment, and their negatives), three blocks."""
    patches = whiten_images.unfold(2, 2, 1).unfold(3, 2, 1).transpose(1, 3).reshape(-1, 3, 2, 2).float()
    flat = patches.reshape(len(patches), -1)
    eigval, eigvec = torch.linalg.eigh(flat.T @ flat / len(flat))
    filters = eigvec.T.reshape(-1, 3, 2, 2) / torch.sqrt(eigval.view(-1, 1, 1, 1) + 5e-4)
    whiten = nn.Conv2d(3, 24, 2, bias=True)
    with torch.no_grad():
        whiten.weight.copy_(torch.cat([filters, -filters]))
        whiten.bias.zero_()
    whiten.weight.requires_grad_(False)
    head = nn.Linear(256, 10, bias=False)
    return nn.Sequential(whiten, nn.GELU(), Block(24, 64), Block(64, 256), Block(256, 256), nn.MaxPool2d(3),
                         nn.Flatten(), head)


def forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return net(x) * LOGIT_SCALE


def translate(x: torch.Tensor, pad: int, g: torch.Generator) -> torch.Tensor:
    """Per-image random crop of the reflect-padded batch (shifts of up to ``pad`` pixels)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad,) * 4, mode="reflect")
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n), generator=g)
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


@torch.no_grad()
def predict(net: nn.Module, x: torch.Tensor, tta: bool) -> torch.Tensor:
    net.eval()
    out = []
    for xb in x.split(1000):
        mirror = 0.5 * forward(net, xb) + 0.5 * forward(net, xb.flip(-1))
        if tta:
            padded = F.pad(xb, (1,) * 4, mode="reflect")
            shifted = [padded[..., :32, :32], padded[..., 2:, 2:]]
            moved = sum(0.5 * forward(net, v) + 0.5 * forward(net, v.flip(-1)) for v in shifted) / 2
            mirror = 0.5 * mirror + 0.5 * moved
        out.append(mirror if tta else forward(net, xb))
    net.train()
    return torch.cat(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-images", type=int, default=0, help="0: all; else the first N (a smoke test)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    splits = load_data(args.data, val_fraction=0.1, seed=args.seed, progress=False)
    xs, ys = splits.train.images, splits.train.labels
    if args.train_images:
        xs, ys = xs[:args.train_images], ys[:args.train_images]
    xf = xs.float() / 255
    mean, std = xf.mean((0, 2, 3), keepdim=True), xf.std((0, 2, 3), keepdim=True)
    train_x = ((xf - mean) / std).contiguous(memory_format=torch.channels_last)
    val_x = ((splits.val.images.float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    net = make_net(train_x[:5000]).to(memory_format=torch.channels_last)

    kilostep = BATCH * (1 + 1 / (1 - MOMENTUM))
    lr, wd = LR_PER_1024 / kilostep, WD_PER_1024 * BATCH / kilostep  # for a summed loss
    norm = [p for m in net.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters() if p.requires_grad]
    other = [p for p in net.parameters() if p.requires_grad and all(p is not q for q in norm)]
    opt = torch.optim.SGD([{"params": norm, "lr": lr * BIAS_SCALE, "weight_decay": wd / (lr * BIAS_SCALE)},
                           {"params": other, "lr": lr, "weight_decay": wd / lr}], momentum=MOMENTUM, nesterov=True)
    steps_per_epoch = len(train_x) // BATCH
    total = args.epochs * steps_per_epoch
    warm = int(0.23 * total)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.2 + 0.8 * s / warm if s < warm
                                              else 1 - 0.93 * (s - warm) / (total - warm))
    average = {k: v.clone() for k, v in net.state_dict().items()}
    alpha = 0.95**5 * (torch.arange(total + 1) / total) ** 3

    flipped = torch.where(torch.rand(len(train_x), 1, 1, 1, generator=g) < 0.5, train_x.flip(-1), train_x)
    step, curve = 0, []
    for epoch in range(args.epochs):
        net[0].bias.requires_grad_(epoch < WHITEN_BIAS_EPOCHS)
        images = flipped.flip(-1) if epoch % 2 else flipped
        order = torch.randperm(len(train_x), generator=g)
        for i in range(steps_per_epoch):
            idx = order[i * BATCH:(i + 1) * BATCH]
            x = translate(images[idx], 2, g).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(forward(net, x), ys[idx], label_smoothing=SMOOTHING, reduction="sum")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 5 == 0 or step == total:
                decay = 1.0 if step == total else alpha[step].item()
                with torch.no_grad():
                    for k, v in net.state_dict().items():
                        if v.is_floating_point():
                            average[k].lerp_(v, 1 - decay)
                            v.copy_(average[k])
        top1 = (predict(net, val_x, tta=False).argmax(1) == splits.val.labels).float().mean().item()
        curve.append([round(time.perf_counter() - t0, 1), round(top1, 4)])
        print(json.dumps({"epoch": epoch + 1, "val_top1": round(top1, 4), "seconds": curve[-1][0]}), flush=True)
    tta = (predict(net, val_x, tta=True).argmax(1) == splits.val.labels).float().mean().item()
    print(json.dumps({"reference": "airbench94, plain PyTorch", "seed": args.seed, "epochs": args.epochs,
                      "top1": round(tta, 4), "top1_without_tta": curve[-1][1],
                      "wall_seconds": round(time.perf_counter() - t0, 1), "curve": curve}))


if __name__ == "__main__":
    main()
