import json
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from core import snapshots
from core.checkpoints import load_model
from core.cli import main
from core.config import TrainConfig
from core.interpret import predict
from core.replay import replay, replay_lines
from core.runs import Run
from core.train import train

TINY = TrainConfig(epochs=3, batch_size=4, lr=0.01, log_interval=3)


@pytest.fixture
def run_dir(dataset, tmp_path):
    run = Run(tmp_path / "run").create({"train": TINY.to_dict(), "classes": list(dataset.classes)})
    train(TINY, dataset, torch.device("cpu"), save_checkpoint=run.save_checkpoint)
    return run.path


def test_the_replay_runs_from_the_initial_weights_to_the_trained_model(run_dir, dataset):
    loaded = load_model(run_dir)
    kept = snapshots.load(snapshots.file_for(loaded.path))
    image = dataset.test.images[0]
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    frames = replay(loaded, kept, image)
    assert [f.step for f in frames] == kept.steps and [f.accuracy for f in frames] == kept.accuracy
    assert all(torch.equal(before[k], v) for k, v in loaded.model.state_dict().items())  # the shared one untouched
    # the last frame is the trained model (half precision), without a temperature
    trained = predict(loaded.model, image[None], loaded.normalizer(), tta=loaded.tta)[0]
    assert frames[-1].top == trained.top
    assert np.allclose(frames[-1].probabilities, trained.probabilities, atol=0.02)
    assert frames[0].probabilities != frames[-1].probabilities
    assert all(f.heat.shape == (32, 32) and f.filters.dtype == torch.uint8 for f in frames)
    assert not torch.equal(frames[0].filters, frames[-1].filters)  # the first layer learned
    lines = replay_lines(frames, loaded.classes)
    assert len(lines) == len(frames) and lines[0].startswith("step      0 (epoch  0.00, test accuracy")


def test_replays_on_one_shared_model_in_many_threads_match_one_alone(run_dir, dataset):
    loaded = load_model(run_dir)
    kept = snapshots.load(snapshots.file_for(loaded.path))
    images = dataset.test.images[:4]
    alone = [replay(loaded, kept, x) for x in images]
    results = {}

    def one(i):
        results[i] = replay(loaded, kept, images[i % 4])
    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, frames in results.items():
        assert [f.probabilities for f in frames] == [f.probabilities for f in alone[i % 4]]
        assert all(np.array_equal(a.heat, b.heat) for a, b in zip(frames, alone[i % 4]))


def test_snapshots_of_another_network_are_refused(run_dir, dataset, tmp_path):
    loaded = load_model(run_dir)
    other = snapshots.Snapshots(9)
    other.add(0, torch.nn.Linear(3, 2).state_dict(), 0.5)
    with pytest.raises(ValueError, match="belong to another network"):
        replay(loaded, other, dataset.test.images[0])


def test_predict_replay_prints_the_top_class_at_each_snapshot(run_dir, dataset, tmp_path, capsys):
    photo = tmp_path / "photo.png"
    Image.fromarray(dataset.test.images[0].permute(1, 2, 0).numpy()).save(photo)
    assert main(["predict", "--replay", str(run_dir), str(photo)]) == 0
    out = capsys.readouterr().out.splitlines()
    kept = snapshots.load(run_dir / "snapshots.pt")
    assert out[0] == f"{photo}:" and len(out) == 1 + len(kept.steps)
    classes = json.loads((run_dir / "config.json").read_text())["classes"]
    assert all(any(f": {c} " in line for c in classes) and "test accuracy" in line for line in out[1:])
    (run_dir / "snapshots.pt").unlink()
    assert main(["predict", "--replay", str(run_dir), str(photo)]) == 1
    assert "has no weight snapshots to replay" in capsys.readouterr().err
