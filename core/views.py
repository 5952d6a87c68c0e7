"""A private view of a shared model: what lets any number of threads read one loaded model at once.

The dashboard loads a model once (`st.cache_resource`) and every visitor's thread runs it at the same moment. A
forward hook registered on that shared module sees every thread's forward pass, not just its own caller's (Grad-CAM
then differentiates another visitor's activations: "One of the differentiated Tensors does not require grad"), and
registering or removing one while another thread runs the model changes a dict that thread iterates. A view is a
copy of the module tree, a few microseconds to make, that shares every parameter and buffer tensor with the model
(no memory) but owns its hooks and its train/eval flags; a computation hooks and switches its own view, so the
shared model is never changed.
"""
from __future__ import annotations

import torch
import torch.nn as nn


def private_view(model: nn.Module) -> nn.Module:
    """A copy of `model`'s module tree in eval mode, sharing its tensors, with hook tables of its own."""
    copies: dict[int, nn.Module] = {}

    def clone(module: nn.Module) -> nn.Module:
        if id(module) in copies:  # a module reused in two places stays one module
            return copies[id(module)]
        twin = module.__class__.__new__(module.__class__)
        state = dict(module.__dict__)
        for name, value in state.items():
            if "hooks" in name and isinstance(value, dict):  # _forward_hooks, _forward_pre_hooks, …: its own
                state[name] = type(value)(value)
        state["_modules"] = {name: None if child is None else clone(child) for name, child in module._modules.items()}
        twin.__dict__.update(state)
        copies[id(module)] = twin
        return twin

    # torch.compile's wrapper calls the module it wraps, not a copy: view that module itself
    return clone(getattr(model, "_orig_mod", model)).eval()


def captured_outputs(model: nn.Module, names: list[str]) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """(view, outputs): run `view` once and `outputs` holds the named layers' outputs of that call only (the
    hooks live on the view and go with it: nothing to remove)."""
    view = private_view(model)
    modules = dict(view.named_modules())
    missing = [name for name in names if name not in modules]
    if missing:
        raise ValueError(f"the model has no layer {missing[0]!r}")
    outputs: dict[str, torch.Tensor] = {}

    def keep(name: str):
        return lambda module, inputs, output: outputs.setdefault(name, output)
    for name in names:
        modules[name].register_forward_hook(keep(name))
    return view, outputs
