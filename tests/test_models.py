import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import HOSTILE_PICKLE

from core.checkpoints import CheckpointError, load_state_dict, model_from_state_dict
from core.config import TrainConfig
from core.models import MODELS, FastNet, Net, WideNet, build_model
from core.train import prepare_sample, train


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


@HOSTILE_PICKLE
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


CPU = torch.device("cpu")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_learns_the_tiny_data_and_reloads_from_its_weights(name, dataset):
    config = TrainConfig(model=name, width=4, epochs=8, batch_size=8, lr=0.05, schedule="onecycle", seed=1)
    events = []
    result = train(config, dataset, CPU, on_event=events.append)
    accuracies = [e["test_accuracy"] for e in events if e["type"] == "epoch"]
    assert accuracies[-1] >= 0.8  # three tinted classes: chance is 1/3
    model, found = model_from_state_dict(result.model.state_dict())  # recognised from the shapes alone
    assert found == name and isinstance(model, type(result.model))
    x = torch.randn(3, 3, 32, 32)
    assert torch.equal(model.eval()(x), result.model.eval()(x))
    assert MODELS[name].description and dict(model.named_modules()).get(MODELS[name].cam_layer) is not None


def test_widenet_and_fastnet_shapes():
    assert WideNet(16)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert FastNet(8, num_classes=4)(torch.zeros(2, 3, 32, 32)).shape == (2, 4)
    assert build_model("fastnet", 64, 10).layer3.conv2.out_channels == 256  # airbench's 64/256/256


def test_fastnet_stem_whitens_patches():
    torch.manual_seed(0)
    mix = torch.tensor([[1.0, 0.8, 0.6], [0.0, 0.5, 0.4], [0.0, 0.0, 0.3]])  # strongly correlated channels
    images = torch.einsum("ij,njhw->nihw", mix, torch.randn(200, 3, 32, 32))
    model = FastNet(8)
    assert not model.whiten.weight.requires_grad  # frozen: the optimizer never sees it
    model.prepare(images)
    nn.init.zeros_(model.whiten.bias)
    out = model.whiten(images)[:, :12].permute(0, 2, 3, 1).reshape(-1, 12)
    covariance = torch.cov(out.T)
    assert torch.allclose(covariance, torch.eye(12), atol=0.05)
    assert torch.equal(model.whiten.weight[12:], -model.whiten.weight[:12])


def test_prepare_runs_before_training_and_not_on_resume(dataset):
    config = TrainConfig(model="fastnet", width=4, epochs=2, batch_size=8, lr=0.05, ema=0.9)
    saved = []
    first = train(config, dataset, CPU, save_checkpoint=lambda c: saved.append(copy.deepcopy(c)))  # as if on disk
    stem = first.model.whiten.weight
    assert stem.abs().sum() > 0 and not torch.equal(stem, FastNet(4).whiten.weight)
    resumed = train(config, dataset, CPU, resume=saved[0])  # from the end of epoch 1
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(),
                                                 resumed.model.state_dict().values()))


def test_prepare_sees_every_class_of_a_class_sorted_set():
    labels = torch.arange(10).repeat_interleave(5000)  # as a folder tree loads: class by class
    assert torch.bincount(prepare_sample(labels)).tolist() == [500] * 10
    assert torch.equal(prepare_sample(labels[:300]), labels[:300])  # a small set is used whole
