""""None of the ten": how familiar an image looks to a model, and where "unfamiliar" starts.

A classifier always picks one of its classes; an image of something else (a coffee cup, an astronaut)
gets one too. The score here is higher the more an image looks like the training data; the threshold is
set on held-out CIFAR images (the validation split, never the test set) so that a fixed share of them,
`KEEP`, count as familiar. How well the score separates CIFAR images from others is the AUROC against the
reference outliers below: real photos that ship in a PyPI package (photos/README.md) and synthetic noise
and textures.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

KEEP = 0.95  # share of held-out CIFAR images above the threshold: 1 in 20 is flagged, the usual operating point
SCORES = ("max-probability", "energy")
SCORE = "energy"  # separates the reference outliers better than the top probability (BENCHMARKS.md, photos)


def familiarity(logits: torch.Tensor, temperature: float = 1.0, kind: str = SCORE) -> torch.Tensor:
    """Per image, higher = more like the training data: the calibrated top probability, or the negative
    free energy T·logsumexp(logits / T) (Liu et al., 2020), which also sees how large all the logits are."""
    scaled = logits.double() / temperature
    if kind == "max-probability":
        return scaled.softmax(1).amax(1)
    if kind == "energy":
        return temperature * scaled.logsumexp(1)
    raise ValueError(f"unknown score {kind!r}; choose one of {list(SCORES)}")


def threshold(familiar_scores: torch.Tensor, keep: float = KEEP) -> float:
    """The score above which a share `keep` of these (in-distribution) images lie."""
    if len(familiar_scores) == 0:
        raise ValueError("no images to set the threshold on")
    return float(torch.quantile(familiar_scores.double(), 1 - keep))


def figures(validation_logits: torch.Tensor, temperature: float) -> dict:
    """What a run with a validation split records for "none of the ten": the score's name and its threshold."""
    return {"ood_score": SCORE, "ood_threshold": threshold(familiarity(validation_logits, temperature))}


def band(flag_below: float, clean_scores: torch.Tensor, shifted_scores: torch.Tensor, keep: float = KEEP) -> dict:
    """The three-way verdict's two thresholds, from held-out images of the classes: clean ones and the same under
    photo-like shifts (zoom, JPEG, blur, exposure, colour). Below `ood_threshold` an image is "none of the ten";
    it is set so that at most 1 − `keep` of the shifted images *and* of the clean ones (and of the run's own
    `flag_below` rule) fall there, since a real photo is shifted and must not be rejected for it. Between it and
    `ood_unsure_below`, where the clean images' own 1 − `keep` lies, the answer is "not sure"."""
    clean, shifted = threshold(clean_scores, keep), threshold(shifted_scores, keep)
    return {"ood_threshold": min(flag_below, clean, shifted), "ood_unsure_below": max(flag_below, clean, shifted)}


FAMILIAR, UNSURE, UNFAMILIAR = "one of the classes", "not sure", "none of the classes"


def answer(score: float, threshold: float | None, unsure_below: float | None = None) -> str | None:
    """FAMILIAR, UNSURE or UNFAMILIAR for a score; None without a threshold. Without a band (`unsure_below`),
    two answers."""
    if threshold is None:
        return None
    if score < threshold:
        return UNFAMILIAR
    return UNSURE if unsure_below is not None and score < unsure_below else FAMILIAR


def in_words(classes: int) -> str:
    """"ten" for CIFAR-10's classes, the digits otherwise: "any of the ten classes", "any of the 11 classes"."""
    return {10: "ten"}.get(classes, str(classes))


def verdict(score: float, threshold: float | None, classes: int, unsure_below: float | None = None) -> str:
    """The one line shown beside a prediction: whether the image looks like any of the classes, with the score."""
    number = in_words(classes)
    said = answer(score, threshold, unsure_below)
    if said is None:
        return f"{SCORE} score {score:.2f} (this model has no threshold: train it with validation images)"
    if said == UNFAMILIAR:
        return f"this doesn't look like any of the {number} classes ({SCORE} score {score:.2f}, below {threshold:.2f})"
    if said == UNSURE:
        return (f"not sure this is one of the {number} classes ({SCORE} score {score:.2f}: between {threshold:.2f}, "
                f"below which it is none of them, and {unsure_below:.2f}, above which it is one of them)")
    return f"looks like one of the {number} classes ({SCORE} score {score:.2f}, threshold {threshold:.2f})"


FEATURE_SCORES = ("knn", "mahalanobis")
KNN_K = 5  # Sun et al. take the 50th nearest of 50,000 training images; the neighbour bank holds a tenth of them


def knn_familiarity(features: torch.Tensor, bank: torch.Tensor, k: int = KNN_K) -> torch.Tensor:
    """Per image, the cosine similarity of its penultimate features to the k-th nearest training image's (Sun et
    al., "Out-of-distribution detection with deep nearest neighbors", 2022): higher = more like the training data."""
    similarity = F.normalize(features.float(), dim=1) @ F.normalize(bank.float(), dim=1).T
    return similarity.topk(min(k, bank.shape[0]), dim=1).values[:, -1].double()


def mahalanobis_fit(bank: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Class means of training features and the inverse of their shared covariance (Lee et al., "A simple unified
    framework for detecting out-of-distribution samples and adversarial attacks", 2018). A small ridge keeps the
    inverse finite when features are fewer than their dimensions."""
    bank = bank.double()
    classes = labels.unique()
    means = torch.stack([bank[labels == c].mean(0) for c in classes])
    centred = bank - means[torch.searchsorted(classes, labels)]
    covariance = centred.T @ centred / len(bank)
    ridge = 1e-6 * covariance.diagonal().mean().clamp_min(1e-12)
    return means, torch.linalg.inv(covariance + ridge * torch.eye(len(covariance), dtype=torch.float64))


def mahalanobis_familiarity(features: torch.Tensor, means: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """Minus the squared Mahalanobis distance to the nearest class mean: higher = more like the training data."""
    offsets = features.double().unsqueeze(1) - means.unsqueeze(0)  # [N, C, D]
    return -torch.einsum("ncd,de,nce->nc", offsets, precision, offsets).amin(1)


def auroc(familiar_scores: torch.Tensor, outlier_scores: torch.Tensor) -> float:
    """The chance that a random familiar image scores above a random outlier (ties count half): 1 separates
    them perfectly, 0.5 is a coin toss. Computed from ranks (the Mann–Whitney U statistic)."""
    if len(familiar_scores) == 0 or len(outlier_scores) == 0:
        raise ValueError("need scores for both familiar images and outliers")
    scores = torch.cat([familiar_scores.double(), outlier_scores.double()])
    order = scores.argsort()
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    for value in scores.unique():  # tied scores share their mean rank
        tied = scores == value
        if int(tied.sum()) > 1:
            ranks[tied] = ranks[tied].mean()
    n, m = len(familiar_scores), len(outlier_scores)
    return float((ranks[:n].sum() - n * (n + 1) / 2) / (n * m))


PHOTOS = Path(__file__).resolve().parent.parent / "photos"
IN_CLASS_PHOTOS = {"chelsea.jpg": "cat"}  # photos/README.md: the one sample photo of one of the ten classes


VALIDATION_PHOTOS = PHOTOS / "validation"  # photos/validation/README.md: real photos sorted by hand
NONE_OF_THEM = -1  # the label of a photo that shows none of the classes


def labelled_photos(classes: Sequence[str], folder: Path = VALIDATION_PHOTOS) -> list[tuple[Path, int]]:
    """The real photos of `folder` with their labels: the index in `classes` of the folder a photo is in, or
    NONE_OF_THEM for `none/`. Folders of other names are not read."""
    labelled = [(p, NONE_OF_THEM) for p in sorted((folder / "none").glob("*.jpg"))]
    for index, name in enumerate(classes):
        labelled += [(p, index) for p in sorted((folder / name).glob("*.jpg"))]
    if not labelled:
        raise FileNotFoundError(f"no photos in {folder}: build them with `python -m scripts.package_photos`")
    return labelled


def outlier_photos(folder: Path = PHOTOS) -> list[Path]:
    """The sample photos that show none of CIFAR-10's classes."""
    return sorted(p for p in folder.glob("*.jpg") if p.name not in IN_CLASS_PHOTOS)


def outlier_images(folder: Path = PHOTOS, seed: int = 0) -> torch.Tensor:
    """The reference outliers as [N,3,32,32] uint8: each photo whole and as five half-size crops (corners and
    centre), then synthetic images: uniform and Gaussian noise, smooth noise at three scales, flat colours,
    gradients, stripes and checkerboards. Deterministic for a seed."""
    from core.images import load_for_model, open_image, to_uint8_tensor  # PIL only when outliers are wanted

    images = []
    for path in outlier_photos(folder):
        picture = open_image(path)
        images.append(load_for_model(path))
        w, h = picture.size
        for left, top in ((0, 0), (w // 2, 0), (0, h // 2), (w // 2, h // 2), (w // 4, h // 4)):
            images.append(to_uint8_tensor(picture.crop((left, top, left + w // 2, top + h // 2))))
    generator = torch.Generator().manual_seed(seed)
    synthetic = [torch.randint(0, 256, (3, 32, 32), generator=generator, dtype=torch.uint8) for _ in range(16)]
    for _ in range(16):
        noise = torch.randn(3, 32, 32, generator=generator) * 64 + 128
        synthetic.append(noise.clamp(0, 255).to(torch.uint8))
    for cells in (2, 4, 8):  # smooth noise: random values on a coarse grid, interpolated up
        for _ in range(8):
            coarse = torch.rand(1, 3, cells, cells, generator=generator) * 255
            smooth = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bicubic", align_corners=False)
            synthetic.append(smooth[0].clamp(0, 255).to(torch.uint8))
    ramp = torch.linspace(0, 1, 32)
    for _ in range(8):
        a, b = torch.rand(2, 3, 1, 1, generator=generator) * 255
        synthetic.append(torch.full((3, 32, 32), 0.0).add(a).to(torch.uint8))  # flat colour
        synthetic.append((a + (b - a) * ramp.view(1, 1, 32)).expand(3, 32, 32).to(torch.uint8))  # gradient
        period = int(torch.randint(2, 9, (1,), generator=generator))
        stripes = ((torch.arange(32) // period) % 2).float()
        synthetic.append((a + (b - a) * stripes.view(1, 32, 1)).expand(3, 32, 32).to(torch.uint8))
        checks = (stripes.view(32, 1) + stripes.view(1, 32)) % 2
        synthetic.append((a + (b - a) * checks).expand(3, 32, 32).to(torch.uint8))
    return torch.stack(images + synthetic)
