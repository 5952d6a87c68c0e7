"""Which device to train on, chosen once and passed down, and how to name it."""
from __future__ import annotations

import torch

from core.config import DEVICES, PRESETS, ConfigError, TrainConfig, with_overrides


def choose_device(requested: str = "auto") -> torch.device:
    """cuda, then mps, then cpu; an explicit choice wins but must exist."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError({"device": "CUDA was requested but no CUDA GPU is visible; use auto or cpu"})
    if requested == "mps" and not torch.backends.mps.is_available():
        raise ConfigError({"device": "MPS was requested but is not available here; use auto or cpu"})
    return torch.device(requested)


def available_devices() -> list[str]:
    """The device choices that exist here, in DEVICES' order (auto and cpu always)."""
    found = {"auto", "cpu"} | ({"cuda"} if torch.cuda.is_available() else set()) | \
        ({"mps"} if torch.backends.mps.is_available() else set())
    return [d for d in DEVICES if d in found]


def native_bf16() -> bool:
    """Whether this CPU computes bf16 itself (AVX-512 BF16 or AMX) rather than emulating it."""
    return torch.ops.mkldnn._is_mkldnn_bf16_supported()


def slow_bf16(config: TrainConfig, device: torch.device) -> bool:
    """bf16 asked for on a CPU that only emulates it: slower than fp32 there."""
    return config.bf16 and device.type == "cpu" and not native_bf16()


def for_this_device(config: TrainConfig, device: torch.device) -> TrainConfig:
    """A preset as it should run on `device`: without bf16 autocast where the CPU only emulates it (there the
    `fast` preset took 6.5x as long with it: BENCHMARKS.md); otherwise unchanged."""
    return with_overrides(config, bf16=False) if slow_bf16(config, device) else config


def preset_here(name: str) -> TrainConfig:
    """The named preset as it should run here, on the device it would choose (`for_this_device`)."""
    preset = PRESETS[name]
    return for_this_device(preset, choose_device(preset.device))


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    return {"mps": "Apple GPU (MPS)", "cpu": "CPU"}.get(device.type, str(device))
