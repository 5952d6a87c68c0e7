"""Images that are none of the ten, to train with: outlier exposure (Hendrycks et al., "Deep Anomaly Detection
with Outlier Exposure", 2019).

A run with `outlier_exposure` above 0 adds a few of these to every batch and pushes the network's prediction on
them toward the uniform distribution (`OutlierExposureLoss`), so that "none of the ten" becomes something it was
taught rather than only how weakly it responds. The pool is made once per run from a seed: views of real photos of
things that are none of the ten (photos/exposure/, from Debian packages: food, tools, plants, fish, clothes,
animals of other kinds), random crops of the texture photos kept for training (`TRAINING_PHOTOS`; the photos of
things in photos/ and all of photos/validation/ stay out, to measure on), "dead leaves" (random overlapping discs,
Baradad et al. 2021), noise with a natural image's 1/f spectrum, and stripes, checkerboards, gradients and flat
colours. None of it is, or is taken from, a CIFAR image.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.ood import PHOTOS

# Textures, scans and scientific images (photos/README.md). The photos of things (astronaut, camera, coffee,
# motorcycle, rocket, the clock) never train: they measure whether what was taught carries to real objects.
EXPOSURE_PHOTOS = PHOTOS / "exposure"  # photos/exposure/README.md: none of them is in photos/validation/
TRAINING_PHOTOS = ("brick.jpg", "cell.jpg", "coins.jpg", "grass.jpg", "gravel.jpg", "hubble-deep-field.jpg",
                   "ihc.jpg", "moon.jpg", "page.jpg", "retina.jpg", "text.jpg")
POOL = 5000  # images in a run's pool; each step draws from it with replacement
SHARE = 8  # a batch of B images gets B // SHARE outliers (at least one): an eighth more work per step
SIZE = 32


class OutlierExposureLoss(nn.Module):
    """Cross-entropy on the images of the classes, plus `weight` times the cross-entropy from the uniform
    distribution to the prediction on the outliers (label -1): mean over classes of −log p, averaged over the
    outliers. With no outliers in a batch it is the plain (label-smoothed) cross-entropy."""

    def __init__(self, weight: float, label_smoothing: float = 0.0):
        super().__init__()
        self.weight, self.label_smoothing = weight, label_smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # masks, not boolean indexing: no host sync on a GPU, and a batch without outliers (or without
        # images of the classes) gives 0 for that term instead of the mean of nothing
        inside = labels >= 0
        per_image = F.cross_entropy(logits, labels.clamp_min(0), label_smoothing=self.label_smoothing,
                                    reduction="none")
        to_uniform = -logits.float().log_softmax(1).mean(1)
        classes = (per_image * inside).sum() / inside.sum().clamp_min(1)
        return classes + self.weight * (to_uniform * ~inside).sum() / (~inside).sum().clamp_min(1)


def count_for(batch_size: int) -> int:
    return max(1, batch_size // SHARE)


def _uniform(n: int, generator: torch.Generator, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _squares(paths: list[Path], n: int, generator: torch.Generator, shares: torch.Tensor) -> torch.Tensor:
    """`n` squares from random pictures of `paths`, each `shares[i]` of the picture's short side at a random place,
    antialiased to 32×32; a share of 0 stands for the whole picture framed as an upload is (core.images.to_32)."""
    from PIL import Image

    from core.images import open_image, to_rgb, to_uint8_tensor

    photos = [to_rgb(open_image(path)) for path in paths]
    crops = []
    which = torch.randint(0, len(photos), (n,), generator=generator).tolist()
    for index, share, x, y in zip(which, shares.tolist(), _uniform(n, generator).tolist(),
                                  _uniform(n, generator).tolist()):
        picture = photos[index]
        if share == 0:
            crops.append(to_uint8_tensor(picture))
            continue
        side = max(8, round(share * min(picture.size)))
        left, top = round(x * (picture.width - side)), round(y * (picture.height - side))
        crop = picture.resize((SIZE, SIZE), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side),
                              reducing_gap=2.0)
        crops.append(torch.frombuffer(bytearray(crop.tobytes()), dtype=torch.uint8).view(SIZE, SIZE, 3)
                     .permute(2, 0, 1))
    return torch.stack(crops).contiguous()


def photo_crops(n: int, generator: torch.Generator, folder: Path = PHOTOS) -> torch.Tensor:
    """`n` random crops of the texture photos, 2–100 % of a photo's short side."""
    shares = _uniform(n, generator, 0.15, 1.0) ** 2  # squared: small crops as often as large
    return _squares([folder / name for name in TRAINING_PHOTOS], n, generator, shares)


def object_views(n: int, generator: torch.Generator, folder: Path = EXPOSURE_PHOTOS) -> torch.Tensor:
    """`n` views of the photos of things that are none of the ten: half of them the whole picture as an upload is
    framed, half a square of 50–100 % of its short side, so the thing is still there to be seen."""
    shares = torch.where(torch.rand(n, generator=generator) < 0.5, 0.0, _uniform(n, generator, 0.5, 1.0))
    return _squares(sorted(folder.glob("*.jpg")), n, generator, shares)


def _colors(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, 3, 1, 1, generator=generator) * 255


def dead_leaves(n: int, generator: torch.Generator, discs: int = 60) -> torch.Tensor:
    """Random discs of random colours laid over each other, radii from a power law: edges and flat regions
    at every scale, like a photo's, with no object in them."""
    coords = torch.arange(SIZE, dtype=torch.float32)
    rows, cols = coords.view(1, 1, SIZE, 1), coords.view(1, 1, 1, SIZE)
    images = _colors(n, generator).expand(n, 3, SIZE, SIZE).clone()
    for _ in range(discs):
        cy, cx = (torch.rand(n, 1, 1, 1, generator=generator) * SIZE for _ in range(2))
        radius = 1.5 / (1 - torch.rand(n, 1, 1, 1, generator=generator) * 0.9)  # 1.5 to 15 pixels, mostly small
        inside = (rows - cy) ** 2 + (cols - cx) ** 2 < radius ** 2
        images = torch.where(inside, _colors(n, generator), images)
    return images.round().to(torch.uint8)


def spectral_noise(n: int, generator: torch.Generator) -> torch.Tensor:
    """Noise whose amplitude falls as 1/f^α (α 1–2.5, natural images are near 2), each channel its own mix."""
    freq = torch.fft.fftfreq(SIZE).abs()
    radius = (freq.view(SIZE, 1) ** 2 + freq.view(1, SIZE) ** 2).sqrt().clamp_min(1 / SIZE)
    alpha = _uniform(n, generator, 1.0, 2.5).view(n, 1, 1, 1)
    spectrum = torch.randn(n, 3, SIZE, SIZE, generator=generator) + 1j * torch.randn(n, 3, SIZE, SIZE,
                                                                                      generator=generator)
    field = torch.fft.ifft2(spectrum * radius ** -alpha).real
    mix = torch.rand(n, 3, 3, generator=generator) + torch.eye(3)  # correlated channels, as in photos
    field = torch.einsum("ncd,ndhw->nchw", mix, field)
    low, high = field.amin((1, 2, 3), keepdim=True), field.amax((1, 2, 3), keepdim=True)
    return ((field - low) / (high - low + 1e-12) * 255).round().to(torch.uint8)


def patterns(n: int, generator: torch.Generator) -> torch.Tensor:
    """Stripes and checkerboards at random angles and periods, gradients, flat colours and pixel noise."""
    coords = torch.arange(SIZE, dtype=torch.float32) - SIZE / 2
    rows, cols = coords.view(1, SIZE, 1), coords.view(1, 1, SIZE)
    angle = _uniform(n, generator, 0, math.pi).view(n, 1, 1)
    period = _uniform(n, generator, 2, 16).view(n, 1, 1)
    along = rows * angle.cos() + cols * angle.sin()
    across = -rows * angle.sin() + cols * angle.cos()
    stripes = (along / period).floor() % 2
    checks = ((along / period).floor() + (across / period).floor()) % 2
    ramp = (along / SIZE + 0.5).clamp(0, 1)
    kind = torch.randint(0, 5, (n, 1, 1), generator=generator)
    pixel_noise = torch.rand(n, SIZE, SIZE, generator=generator)
    mask = torch.where(kind == 0, stripes, torch.where(kind == 1, checks, torch.where(kind == 2, ramp, torch.where(
        kind == 3, torch.zeros_like(ramp), pixel_noise))))
    a, b = _colors(n, generator), _colors(n, generator)
    return (a + (b - a) * mask.unsqueeze(1)).round().clamp(0, 255).to(torch.uint8)


def training_outliers(count: int = POOL, seed: int = 0, folder: Path = PHOTOS) -> torch.Tensor:
    """A run's pool: [count,3,32,32] uint8, 30 % views of photos of things, 20 % texture crops, 20 % dead leaves,
    15 % 1/f noise, 15 % patterns, shuffled; the same for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    things, crops, leaves, noise = (round(share * count) for share in (0.3, 0.2, 0.2, 0.15))
    pool = torch.cat([object_views(things, generator, folder / "exposure"), photo_crops(crops, generator, folder),
                      dead_leaves(leaves, generator), spectral_noise(noise, generator),
                      patterns(count - things - crops - leaves - noise, generator)])
    return pool[torch.randperm(count, generator=generator)]
