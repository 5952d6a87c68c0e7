"""Outlier exposure: the loss, the pool of images that are none of the classes, and what training with them does."""
import math

import pytest
import torch
import torch.nn.functional as F

from core import ood, outliers
from core.config import TrainConfig
from core.data import CIFAR10_CLASSES
from core.train import _Training, train


def test_the_loss_is_cross_entropy_on_the_classes_plus_the_distance_to_uniform_on_the_outliers():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 10, generator=generator, requires_grad=True)
    labels = torch.tensor([3, 1, 4, -1, -1, 5])
    loss = outliers.OutlierExposureLoss(0.5, label_smoothing=0.2)(logits, labels)
    inside = F.cross_entropy(logits[[0, 1, 2, 5]], labels[[0, 1, 2, 5]], label_smoothing=0.2)
    to_uniform = -(logits[[3, 4]].log_softmax(1)).mean()  # cross-entropy from uniform, averaged over outliers
    assert loss.item() == pytest.approx((inside + 0.5 * to_uniform).item(), rel=1e-6)
    # without outliers in the batch it is the plain loss
    plain = outliers.OutlierExposureLoss(0.5, 0.2)(logits[[0, 1, 2]], labels[[0, 1, 2]])
    assert plain.item() == pytest.approx(F.cross_entropy(logits[[0, 1, 2]], labels[[0, 1, 2]],
                                                         label_smoothing=0.2).item(), rel=1e-6)
    # on an outlier alone it is smallest, log(10), where every class is equally likely, and its gradient is zero
    flat = torch.full((1, 10), 2.0, requires_grad=True)
    at_uniform = outliers.OutlierExposureLoss(1.0)(flat, torch.tensor([-1]))
    at_uniform.backward()
    assert at_uniform.item() == pytest.approx(math.log(10)) and flat.grad.abs().max() < 1e-7
    peaked = outliers.OutlierExposureLoss(1.0)(torch.tensor([[5.0] + [0.0] * 9]), torch.tensor([-1]))
    assert peaked.item() > math.log(10)


def test_the_pool_is_the_same_for_a_seed_and_never_uses_the_photos_kept_to_measure():
    a, b = outliers.training_outliers(300, seed=1), outliers.training_outliers(300, seed=1)
    assert a.shape == (300, 3, 32, 32) and a.dtype == torch.uint8 and torch.equal(a, b)
    assert not torch.equal(a, outliers.training_outliers(300, seed=2))
    assert a.float().std() > 30  # not flat: photo crops, leaves, noise and patterns
    kept = {p.name for p in ood.outlier_photos()} - set(outliers.TRAINING_PHOTOS)
    assert {"astronaut.jpg", "coffee.jpg", "rocket.jpg", "camera.jpg", "motorcycle.jpg"} <= kept
    assert all((outliers.PHOTOS / name).is_file() for name in outliers.TRAINING_PHOTOS)
    assert "chelsea.jpg" not in outliers.TRAINING_PHOTOS  # the cat is one of the ten


def test_object_views_are_whole_uploads_or_large_squares_of_the_exposure_photos(tmp_path):
    from PIL import Image

    from core.images import load_for_model
    picture = Image.new("RGB", (120, 60), (200, 30, 30))
    picture.paste((30, 30, 200), (60, 0, 120, 60))  # red on the left, blue on the right
    picture.save(tmp_path / "halves.jpg", quality=95)
    views = outliers.object_views(40, torch.Generator().manual_seed(0), tmp_path)
    assert views.shape == (40, 3, 32, 32) and views.dtype == torch.uint8
    whole = load_for_model(tmp_path / "halves.jpg")
    squares = [v for v in views if not torch.equal(v, whole)]
    assert 5 < len(squares) < 35  # about half are framed as an upload is
    # the others are squares of the picture: red, blue or the edge between them, never the padding's mean colour
    assert all(((v[0].float() - v[2].float()).abs() > 100).float().mean() > 0.5 for v in squares)
    assert len({bytes(v.numpy()) for v in squares}) > 5


def test_exposure_photos_are_none_of_the_validation_photos():
    exposure = (outliers.EXPOSURE_PHOTOS / "README.md").read_text()
    validation = (ood.VALIDATION_PHOTOS / "README.md").read_text()

    def sources(readme: str) -> set[str]:  # the "from" column: package, version and the file inside it
        return {line.split(" | ")[2].split(";")[0] for line in readme.splitlines() if line.startswith("| `")}
    trained, measured = sources(exposure), sources(validation)
    assert len(trained) == len(list(outliers.EXPOSURE_PHOTOS.glob("*.jpg"))) >= 300
    assert len(measured) == len(ood.labelled_photos(CIFAR10_CLASSES)) and trained.isdisjoint(measured)


def test_each_batch_gets_an_eighth_as_many_outliers_labelled_minus_one(dataset):
    config = TrainConfig(epochs=1, batch_size=16, outlier_exposure=0.5, augment=True)
    run = _Training(config, dataset, torch.device("cpu"), _data_config(dataset), None, _single())
    inputs, labels = run.batch(torch.arange(16))
    assert inputs.shape == (18, 3, 32, 32) and labels[:16].tolist() == run.train_set.labels[:16].tolist()
    assert labels[16:].tolist() == [-1, -1]
    assert outliers.count_for(4) == 1 and outliers.count_for(1024) == 128


def test_training_with_outliers_makes_the_model_unsure_about_them_and_still_learns_the_classes(dataset):
    base = TrainConfig(epochs=8, batch_size=16, lr=0.03, log_interval=100)
    pool = outliers.training_outliers(200, seed=5)  # another seed: images the run's own pool does not hold
    normalize = _Training(base, dataset, torch.device("cpu"), _data_config(dataset), None, _single()).normalize
    top = {}
    for weight in (0.0, 1.0):
        result = train(TrainConfig(**{**base.to_dict(), "outlier_exposure": weight}), dataset, torch.device("cpu"))
        with torch.no_grad():
            top[weight] = result.model.eval()(normalize(pool)).softmax(1).amax(1).mean().item()
        assert result.evaluation.accuracy == 1.0  # the tinted classes are still told apart
    assert top[1.0] < top[0.0] - 0.2  # measured: 0.86 without, 0.57 with (three classes: uniform is 1/3)


def _data_config(dataset):
    from core.data import DataConfig
    return DataConfig(data_dir=str(dataset.root), download=False)


def _single():
    from core.distributed import SINGLE
    return SINGLE
