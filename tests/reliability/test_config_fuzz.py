"""The training config through the validation the CLI and the dashboard share, fuzzed."""
import math
from dataclasses import fields

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import ConfigError, TrainConfig, with_overrides
from core.data import DataConfig, load_dataset
from core.devices import choose_device
from core.evaluate import TTA
from core.launcher import train_args
from core.models import MODELS
from core.train import train

VALID = {
    "model": st.sampled_from(sorted(MODELS)), "width": st.integers(1, 64), "epochs": st.integers(1, 1000),
    "batch_size": st.integers(1, 65536), "lr": st.floats(1e-6, 10), "momentum": st.floats(0, 0.999),
    "weight_decay": st.floats(0, 1), "schedule": st.sampled_from(["constant", "cosine", "onecycle"]),
    "augment": st.booleans(), "device": st.sampled_from(["auto", "cpu"]), "seed": st.integers(0, 2**40),
    "log_interval": st.integers(1, 10**6), "threads": st.integers(0, 2),
    "nesterov": st.booleans(), "label_smoothing": st.floats(0, 0.999), "decay_weights_only": st.booleans(),
    "ema": st.floats(0, 0.999), "tta": st.sampled_from(TTA), "channels_last": st.booleans(), "bf16": st.booleans(),
    "compile": st.just(False),  # compiling takes tens of seconds a time; test_compile.py compiles
    "translate": st.integers(0, 8), "norm_lr_scale": st.floats(1e-3, 1000), "freeze_norm_scales": st.booleans(),
}
INVALID = {
    "width": st.one_of(st.integers(max_value=0), st.integers(min_value=513)),
    "epochs": st.one_of(st.integers(max_value=0), st.integers(min_value=1001)),
    "batch_size": st.one_of(st.integers(max_value=0), st.integers(min_value=65537)),
    "lr": st.one_of(st.floats(max_value=0), st.floats(min_value=10, exclude_min=True), st.just(math.nan),
                    st.just(math.inf)),
    "momentum": st.one_of(st.floats(max_value=0, exclude_max=True), st.floats(min_value=1), st.just(math.nan)),
    "weight_decay": st.one_of(st.floats(max_value=0, exclude_max=True), st.floats(min_value=1, exclude_min=True)),
    "schedule": st.text().filter(lambda s: s not in ("constant", "cosine", "onecycle")),
    "model": st.text().filter(lambda s: s not in MODELS),
    "device": st.text().filter(lambda s: s not in ("auto", "cpu", "cuda", "mps") and not s.startswith("cuda:")),
    "seed": st.integers(max_value=-1),
    "log_interval": st.integers(max_value=0),
    "threads": st.one_of(st.integers(max_value=-1), st.integers(min_value=1025)),
    "augment": st.one_of(st.integers(), st.text(), st.none()),
    "label_smoothing": st.one_of(st.floats(max_value=0, exclude_max=True), st.floats(min_value=1), st.just(math.nan)),
    "ema": st.one_of(st.floats(max_value=0, exclude_max=True), st.floats(min_value=1), st.just(math.inf)),
    "tta": st.text().filter(lambda s: s not in TTA),
    "compile": st.one_of(st.integers(), st.text(), st.none()),
    "translate": st.one_of(st.integers(max_value=-1), st.integers(min_value=9)),
    "norm_lr_scale": st.one_of(st.floats(max_value=0), st.floats(min_value=1000, exclude_min=True),
                               st.just(math.nan)),
}
KINDS = {"int": st.one_of(st.text(), st.none(), st.booleans(), st.floats()), "float": st.one_of(st.text(), st.none()),
         "str": st.one_of(st.integers(), st.none()), "bool": st.one_of(st.integers(), st.text(), st.none())}


@st.composite
def invalid_configs(draw):
    values = {name: draw(s) for name, s in VALID.items()}
    broken = draw(st.lists(st.sampled_from(sorted(INVALID)), min_size=1, max_size=3, unique=True))
    wrong_type = draw(st.sampled_from([f.name for f in fields(TrainConfig)]))
    for name in broken:
        values[name] = draw(INVALID[name])
    if values["nesterov"] is True and values["momentum"] == 0:
        broken.append("nesterov")  # Nesterov needs momentum
    if draw(st.booleans()):
        values[wrong_type] = draw(KINDS[{f.name: f.type for f in fields(TrainConfig)}[wrong_type]])
        broken.append(wrong_type)
    return values, set(broken)


@settings(max_examples=300, deadline=None)
@given(invalid_configs())
def test_every_invalid_config_is_rejected_naming_what_is_wrong(case):
    values, broken = case
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict(values)
    assert err.value.problems and set(err.value.problems) <= broken
    assert all(isinstance(m, str) and m for m in err.value.problems.values())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from conftest import make_tree
    root = make_tree(tmp_path_factory.mktemp("fuzz") / "tree", train_per_class=4, test_per_class=2)
    return load_dataset(DataConfig(data_dir=str(root), download=False, cache_dir=str(root / ".c")))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.fixed_dictionaries(VALID).filter(lambda v: not (v["nesterov"] and v["momentum"] == 0)))
def test_every_valid_config_starts(tiny, values):
    config = TrainConfig.from_dict(values)
    from core.cli import _parser  # the CLI accepts exactly these flags and rebuilds the same config
    args = _parser().parse_args(["train", *train_args(config)])
    assert TrainConfig.from_dict({f.name: getattr(args, f.name) for f in fields(TrainConfig)}) == config
    steps = {"n": 0}

    def after_two_steps():
        steps["n"] += 1
        return steps["n"] > 2

    saved, threads = [], torch.get_num_threads()
    try:
        # started at width <= 16: a wide fastnet-deep under emulated bf16 (AVX2-only CPUs) took seconds an example
        # for the same code path; validation and the CLI above saw the width drawn
        result = train(with_overrides(config, width=min(config.width, 16)), tiny, choose_device(config.device),
                       should_stop=after_two_steps,
                       save_checkpoint=saved.append)
    finally:
        torch.set_num_threads(threads)  # a config's `threads` must not leak into later tests
    assert result.status in ("stopped", "done") and saved
