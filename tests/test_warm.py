"""The server's start (dashboard/warm.py): the pages' imports, the data, the shipped model and its remembered
evaluation are loaded before the first visitor, into the very cache entries the pages then read."""
import json
import os
import runpy
import subprocess
import sys

import pytest
import streamlit as st
import torch
from conftest import CLASSES, ROOT, open_app, real_cifar_dir

import core.checkpoints
import core.evaluate
import core.evaluations
import dashboard.common
from core.models import Net
from dashboard import warm


def forbid(monkeypatch, *where):
    """Any call to these (module, name) pairs fails the test: the page must find their results cached."""
    for module, name in where:
        def refuse(*args, _name=name, **kwargs):
            raise AssertionError(f"{_name} ran again: the start did not load what the page needs")
        monkeypatch.setattr(module, name, refuse)


def test_the_pages_imports_are_read_from_their_files():
    names = warm.page_imports()
    assert {"torch", "pandas", "dashboard.common", "dashboard.inside", "core.charts"} <= set(names)
    assert len(names) == len(set(names))


def test_app_py_serves_an_app_whose_start_is_the_warm_up():
    """How `streamlit run app.py` imports it (each page run executes it as __main__ instead: open_app does that)."""
    module = runpy.run_path(str(ROOT / "app.py"), run_name="app")
    assert isinstance(module["app"], st.App) and module["app"]._user_lifespan is warm.lifespan


# The server's start, in a process of its own (freezing would reach into the test worker's every later collection)
START = """
import asyncio, gc, sys
from dashboard import warm

async def start():
    async with warm.lifespan(None):
        print(gc.get_freeze_count(), len(gc.get_objects()), "torchvision.transforms.v2.functional" in sys.modules)

asyncio.run(start())
"""


def test_the_start_leaves_what_the_imports_made_out_of_every_later_collection(tmp_path):
    """Streamlit collects garbage after every page run and holds the GIL while it walks what is tracked (~300,000
    objects once the pages' modules are imported: no other session runs meanwhile). After the start, those are
    frozen, so a collection walks only what came later: what the What if edits import (torchvision) included."""
    env = {**os.environ, "CIFAR_DATA": str(tmp_path / "no data"), "CIFAR_RUNS": str(tmp_path / "runs"),
           "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", START], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    frozen, tracked, torchvision_imported = out.stdout.split()[-3:]
    assert int(frozen) > 100_000 and int(tracked) < int(frozen) // 10
    assert torchvision_imported == "True"


@pytest.mark.skipif(real_cifar_dir() is None, reason="the shipped model's evaluation is of the original CIFAR-10")
def test_evaluates_first_look_finds_everything_loaded_at_the_start(monkeypatch, tmp_path):
    monkeypatch.setenv("CIFAR_DATA", str(real_cifar_dir()))
    monkeypatch.setenv("CIFAR_RUNS", str(tmp_path / "runs"))
    st.cache_resource.clear()
    warm.preload()
    forbid(monkeypatch, (dashboard.common, "load_dataset"), (core.checkpoints, "load_model"),
           (core.evaluations, "remembered_evaluate"), (core.evaluate, "evaluate"))
    at = open_app("dashboard/evaluate_page.py", {"model": "default"})
    card = json.loads((ROOT / "models" / "default.json").read_text())
    assert at.metric[0].value == f"{100 * card['test_accuracy']:.2f} %"


def test_the_start_never_computes_an_evaluation_nor_fails(monkeypatch, env):
    """A shipped model that fits the data but has no remembered evaluation, one of other classes, no data at all:
    the start loads what it can and computes nothing (the page does that when asked)."""
    models = env / "models"
    models.mkdir()
    torch.save(Net(num_classes=len(CLASSES)).state_dict(), models / "default.pth")
    (models / "default.json").write_text(json.dumps({"model": "net", "classes": list(CLASSES)}))
    monkeypatch.setenv("CIFAR_MODELS", str(models))
    st.cache_resource.clear()
    forbid(monkeypatch, (core.evaluate, "evaluate"))
    dashboard.common.load_shared()  # not through preload, which would log an exception away
    with pytest.MonkeyPatch.context() as loaded:  # both were loaded by the start: here they come from the cache
        forbid(loaded, (dashboard.common, "load_dataset"), (core.checkpoints, "load_model"))
        assert dashboard.common.dataset() is not None
        assert dashboard.common.loaded_model(models / "default.pth").classes == list(CLASSES)
    monkeypatch.delenv("CIFAR_MODELS")  # the real shipped model: ten classes, not the tiny tree's three
    dashboard.common.load_shared()
    monkeypatch.setenv("CIFAR_DATA", str(env / "nothing here"))
    dashboard.common.load_shared()
    assert dashboard.common.dataset() is None
