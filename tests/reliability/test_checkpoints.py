"""Checkpoints from outside: only plain tensors are loaded, and every refusal says why."""
import io
import os
import pickle

import pytest
import torch
from conftest import HOSTILE_PICKLE

from core.checkpoints import CheckpointError, load_model
from core.models import Net


def _saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@HOSTILE_PICKLE
def test_a_pickle_that_runs_code_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for name, data in {"plain.pth": pickle.dumps(Payload()),
                       "in-a-dict.pth": pickle.dumps({"conv1.weight": Payload()}),
                       "torch-saved.pth": _saved({"conv1.weight": Payload()})}.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match="not a plain PyTorch weights file"):
            load_model(tmp_path / name)
        with pytest.raises(CheckpointError, match="not a plain PyTorch weights file"):
            load_model(data, name=name)
    assert not marker.exists()


@pytest.mark.parametrize("make,fragment", [
    (lambda: _saved(torch.nn.Linear(4, 2).state_dict()), "matches no known architecture"),
    (lambda: _saved(Net(num_classes=7).state_dict()), None),  # loads: 7 classes, named class 0..6
    (lambda: _saved(Net().state_dict())[:3000], "not a plain PyTorch weights file"),  # truncated
    (lambda: os.urandom(4096), "not a plain PyTorch weights file"),
    (lambda: b"", "not a plain PyTorch weights file"),
    (lambda: _saved([1, 2, 3]), "holds no state_dict"),
])
def test_damaged_or_foreign_checkpoints_are_named(make, fragment):
    if fragment is None:
        assert load_model(make()).classes == [f"class {i}" for i in range(7)]
        return
    with pytest.raises(CheckpointError, match=fragment):
        load_model(make(), name="upload.pth")


def test_class_count_mismatch_names_both_counts():
    with pytest.raises(CheckpointError, match="predicts 7 classes but the data has 10"):
        load_model(_saved(Net(num_classes=7).state_dict()), num_classes=10)
