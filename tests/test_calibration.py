"""Temperature scaling and the calibration error, on synthetic logits whose true temperature is known."""
import pytest
import torch

from core.calibration import fit_temperature, log_probabilities, reliability, scaled


def calibrated_logits(n=10_000, classes=10, seed=0):
    """Logits and labels drawn from softmax(logits) itself: calibrated by construction."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=gen, dtype=torch.float64) * 2.0
    labels = torch.multinomial(torch.softmax(logits, dim=1), 1, generator=gen).flatten()
    return logits, labels


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_fit_recovers_the_temperature_of_over_and_under_confident_logits(true_temperature):
    logits, labels = calibrated_logits()
    shown = logits / true_temperature  # T < 1 in the world means the model is over-confident by 1 / T
    assert fit_temperature(shown, labels) == pytest.approx(1 / true_temperature, rel=0.05)


def test_temperature_scaling_lowers_the_calibration_error_and_keeps_every_prediction():
    logits, labels = calibrated_logits(seed=1)
    over = torch.softmax(logits * 3, dim=1)  # three times too sharp
    temperature = fit_temperature(log_probabilities(over), labels)
    fixed = scaled(over, temperature)
    before, after = reliability(over, labels).ece, reliability(fixed, labels).ece
    assert temperature == pytest.approx(3, rel=0.05)
    assert before > 0.1 and after < 0.02
    assert torch.equal(fixed.argmax(dim=1), over.argmax(dim=1))
    assert torch.allclose(fixed.sum(dim=1), torch.ones(len(fixed), dtype=fixed.dtype))
    assert scaled(over, 1.0) is over


def test_reliability_bins_by_confidence():
    probabilities = torch.tensor([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [1.0, 0.0]])
    labels = torch.tensor([0, 1, 0, 0])
    r = reliability(probabilities, labels, bins=10)
    assert r.count == [1, 3]  # 0.55 in bin 5; 0.95, 0.95 and 1.0 (the edge joins the top bin) in bin 9
    assert r.confidence == pytest.approx([0.55, (0.95 + 0.95 + 1.0) / 3])
    assert r.accuracy == pytest.approx([1.0, 2 / 3])
    assert r.ece == pytest.approx((1 * 0.45 + 3 * abs(2.9 / 3 - 2 / 3)) / 4)
    assert reliability(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)).ece == 0.0
    assert fit_temperature(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)) == 1.0


def test_a_loaded_model_applies_its_runs_temperature(tmp_path):
    import json

    from core.checkpoints import load_model
    from core.models import Net

    torch.manual_seed(0)
    run = tmp_path / "run"
    run.mkdir()
    torch.save(Net().state_dict(), run / "model.pth")
    (run / "config.json").write_text(json.dumps({"train": {"model": "net"}, "classes": [str(i) for i in range(10)]}))
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    plain = load_model(run)
    assert plain.temperature == 1.0  # no metrics yet: nothing fitted
    (run / "metrics.json").write_text(json.dumps({"temperature": 2.0}))
    warm = load_model(run)
    assert warm.temperature == 2.0
    logits = warm.model(warm.normalizer()(images)).detach()
    for got, row in zip(warm.predict(images), logits):
        assert got.probabilities == pytest.approx(torch.softmax(row / 2.0, 0).tolist(), abs=1e-6)
        assert got.top == int(row.argmax())
    for bad in (-1, 0, "hot", None, 1e9):  # anything odd in the file counts as no temperature
        (run / "metrics.json").write_text(json.dumps({"temperature": bad}))
        assert load_model(run).temperature == 1.0
