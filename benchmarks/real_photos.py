"""How models do on real photos (photos/validation/: photos of the ten classes and of none of them, from Debian
packages, sorted by hand): accuracy in each framing, and how well each "none of the ten" score tells the two groups
apart, for several models side by side.

    python -m benchmarks.real_photos NAME=PATH [NAME=PATH ...] [--data-dir data] [--val-images 2000]

Scores: the calibrated top probability and the energy (from the logits, as served), and two on the penultimate
features: the k-th nearest training image (kNN, Sun et al. 2022) and the Mahalanobis distance to the nearest class
mean (Lee et al. 2018), both against the 5,000 training images of Evaluate's neighbour bank. Each score's threshold
follows the project's rule (core.ood.band): at most 5 % of the held-out CIFAR training images, clean or under any of
benchmarks/photos.py's shifts, fall below it; `--val-images` is the shipped recipe's split, so for the shipped model
they never trained. "At 10 % of the photos of the ten flagged" sets the threshold on these photos themselves: the
best any threshold could do here, an upper bound, not an operating point.
"""
from __future__ import annotations

import argparse

import torch

from benchmarks import photos
from core import ood, similarity
from core.checkpoints import LoadedModel, load_model
from core.data import DataConfig, holdout, load_dataset
from core.evaluations import SHIPPED
from core.images import FRAMING, FRAMINGS, load_for_model

SCORES = ood.SCORES + ood.FEATURE_SCORES


def photo_set(classes, framing: str) -> tuple[torch.Tensor, torch.Tensor]:
    labelled = ood.labelled_photos(classes)
    return (torch.stack([load_for_model(path, framing) for path, _ in labelled]),
            torch.tensor([label for _, label in labelled]))


def scenes(classes) -> torch.Tensor:
    """Which photos are GCompris's scene photos (the rest are Tux Paint's cut-outs on white, which are far easier
    for a CIFAR model to place: compare within the scenes before trusting a figure over both)."""
    return torch.tensor([path.name.startswith("gcompris-") for path, _ in ood.labelled_photos(classes)])


class Scorer:
    """Every score of one model, for uint8 images; the feature scores against its neighbour bank."""

    def __init__(self, loaded: LoadedModel, train) -> None:
        self.loaded, self.normalize = loaded, loaded.normalizer()
        index, self.bank, _ = similarity.neighbour_bank(loaded.model, train, self.normalize, folders=(SHIPPED,))
        self.means, self.precision = ood.mahalanobis_fit(self.bank, train.labels[index])

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = photos.logits(self.loaded, images)
        features = similarity.penultimate(self.loaded.model, images, self.normalize)
        t = self.loaded.temperature
        return {**{kind: ood.familiarity(logits, t, kind) for kind in ood.SCORES},
                "knn": ood.knn_familiarity(features, self.bank),
                "mahalanobis": ood.mahalanobis_familiarity(features, self.means, self.precision)}


def thresholds(scorer: Scorer, validation) -> dict[str, float]:
    """Each score's flag threshold by the project's rule, on clean and shifted held-out images."""
    clean = scorer(validation.images)
    shifted = [scorer(apply(validation.images)) for name, apply in photos.SHIFTS.items() if name != "clean"]
    out = {}
    for kind in SCORES:
        rule = ood.threshold(clean[kind])
        out[kind] = ood.band(rule, clean[kind], torch.cat([s[kind] for s in shifted]))["ood_threshold"]
    return out


def share(mask: torch.Tensor) -> str:
    return f"{100 * mask.double().mean():.0f}"


def verdicts(loaded: LoadedModel, framing: str = FRAMING) -> dict:
    """What a person sees for the real photos as `loaded` is served: accuracy on the photos of the ten, and the
    shares of each group that its verdict calls "none of the ten" and "not sure" (shares, 0–1)."""
    images, labels = photo_set(loaded.classes, framing)
    ten = labels != ood.NONE_OF_THEM
    predictions = loaded.predict(images)
    answers = [p.answer for p in predictions]
    out = {"framing": framing, "photos_of_the_ten": int(ten.sum()), "photos_of_none": int((~ten).sum()),
           "accuracy": round(float((torch.tensor([p.top for p in predictions])[ten] == labels[ten])
                                   .double().mean()), 4)}
    for group, mask in (("ten", ten), ("none", ~ten)):
        said = [a for a, m in zip(answers, mask.tolist()) if m]
        out[f"{group}_flagged"] = round(said.count(ood.UNFAMILIAR) / len(said), 4)
        out[f"{group}_not_sure"] = round(said.count(ood.UNSURE) / len(said), 4)
    return out


def model_rows(loaded: LoadedModel, dataset, validation) -> dict[str, str]:
    scorer = Scorer(loaded, dataset.train)
    flag_at = thresholds(scorer, validation)
    rows = {}
    for framing in FRAMINGS:
        images, labels = photo_set(loaded.classes, framing)
        ten, none = labels != ood.NONE_OF_THEM, labels == ood.NONE_OF_THEM
        scores = scorer(images)
        seen = verdicts(loaded, framing)
        rows[f"{framing}: accuracy on the photos of the ten, %"] = f"{100 * seen['accuracy']:.0f}"
        for group in ("ten", "none"):
            rows[f"{framing}: its verdict, photos of {group}: flagged / not sure, %"] = (
                "–" if loaded.ood_threshold is None else
                f"{100 * seen[f'{group}_flagged']:.0f} / {100 * seen[f'{group}_not_sure']:.0f}")
        scene = scenes(loaded.classes)
        predicted = torch.tensor([p.top for p in loaded.predict(images)])
        rows[f"{framing}: scene photos only: accuracy, %"] = share(predicted[ten & scene] == labels[ten & scene])
        for kind in SCORES:
            s = scores[kind]
            rows[f"{framing}: {kind}, AUROC ten vs none"] = f"{ood.auroc(s[ten], s[none]):.3f}"
            rows[f"{framing}: {kind}, AUROC, scene photos only"] = f"{ood.auroc(s[ten & scene], s[none & scene]):.3f}"
            rows[f"{framing}: {kind}, at its rule: ten / none flagged, %"] = (
                f"{share(s[ten] < flag_at[kind])} / {share(s[none] < flag_at[kind])}")
            at_ten = torch.quantile(s[ten], 0.10)
            rows[f"{framing}: {kind}, none flagged at 10 % of ten, %"] = share(s[none] < at_ten)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="NAME=PATH (a run directory or a .pth)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--val-images", type=int, default=2000)
    args = parser.parse_args()
    dataset = load_dataset(DataConfig(data_dir=args.data_dir, download=False))
    _, validation = holdout(dataset.train, args.val_images)
    labels = ood.labelled_photos(dataset.classes)
    ten = sum(label != ood.NONE_OF_THEM for _, label in labels)
    print(f"{len(labels)} photos ({ten} of the ten, {len(labels) - ten} of none), served framing {FRAMING!r}, "
          f"{len(validation)} held-out images × {len(photos.SHIFTS)} shifts for the thresholds, "
          f"torch {torch.__version__}\n")
    columns = {}
    for item in args.models:
        name, _, path = item.partition("=")
        columns[name] = model_rows(load_model(path), dataset, validation)
    print(f"{'':58s}" + "".join(f"{name:>14s}" for name in columns))
    for row in next(iter(columns.values())):
        print(f"{row:58s}" + "".join(f"{c[row]:>14s}" for c in columns.values()), flush=True)


if __name__ == "__main__":
    main()
