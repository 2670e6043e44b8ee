"""The baseline: what a careful PyTorch user writes by hand with timm and torchvision.

Same data, model, weights, preprocessing, optimizer, schedule and epochs as a Glassbox run, with
validation every epoch and the weights saved at the end. Run as its own process by train_overhead.py.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import timm
import timm.data
import torch
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision.datasets import ImageFolder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--weights-file", required=True)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.manual_seed(0)

    dataset = ImageFolder(args.folder)
    model = timm.create_model(args.backbone, pretrained=True, num_classes=len(dataset.classes),
                              pretrained_cfg_overlay=dict(file=args.weights_file, mean=(0.5,) * 3, std=(0.5,) * 3))
    data_config = timm.data.resolve_data_config(model=model)
    data_config.update(input_size=(3, args.image_size, args.image_size), crop_pct=1.0)
    train_tf = timm.data.create_transform(**data_config, is_training=True, scale=(0.8, 1.0), hflip=0.5,
                                          color_jitter=None)
    eval_tf = timm.data.create_transform(**data_config, is_training=False)
    indices = np.arange(len(dataset))
    train_idx, val_idx = train_test_split(indices, test_size=0.2, stratify=dataset.targets, random_state=0)
    train_set = Subset(ImageFolder(args.folder, transform=lambda im: train_tf(im.convert("RGB"))), train_idx)
    val_set = Subset(ImageFolder(args.folder, transform=lambda im: eval_tf(im.convert("RGB"))), val_idx)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True)
    val_loader = DataLoader(val_set, batch_size=args.batch_size * 2)

    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    head = set(model.get_classifier().parameters())
    optimizer = torch.optim.AdamW([
        {"params": [p for p in model.parameters() if p not in head], "lr": args.lr * 0.1},
        {"params": list(head), "lr": args.lr},
    ], weight_decay=0.01)
    total = args.epochs * len(train_loader)
    warmup = int(total * 0.1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    accuracy = 0.0
    for epoch in range(args.epochs):
        started = time.monotonic()
        model.train()
        for x, y in train_loader:
            loss = loss_fn(model(x.to(memory_format=memory_format)), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in val_loader:
                correct += (model(x.to(memory_format=memory_format)).argmax(1) == y).sum().item()
        accuracy = correct / len(val_set)
        print(f"epoch {epoch + 1}: val accuracy {accuracy:.3f} ({time.monotonic() - started:.1f} s)", flush=True)
    torch.save(model.state_dict(), args.out)
    print(f"ACCURACY {accuracy:.4f}")


if __name__ == "__main__":
    main()
