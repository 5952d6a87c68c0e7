import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from core.checkpoints import CheckpointError, load_state_dict, model_from_state_dict
from core.models import MODELS, Net, build_model


class TutorialNet(nn.Module):
    """The tutorial's class, verbatim."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


def test_our_state_dict_loads_into_the_tutorials_class(tmp_path):
    ours = Net()
    torch.save(ours.state_dict(), tmp_path / "cifar_net.pth")
    theirs = TutorialNet()
    theirs.load_state_dict(torch.load(tmp_path / "cifar_net.pth", weights_only=True))
    x = torch.randn(4, 3, 32, 32)
    assert torch.equal(ours(x), theirs(x))


def test_the_tutorials_state_dict_loads_here(tmp_path):
    theirs = TutorialNet()
    torch.save(theirs.state_dict(), tmp_path / "cifar_net.pth")
    model, name = model_from_state_dict(load_state_dict(tmp_path / "cifar_net.pth"))
    assert name == "net"
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(x), theirs(x))


def test_same_layers_and_parameter_count_as_the_tutorial():
    assert [k for k in Net().state_dict()] == [k for k in TutorialNet().state_dict()]
    assert sum(p.numel() for p in Net().parameters()) == 62006


def test_width_and_classes_are_parameters_and_inferred_back():
    model = build_model("net", width=32, num_classes=7)
    assert model.conv1.out_channels == 32 and model.conv2.in_channels == 32
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 7)
    assert MODELS["net"].infer(model.state_dict()) == (32, 7)


def test_class_count_mismatch_is_named():
    with pytest.raises(CheckpointError, match="7 classes but the data has 10"):
        model_from_state_dict(build_model("net", 6, 7).state_dict(), num_classes=10)


def test_other_architecture_is_refused_with_reason():
    state = nn.Linear(3, 2).state_dict()
    with pytest.raises(CheckpointError, match="matches no known architecture"):
        model_from_state_dict(state)


def test_code_carrying_pickle_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    import pickle
    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"conv1.weight": Evil()}))
    with pytest.raises(CheckpointError, match="not a plain PyTorch weights file"):
        load_state_dict(tmp_path / "evil.pth")
    assert not marker.exists()


def test_random_bytes_and_missing_file_are_clear_errors(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(CheckpointError, match="not a plain PyTorch weights file"):
        load_state_dict(tmp_path / "junk.pth")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_state_dict(tmp_path / "missing.pth")
