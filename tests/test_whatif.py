import threading

import pytest
import torch

from benchmarks.common import ROOT
from core import whatif
from core.checkpoints import load_model
from core.config import TrainConfig
from core.data import DataConfig
from core.images import load_for_model
from core.train import train
from core.transforms import normalizer


@pytest.fixture
def image():
    return torch.randint(0, 256, (3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def test_edits_change_what_they_say(image):
    assert torch.equal(whatif.edited(image, whatif.Edit()), image) and whatif.Edit().is_identity
    square = whatif.edited(image, whatif.Edit(occlude_x=10, occlude_y=20, occlude_size=6))
    assert (square[:, 17:23, 7:13] == whatif.GREY).all()
    assert torch.equal(square[:, :17], image[:, :17]) and torch.equal(square[:, :, 13:], image[:, :, 13:])
    assert (whatif.edited(image, whatif.Edit(brightness=0.0)) == 0).all()
    flat = whatif.edited(image, whatif.Edit(contrast=0.0))
    assert flat.float().std() < 1  # one grey level
    blurred = whatif.edited(image, whatif.Edit(blur=2.0))
    assert blurred.float().diff(dim=2).abs().mean() < image.float().diff(dim=2).abs().mean() / 3
    turned = whatif.edited(image, whatif.Edit(rotation=90))
    assert torch.equal(turned, image.rot90(1, (1, 2)))  # a quarter turn anticlockwise moves pixels exactly
    for edit in (whatif.Edit(rotation=30), whatif.Edit(blur=0.7), whatif.Edit(brightness=1.5, contrast=0.5)):
        out = whatif.edited(image, edit)
        assert out.dtype == torch.uint8 and out.shape == image.shape


@pytest.fixture
def trained(dataset):
    config = TrainConfig(epochs=8, batch_size=4, lr=0.01, snapshots=0)
    return train(config, dataset, torch.device("cpu")).model.eval(), dataset


def test_adversarial_noise_is_bounded_and_pushes_toward_the_runner_up(trained):
    model, dataset = trained
    normalize = normalizer(DataConfig(), "cpu")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for image in dataset.test.images:
        logits = model(normalize(image[None]))[0]
        runner_up = int(logits.topk(2).indices[1])
        same, target = whatif.adversarial(model, image, normalize, epsilon=0)
        assert torch.equal(same, image) and target == runner_up
        for steps in (1, 10):
            changed, target = whatif.adversarial(model, image, normalize, epsilon=8, steps=steps, tta="flip")
            assert (changed.int() - image.int()).abs().max() <= 8 and changed.dtype == torch.uint8
            assert model(normalize(changed[None]))[0].softmax(0)[target] > logits.softmax(0)[target]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_invisible_noise_flips_the_shipped_model_on_a_photo():
    loaded = load_model(ROOT / "models" / "default.pth")
    cat = load_for_model(ROOT / "photos" / "chelsea.jpg")
    assert loaded.classes[loaded.predict(cat[None])[0].top] == "cat"
    changed, target = whatif.adversarial(loaded.model, cat, loaded.normalizer(), epsilon=6, steps=10, tta=loaded.tta)
    assert (changed.int() - cat.int()).abs().max() <= 6  # 6/255: below what a person sees
    assert loaded.predict(changed[None])[0].top == target != loaded.classes.index("cat")


def test_concurrent_attacks_on_one_shared_model_match_one_alone(trained):
    model, dataset = trained
    normalize = normalizer(DataConfig(), "cpu")
    images = dataset.test.images[:6]
    alone = [whatif.adversarial(model, x, normalize, 6, steps=5)[0] for x in images]
    results: dict[int, torch.Tensor] = {}

    def attack(i):
        results[i] = whatif.adversarial(model, images[i % 6], normalize, 6, steps=5)[0]
    threads = [threading.Thread(target=attack, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(torch.equal(results[i], alone[i % 6]) for i in range(12))


def test_the_difference_is_amplified_around_grey(image):
    assert (whatif.amplified_difference(image, image) == whatif.GREY).all()
    changed = (image.int() + 2).clamp(0, 255).to(torch.uint8)
    shown = whatif.amplified_difference(image, changed)
    assert shown.max() == 255 and shown.float().mean() > 200
