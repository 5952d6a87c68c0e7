""""None of the ten": the familiarity scores, the threshold, the AUROC, the reference outliers, and the verdict
where a loaded model predicts (CLI)."""
import json
import math

import pytest
import torch
from conftest import ROOT
from PIL import Image
from test_cli import cli

from core import ood
from core.checkpoints import load_model
from core.images import FRAMING, FRAMINGS, load_for_model, to_32
from core.models import Net


def test_scores_are_the_calibrated_top_probability_and_the_negative_energy():
    logits = torch.tensor([[4.0, 0.0, 0.0], [1.0, 1.0, 1.0], [8.0, 4.0, 4.0]])
    top = ood.familiarity(logits, 2.0, "max-probability")
    assert torch.allclose(top, torch.softmax(logits / 2, 1).amax(1).double())
    energy = ood.familiarity(logits, 2.0, "energy")
    assert torch.allclose(energy, 2 * torch.logsumexp(logits.double() / 2, 1))
    # the top probability cannot tell row 0 from row 2 (the same gaps); the energy sees row 2's larger logits
    assert torch.isclose(top[0], top[2]) and energy[2] > energy[0] > energy[1]
    with pytest.raises(ValueError, match="energy"):
        ood.familiarity(logits, 1.0, "entropy")


def test_threshold_keeps_the_chosen_share_of_familiar_images():
    scores = torch.arange(1000, dtype=torch.float64)
    t = ood.threshold(scores)
    assert (scores >= t).float().mean() == pytest.approx(ood.KEEP, abs=0.002)
    assert ood.threshold(scores, keep=0.5) == pytest.approx(499.5)
    with pytest.raises(ValueError, match="no images"):
        ood.threshold(torch.zeros(0))


def test_auroc_is_the_chance_a_familiar_image_outscores_an_outlier():
    assert ood.auroc(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 2.0])) == 1.0
    assert ood.auroc(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])) == 0.0
    assert ood.auroc(torch.ones(5), torch.ones(7)) == 0.5  # ties count half
    generator = torch.Generator().manual_seed(0)
    familiar = torch.randn(300, generator=generator).round(decimals=1) + 1  # rounded: plenty of ties
    outliers = torch.randn(200, generator=generator).round(decimals=1)
    pairs = (familiar[:, None] > outliers[None]).double() + 0.5 * (familiar[:, None] == outliers[None]).double()
    assert ood.auroc(familiar, outliers) == pytest.approx(pairs.mean().item(), abs=1e-12)
    with pytest.raises(ValueError, match="both"):
        ood.auroc(familiar, torch.zeros(0))


def test_figures_set_the_threshold_on_the_validation_logits_with_the_temperature():
    logits = torch.randn(400, 10, generator=torch.Generator().manual_seed(1)) * 3
    figures = ood.figures(logits, 1.7)
    assert figures["ood_score"] == ood.SCORE
    assert figures["ood_threshold"] == pytest.approx(ood.threshold(ood.familiarity(logits, 1.7)))


def test_the_reference_outliers_are_photos_and_synthetic_images_and_always_the_same():
    photos = ood.outlier_photos()
    assert len(photos) == 17 and "chelsea.jpg" not in {p.name for p in photos}  # the cat is one of the ten
    images = ood.outlier_images()
    assert images.dtype == torch.uint8 and images.shape[1:] == (3, 32, 32)
    assert len(images) == 6 * len(photos) + 16 + 16 + 24 + 32
    assert torch.equal(images, ood.outlier_images())
    assert torch.equal(images[0], load_for_model(photos[0]))  # first the photo whole, then its five crops
    assert len({bytes(i.numpy()) for i in images}) > 0.9 * len(images)  # few duplicates (flat colours may repeat)


def test_the_band_flags_at_most_one_in_twenty_shifted_images_and_leaves_the_rest_of_the_clean_tail_unsure():
    clean = torch.arange(1000, dtype=torch.float64)  # scores of held-out images of the classes
    shifted = clean - 300  # the same images under photo shifts score lower
    band = ood.band(ood.threshold(clean), clean, shifted)
    assert (shifted < band["ood_threshold"]).double().mean() <= 1 - ood.KEEP + 1e-9
    assert band["ood_threshold"] == pytest.approx(ood.threshold(shifted))
    assert band["ood_unsure_below"] == pytest.approx(ood.threshold(clean))  # the clean rule's threshold
    # shifts that somehow score higher never move the flag above the clean rule's threshold
    assert ood.band(ood.threshold(clean), clean, clean + 300)["ood_threshold"] == pytest.approx(ood.threshold(clean))
    answers = [ood.answer(s, band["ood_threshold"], band["ood_unsure_below"]) for s in (-400.0, 0.0, 999.0)]
    assert answers == [ood.UNFAMILIAR, ood.UNSURE, ood.FAMILIAR]
    assert ood.answer(0.0, -1.0) == ood.FAMILIAR and ood.answer(0.0, None) is None  # two answers without a band


def test_verdict_lines():
    assert ood.verdict(1.5, 1.0, 10, 2.0).startswith("not sure this is one of the ten classes")
    assert ood.verdict(0.5, 1.0, 10, 2.0).startswith("this doesn't look like any of the ten classes")
    assert ood.verdict(2.5, 1.0, 10, 2.0).startswith("looks like one of the ten classes")
    assert ood.verdict(1.0, 2.0, 10).startswith("this doesn't look like any of the ten classes")
    assert ood.verdict(3.0, 2.0, 10).startswith("looks like one of the ten classes")
    assert "any of the 3 classes" in ood.verdict(1.0, 2.0, 3)
    assert "no threshold" in ood.verdict(1.0, None, 10)


def test_framings_crop_the_centre_or_pad_or_squeeze_the_whole():
    wide = Image.new("RGB", (300, 100), (0, 0, 255))
    wide.paste((255, 0, 0), (100, 0, 200, 100))  # a red square in the middle of a blue strip
    crop = to_32(wide, "crop").getpixel((0, 16))
    assert crop[0] > 200 and crop[2] < 50  # all red: the centre square
    whole = to_32(wide, "whole")
    assert whole.getpixel((1, 16))[2] > 200 and whole.getpixel((16, 16))[0] > 200  # blue sides, red middle
    # padded in the border's mean colour, not black: 3/4 of the border pixels are blue, 1/4 red
    assert all(abs(a - b) <= 3 for a, b in zip(whole.getpixel((16, 1)), (64, 0, 191)))
    squeezed = to_32(wide, "squeeze")  # all of it, no padding: each third of the strip a third of the square
    assert squeezed.getpixel((2, 16))[2] > 200 and squeezed.getpixel((16, 1))[0] > 200
    assert squeezed.getpixel((29, 30))[2] > 200
    assert set(FRAMINGS) == {"crop", "whole", "squeeze"}
    with pytest.raises(ValueError, match="crop"):
        to_32(wide, "stretch")


def _run_with_threshold(tmp_path, threshold, score=ood.SCORE):
    run = tmp_path / "run"
    run.mkdir()
    torch.save(Net().state_dict(), run / "model.pth")
    (run / "config.json").write_text(json.dumps({"classes": ["plane", "car", "bird", "cat", "deer", "dog", "frog",
                                                             "horse", "ship", "truck"], "train": {"model": "net"}}))
    (run / "metrics.json").write_text(json.dumps({"temperature": 1.5, "ood_score": score,
                                                  "ood_threshold": threshold}))
    return run


def test_a_loaded_model_flags_images_below_its_threshold(tmp_path):
    image = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    high = load_model(_run_with_threshold(tmp_path, 1e6))
    assert high.ood_threshold == 1e6 and high.predict(image)[0].unfamiliar is True
    (tmp_path / "run" / "metrics.json").write_text(json.dumps({"ood_score": ood.SCORE, "ood_threshold": -1e6}))
    assert load_model(tmp_path / "run").predict(image)[0].unfamiliar is False
    # a threshold set on another score, or not a number, is no threshold
    for odd in ({"ood_score": "entropy", "ood_threshold": 1.0}, {"ood_score": ood.SCORE, "ood_threshold": "high"},
                {"ood_score": ood.SCORE, "ood_threshold": True}):
        (tmp_path / "run" / "metrics.json").write_text(json.dumps(odd))
        loaded = load_model(tmp_path / "run")
        assert loaded.ood_threshold is None and loaded.predict(image)[0].unfamiliar is None
    prediction = loaded.predict(image)[0]
    assert math.isfinite(prediction.familiarity)
    # a band: both ends, in order, or two answers
    for unsure_below, band in ((1e6, 1e6), (-2e6, None), ("x", None)):
        (tmp_path / "run" / "metrics.json").write_text(json.dumps({"ood_score": ood.SCORE, "ood_threshold": -1e6,
                                                                   "ood_unsure_below": unsure_below}))
        loaded = load_model(tmp_path / "run")
        assert loaded.ood_unsure_below == band
        assert loaded.predict(image)[0].answer == (ood.UNSURE if band else ood.FAMILIAR)


def test_predict_prints_the_verdict(tmp_path):
    run = _run_with_threshold(tmp_path, 1e6)
    Image.new("RGB", (64, 48), (20, 200, 20)).save(tmp_path / "green.png")
    out = cli("predict", run, tmp_path / "green.png", "--framing", "whole")
    assert out.returncode == 0, out.stderr
    assert "this doesn't look like any of the ten classes" in out.stdout and out.stdout.count("%") == 3
    (run / "metrics.json").write_text(json.dumps({"ood_score": ood.SCORE, "ood_threshold": -1e6}))
    assert "looks like one of the ten classes" in cli("predict", run, tmp_path / "green.png").stdout
    (run / "metrics.json").write_text(json.dumps({"ood_score": ood.SCORE, "ood_threshold": -1e6,
                                                  "ood_unsure_below": 1e6}))
    assert "not sure this is one of the ten classes" in cli("predict", run, tmp_path / "green.png").stdout
    bad = cli("predict", run, tmp_path / "green.png", "--framing", "stretch")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_knn_scores_the_kth_nearest_training_feature_by_cosine_similarity():
    bank = torch.tensor([[1.0, 0.0], [2.0, 0.1], [3.0, -0.1], [0.0, 1.0]])  # three along x, one along y
    near_x, between = torch.tensor([[5.0, 0.0]]), torch.tensor([[1.0, 1.0]])
    one, three = ood.knn_familiarity(near_x, bank, k=1), ood.knn_familiarity(near_x, bank, k=3)
    assert one.item() == pytest.approx(1.0) and three.item() == pytest.approx(2 / math.hypot(2, 0.1))
    # the third nearest of a point along y is along x: far, so it scores below the point at 45°
    assert ood.knn_familiarity(torch.tensor([[0.0, 1.0]]), bank, k=3) < ood.knn_familiarity(between, bank, k=3)
    assert ood.knn_familiarity(near_x, bank, k=99).item() == pytest.approx(0.0)  # k past the bank: its farthest


def test_mahalanobis_measures_distance_in_units_of_the_features_own_spread():
    generator = torch.Generator().manual_seed(0)
    spread = torch.tensor([10.0, 0.1])  # wide along x, narrow along y, for both classes
    bank = torch.cat([torch.randn(500, 2, generator=generator) * spread + torch.tensor([0.0, 0.0]),
                      torch.randn(500, 2, generator=generator) * spread + torch.tensor([0.0, 5.0])])
    labels = torch.tensor([3] * 500 + [7] * 500)  # class indices need not start at 0
    means, precision = ood.mahalanobis_fit(bank, labels)
    assert torch.allclose(means, torch.tensor([[0.0, 0.0], [0.0, 5.0]], dtype=torch.float64), atol=1.0)
    scores = ood.mahalanobis_familiarity(torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 0.5], [0.0, 5.0]]),
                                         means, precision)
    # 5 along the wide axis is closer than 0.5 along the narrow one; each class mean is home
    assert scores[0] > scores[1] > scores[2] and scores[3] > scores[2]
    assert scores[1].item() == pytest.approx(-(5 / 10) ** 2, rel=0.2)


def test_labelled_photos_read_class_folders_and_none(tmp_path):
    for folder, name in (("cat", "a.jpg"), ("none", "b.jpg"), ("cat", "c.jpg"), ("lorry", "d.jpg")):
        (tmp_path / folder).mkdir(exist_ok=True)
        Image.new("RGB", (8, 8)).save(tmp_path / folder / name)
    found = [(p.name, label) for p, label in ood.labelled_photos(["airplane", "cat"], tmp_path)]
    assert found == [("b.jpg", ood.NONE_OF_THEM), ("a.jpg", 1), ("c.jpg", 1)]  # "lorry" is no class: not read
    with pytest.raises(FileNotFoundError, match="scripts.package_photos"):
        ood.labelled_photos(["cat"], tmp_path / "missing")


def test_the_shipped_real_photos_cover_the_ten_classes_and_each_is_credited():
    from core.data import CIFAR10_CLASSES
    labelled = ood.labelled_photos(CIFAR10_CLASSES)
    assert {label for _, label in labelled} == {ood.NONE_OF_THEM, *range(10)}
    readme = (ood.VALIDATION_PHOTOS / "README.md").read_text()
    listed = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| `")}
    assert listed == {p.relative_to(ood.VALIDATION_PHOTOS).as_posix() for p, _ in labelled}
    assert sum(label == ood.NONE_OF_THEM for _, label in labelled) >= 50


def test_the_real_photo_figures_count_each_group_as_a_person_would_see_it(tmp_path):
    from benchmarks.real_photos import verdicts
    from core.data import CIFAR10_CLASSES
    loaded = load_model(_run_with_threshold(tmp_path, 1e6))  # every photo below the flag
    loaded.classes = list(CIFAR10_CLASSES)
    loaded.model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(10))
    with torch.no_grad():
        loaded.model(torch.zeros(1, 3, 32, 32))
        loaded.model[1].weight.zero_()
        loaded.model[1].bias.copy_(torch.eye(10)[CIFAR10_CLASSES.index("bird")])  # it always says "bird"
    seen = verdicts(loaded, "crop")
    labelled = ood.labelled_photos(CIFAR10_CLASSES)
    ten = [label for _, label in labelled if label != ood.NONE_OF_THEM]
    assert (seen["photos_of_the_ten"], seen["photos_of_none"]) == (len(ten), len(labelled) - len(ten))
    assert seen["accuracy"] == round(ten.count(CIFAR10_CLASSES.index("bird")) / len(ten), 4)
    assert seen["ten_flagged"] == seen["none_flagged"] == 1.0 and seen["ten_not_sure"] == 0.0


def test_the_shipped_cards_real_photo_figures_are_what_the_model_does_now():
    from benchmarks.real_photos import verdicts
    loaded = load_model(ROOT / "models" / "default.pth")
    recorded = loaded.card["photos"]["real_photos"]
    assert [r["framing"] for r in recorded] == sorted(FRAMINGS, key=lambda f: f != FRAMING)
    assert [verdicts(loaded, r["framing"]) for r in recorded] == recorded
