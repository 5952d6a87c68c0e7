"""The training optimiser (fused torch.optim.SGD over our parameter groups) against the tutorial's."""
import pytest
import torch
import torch.nn as nn

from core.config import PRESETS, TrainConfig, with_overrides
from core.models import FastNet, build_model
from core.train import optimizer_for, param_groups, train


def train_steps(optimizer_cls, config: TrainConfig, model_name: str, channels_last: bool, steps: int = 10):
    torch.manual_seed(1)
    model = build_model(model_name, 6, 10)
    if channels_last:  # the CPU presets' layout: autograd's gradients must arrive in it too
        model = model.to(memory_format=torch.channels_last)
    optimizer = optimizer_cls(model, config)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(steps * 4, 3, 32, 32, generator=gen), torch.randint(0, 10, (steps * 4,), generator=gen)
    for i in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[i * 4:(i + 1) * 4]), y[i * 4:(i + 1) * 4]).backward()
        optimizer.step()
    return model, optimizer


def tutorial_sgd(model, config):
    """What the tutorial writes (torch.optim.SGD's default per-parameter loop), over the same groups."""
    return torch.optim.SGD(param_groups(model, config), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay, nesterov=config.nesterov, foreach=False)


@pytest.mark.parametrize("model_name,channels_last,overrides", [
    ("net", False, {}),  # the tutorial: lr 0.001, momentum 0.9
    ("net", False, {"momentum": 0.0}),
    ("net", False, {"weight_decay": 5e-4, "nesterov": True, "decay_weights_only": True}),
    ("widenet", True, {"lr": 0.15, "weight_decay": 5e-4, "nesterov": True, "decay_weights_only": True,
                       "norm_lr_scale": 4.0}),
])
def test_fused_sgd_follows_the_tutorials_sgd(model_name, channels_last, overrides):
    config = with_overrides(PRESETS["tutorial"], **overrides)
    ours, ours_opt = train_steps(optimizer_for, config, model_name, channels_last)
    theirs, theirs_opt = train_steps(tutorial_sgd, config, model_name, channels_last)
    assert ours_opt.param_groups[0]["fused"]
    worst = max((p - q).abs().max().item() for p, q in zip(ours.parameters(), theirs.parameters()))
    # The same updates; only the rounding of a fused multiply-add differs, and ten steps at lr 0.15 through batch
    # norm carry it: 1.0e-6 on an AVX2-only CPU, 0.5e-6 with AVX-512. A real difference (weight decay left out or
    # put on the norms, Nesterov off) moves a parameter by 0.3 or more.
    assert worst < 1e-5
    if config.momentum:  # and the same state, so a checkpoint resumes the same either way
        for p, q in zip(ours.parameters(), theirs.parameters()):
            assert torch.allclose(ours_opt.state[p]["momentum_buffer"], theirs_opt.state[q]["momentum_buffer"],
                                  atol=1e-5)


def test_checkpoints_move_between_fused_and_plain_sgd():
    """A checkpoint's optimizer state from either loads into the other (runs saved before the switch resume)."""
    config = PRESETS["tutorial"]
    model, fused = train_steps(optimizer_for, config, "net", False, steps=2)
    plain = tutorial_sgd(model, config)
    plain.load_state_dict(fused.state_dict())
    again = optimizer_for(model, config)
    again.load_state_dict(plain.state_dict())
    for p in model.parameters():
        assert torch.equal(plain.state[p]["momentum_buffer"], fused.state[p]["momentum_buffer"])
        assert torch.equal(again.state[p]["momentum_buffer"], fused.state[p]["momentum_buffer"])


CPU = torch.device("cpu")


def test_weight_decay_split_and_frozen_parameters():
    model = FastNet(4)
    one = param_groups(model, TrainConfig())
    assert len(one) == 1 and all(p.requires_grad for p in one[0]["params"])
    assert all(p is not model.whiten.weight for p in one[0]["params"])
    decayed, free = param_groups(model, TrainConfig(decay_weights_only=True))
    assert all(p.dim() == 4 or p is model.head.weight for p in decayed["params"])
    assert free["weight_decay"] == 0.0 and all(p.dim() == 1 for p in free["params"])
    assert len(decayed["params"]) + len(free["params"]) == len(one[0]["params"])
    # a norm lr scale splits the rest once more: the stem's bias keeps the lr, the norms get the scale
    decayed, bias, norms = param_groups(model, TrainConfig(decay_weights_only=True, norm_lr_scale=64.0))
    assert bias["params"] == [model.whiten.bias] and (bias["lr_scale"], bias["weight_decay"]) == (1.0, 0.0)
    assert norms["lr_scale"] == 64.0 and len(norms["params"]) == 12  # 6 BatchNorms, weight and bias


def test_norm_options_reach_the_optimizer_and_frozen_scales_stay_one(dataset):
    config = TrainConfig(model="fastnet", width=4, epochs=1, batch_size=16, lr=0.05, norm_lr_scale=8.0,
                         freeze_norm_scales=True, decay_weights_only=True, weight_decay=5e-4)
    saved = []
    result = train(config, dataset, CPU, save_checkpoint=saved.append)
    groups = saved[-1]["optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == pytest.approx([0.05, 0.05, 0.4])  # constant schedule x lr_scale
    assert [g["weight_decay"] for g in groups] == [5e-4, 0.0, 0.0]
    norms = [m for m in result.model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in norms)  # frozen at 1
    assert all(m.bias.abs().sum() > 0 for m in norms)  # while the biases learned
    # a resumed run rebuilds the same three groups, loads their state and keeps the scales frozen
    again = train(TrainConfig(**{**config.to_dict(), "epochs": 2}), dataset, CPU, resume=saved[-1])
    assert again.epochs_done == 2
    assert all(torch.equal(m.weight, torch.ones_like(m.weight))
               for m in again.model.modules() if isinstance(m, nn.BatchNorm2d))
