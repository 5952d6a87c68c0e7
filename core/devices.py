"""Which device to train on, chosen once and passed down, and how to name it."""
from __future__ import annotations

import torch

from core.config import DEVICES, ConfigError, TrainConfig


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


def slow_bf16(config: TrainConfig, device: torch.device) -> bool:
    """bf16 asked for on a CPU that only emulates it (no AVX-512 BF16 or AMX): slower than fp32 there."""
    return config.bf16 and device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    return {"mps": "Apple GPU (MPS)", "cpu": "CPU"}.get(device.type, str(device))
