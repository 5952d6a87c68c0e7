"""What the network thinks is similar: its penultimate features (what the last layer reads), a 2-D map of them,
and an image's nearest neighbours among them.

Features are read on a private view of the model (core.views) with a pre-hook on its last linear layer, so every
registered architecture has them and a shared model is never changed. Neighbours are by cosine similarity, i.e.
on L2-normalised features (Sun et al., "Out-of-distribution detection with deep nearest neighbors", 2022).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn as nn

from core import evaluations
from core.data import Split
from core.views import private_view

METHODS = ("pca", "tsne")


def classifier_name(model: nn.Module) -> str:
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError("the model has no linear layer whose inputs would be its features")
    return linears[-1]


@torch.inference_mode()
def penultimate(model: nn.Module, images: torch.Tensor, normalize: Callable[[torch.Tensor], torch.Tensor],
                batch_size: int = 500) -> torch.Tensor:
    """[N, D] float32 features of uint8 `images`: the inputs of the model's last linear layer."""
    view = private_view(model)
    layer = dict(view.named_modules())[classifier_name(view)]
    kept: list[torch.Tensor] = []
    layer.register_forward_pre_hook(lambda module, inputs: kept.append(inputs[0].flatten(1).float()))
    for batch in images.split(batch_size):
        view(normalize(batch))
    return torch.cat(kept).cpu() if kept else torch.empty(0, 0)


def normalised(features: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(features.float(), dim=1)


def project(features: torch.Tensor, method: str = "pca", seed: int = 0) -> np.ndarray:
    """[N, 2] map coordinates of the L2-normalised features: their first two principal components, or t-SNE
    (scikit-learn's Barnes-Hut, started from the PCA map so the same features give the same map)."""
    if method not in METHODS:
        raise ValueError(f"unknown map {method!r}; choose one of {list(METHODS)}")
    x = normalised(features).double()
    x = x - x.mean(0)
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    pca = (x @ v[:2].T).numpy()
    if method == "pca":
        return pca.astype(np.float32)
    from sklearn.manifold import TSNE  # only this map needs it (and its import takes a second)

    start = pca / max(float(np.std(pca[:, 0])), 1e-12) * 1e-4  # scikit-learn's own scale for a PCA start
    # 500 iterations, not scikit-learn's 1,000: half the time, the classes as far apart (BENCHMARKS.md)
    tsne = TSNE(n_components=2, init=start, random_state=seed, perplexity=min(30.0, (len(x) - 1) / 3), max_iter=500)
    return tsne.fit_transform(x.numpy()).astype(np.float32)


def nearest(query: torch.Tensor, bank: torch.Tensor, k: int = 8) -> tuple[list[int], list[float]]:
    """The `k` rows of `bank` most like `query` ([D]) by cosine similarity, most similar first, with it."""
    similarity = normalised(bank) @ normalised(query.view(1, -1))[0]
    top = similarity.topk(min(k, len(bank)))
    return top.indices.tolist(), top.values.tolist()


def separation(coordinates: np.ndarray, labels: torch.Tensor, k: int = 10) -> float:
    """How well a map shows the classes: the share of points whose `k` nearest points on the map mostly share
    their class (k-nearest-neighbour accuracy, leave-one-out)."""
    points = torch.as_tensor(coordinates, dtype=torch.float64)
    distances = torch.cdist(points, points)
    distances.fill_diagonal_(float("inf"))
    neighbours = distances.topk(k, largest=False).indices
    labels = labels.cpu()
    votes = torch.nn.functional.one_hot(labels[neighbours], int(labels.max()) + 1).sum(1)
    return float((votes.argmax(1) == labels).double().mean())


MAP_IMAGES = 2000  # the map shows the first 2,000 test images (CIFAR's test set is shuffled: ~200 a class)
BANK_IMAGES = 5000  # neighbours are looked for among 5,000 training images spread evenly over the set


@dataclass(frozen=True)
class FeatureMap:
    """The features a map needs, for one model on one data set."""
    test_features: torch.Tensor  # [MAP_IMAGES, D] of the first test images
    maps: dict[str, np.ndarray] = field(default_factory=dict)  # method -> [MAP_IMAGES, 2]: the maps remembered
    source: str = "computed"  # or "remembered"
    note: str = ""  # why a file found was not used

    def coordinates(self, method: str) -> np.ndarray:
        """The map by `method`: the remembered one, or drawn now (the object is shared, so it is not stored on it:
        `with_map` makes one that has it)."""
        return self.maps[method] if method in self.maps else project(self.test_features, method)

    def with_map(self, method: str, coordinates: np.ndarray) -> "FeatureMap":
        return replace(self, maps={**self.maps, method: coordinates})


def place(coordinates: np.ndarray, test_features: torch.Tensor, features: torch.Tensor,
          k: int = 8) -> tuple[float, float]:
    """Where an image outside the map (an upload) goes: the mean position of its `k` nearest map points (t-SNE has no
    way to place a new point; the same rule serves both maps)."""
    neighbours, _ = nearest(features, test_features, k)
    x, y = coordinates[neighbours].mean(0)
    return float(x), float(y)


def bank_index(train_size: int) -> torch.Tensor:
    return torch.arange(0, train_size, max(1, train_size // BANK_IMAGES))[:BANK_IMAGES]


class NeighbourBank(NamedTuple):
    """The training images a photo's neighbours are looked for among."""
    index: torch.Tensor  # [B] their indices in the training split
    features: torch.Tensor  # [B, D] float32 (half precision as remembered)
    note: str = ""  # why a remembered file was not used, and that they were computed again


def neighbour_bank(model: nn.Module, train: Split, normalize, *, folders: Sequence[Path] = (),
                   save_to: Path | None = None) -> NeighbourBank:
    """The training images a photo's neighbours are looked for among, with their features. Only a photo needs
    them, so they are read when one is placed, not with the map; like the map they are remembered in `save_to` and
    found again there or in `folders` (5,000 images through the shipped w64 network: ~10 s on two AVX2 cores)."""
    index = bank_index(len(train))
    bank = Split(train.images[index], train.labels[index])
    wanted = "bank-" + evaluations.key(model, bank, normalize, "none", 0)

    def check(blob: dict) -> torch.Tensor:
        features = blob.get("features")
        if not isinstance(features, torch.Tensor) or len(features) != len(index) \
                or not torch.isfinite(features.float()).all():
            raise ValueError("its numbers are not this model's features")
        return features.float()

    found, _, note = evaluations.find(wanted, folders, save_to, check, "neighbour features",
                                       "They were computed again.")
    if found is not None:
        return NeighbourBank(index, found, note)
    features = penultimate(model, bank.images, normalize).half()
    if save_to:
        evaluations.save_blob(Path(save_to) / f"{wanted}.pt", wanted, {"features": features})
    return NeighbourBank(index, features.float(), note)


def _key(model: nn.Module, test: Split, normalize) -> str:
    return "map-" + evaluations.key(model, test, normalize, "none", 0)


def _check(blob: dict, test: int) -> tuple[torch.Tensor, dict]:
    t, maps = blob.get("test_features"), blob.get("maps", {})
    if not isinstance(t, torch.Tensor) or len(t) != test or not isinstance(maps, dict) \
            or not torch.isfinite(t.float()).all():
        raise ValueError("its numbers are not this model's features")
    arrays = {m: np.asarray(v, dtype=np.float32) for m, v in maps.items() if m in METHODS}
    if any(a.shape != (test, 2) for a in arrays.values()):
        raise ValueError("its maps are not of these images")
    return t.float(), arrays


def feature_map(model: nn.Module, test: Split, normalize, *, folders: Sequence[Path] = (),
                save_to: Path | None = None) -> FeatureMap:
    """The FeatureMap of `model`, read from a file remembered under the same key as its evaluation would be (the
    weights, the images, the normalisation) in `folders` or `save_to`, else computed (for `remember`)."""
    test = Split(test.images[:MAP_IMAGES], test.labels[:MAP_IMAGES])
    found, _, note = evaluations.find(_key(model, test, normalize), folders, save_to,
                                       lambda blob: _check(blob, len(test)), "feature map", "It was computed again.")
    if found is not None:
        return FeatureMap(*found, "remembered", note)
    # rounded as they are remembered, so a map drawn now and one read back later are the same map
    return FeatureMap(penultimate(model, test.images, normalize).half().float(), note=note)


def remember(feature_map: FeatureMap, model: nn.Module, test: Split, normalize, save_to: Path) -> bool:
    """Write the map (its features in half precision, and every map drawn so far) for `feature_map` to find again."""
    test = Split(test.images[:MAP_IMAGES], test.labels[:MAP_IMAGES])
    wanted = _key(model, test, normalize)
    return evaluations.save_blob(Path(save_to) / f"{wanted}.pt", wanted, {
        "test_features": feature_map.test_features.half(),
        "maps": {m: torch.from_numpy(np.ascontiguousarray(v)) for m, v in feature_map.maps.items()}})
