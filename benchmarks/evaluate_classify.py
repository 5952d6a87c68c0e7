"""Evaluating 10,000 test images, and classifying one uploaded photo.

    python -m benchmarks.evaluate_classify [--data-dir data] [--model models/default.pth]

1. The tutorial's evaluation loop (a DataLoader of PIL images through ToTensor+Normalize, batch 4,
   two workers, as the tutorial and ../shared/bench/seed_tutorial.py run it) against
   core.evaluate.evaluate on the same model and test set, in this process. Best of 3 each.
2. One upload end to end as the Classify page does it: decode the file's bytes, convert,
   centre-crop and resize to 32x32, normalise, forward, softmax. Median of 200, for a CIFAR-sized
   PNG and for a 1600x1200 phone-camera JPEG.
"""
from __future__ import annotations

import argparse
import io
import statistics
import time

import torch
import torchvision.transforms as transforms
from PIL import Image

from benchmarks.common import ROOT
from core.checkpoints import load_model
from core.data import DataConfig, load_dataset
from core.evaluate import evaluate
from core.images import load_for_model
from core.interpret import predict
from core.transforms import normalizer


class TutorialTestSet(torch.utils.data.Dataset):
    """torchvision.datasets.CIFAR10's __getitem__: uint8 HWC array -> PIL -> transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.data = images.permute(0, 2, 3, 1).numpy()
        self.targets = labels.tolist()
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.data[i])), self.targets[i]


def tutorial_loop(net, testset) -> tuple[float, float]:
    loader = torch.utils.data.DataLoader(testset, batch_size=4, shuffle=False, num_workers=2)
    start = time.perf_counter()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            _, predicted = torch.max(net(images), 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    return time.perf_counter() - start, correct / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    parser.add_argument("--model", default=str(ROOT / "models" / "default.pth"))
    args = parser.parse_args()
    dataset = load_dataset(DataConfig(data_dir=args.data_dir, download=False))
    model = load_model(args.model).model
    normalize = normalizer(DataConfig(), "cpu")
    print(f"{torch.get_num_threads()} threads, {len(dataset.test)} test images, model {args.model}")

    seed_runs = [tutorial_loop(model, TutorialTestSet(dataset.test.images, dataset.test.labels)) for _ in range(3)]
    ours = []
    for _ in range(3):
        start = time.perf_counter()
        result = evaluate(model, dataset.test, normalize)
        ours.append(time.perf_counter() - start)
    seed_s, seed_acc = min(seed_runs)
    print(f"tutorial's evaluation loop : {seed_s:6.3f} s  accuracy {100 * seed_acc:.2f} %")
    print(f"core.evaluate              : {min(ours):6.3f} s  accuracy {100 * result.accuracy:.2f} %  "
          f"(+ per-class, confusion matrix, probabilities)")
    print(f"speed ratio: {seed_s / min(ours):.1f}x")

    small = io.BytesIO()
    Image.fromarray(dataset.test.images[0].permute(1, 2, 0).numpy()).save(small, "PNG")
    phone = io.BytesIO()
    Image.fromarray(dataset.test.images[0].permute(1, 2, 0).numpy()).resize((1600, 1200), Image.Resampling.BICUBIC) \
        .save(phone, "JPEG", quality=90)
    model.eval()
    for name, data in (("32x32 PNG", small.getvalue()), ("1600x1200 JPEG", phone.getvalue())):
        times = []
        for _ in range(200):
            start = time.perf_counter()
            predict(model, load_for_model(data).unsqueeze(0), normalize)
            times.append(time.perf_counter() - start)
        print(f"classify one upload ({name}, {len(data) // 1024} KB): median {1000 * statistics.median(times):.2f} ms")


if __name__ == "__main__":
    main()
