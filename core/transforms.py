"""The transforms on the training device, batched: the normalisation every model sees, and the augmentations a
run trains with (`augmented` composes them from its config). Each works on uint8 [B,3,H,W] images where they are
(CPU or GPU) with an explicit generator, so a resumed run draws the same numbers."""
from __future__ import annotations

import math

import torch

from core.config import TrainConfig
from core.data import DataConfig


def normalizer(config: DataConfig, device: torch.device | str, channels_last: bool = False):
    """uint8 [B,3,H,W] -> float, equal to ToTensor() followed by Normalize(mean, std); laid out
    channels-last (NHWC) when the model's weights are."""
    mean = torch.tensor(config.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std = torch.tensor(config.std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def normalize(images: torch.Tensor) -> torch.Tensor:
        return images.float().div(255).sub(mean).div(std).contiguous(memory_format=memory_format)

    return normalize


def augment(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with `pad` zero pixels of padding and random horizontal flip, batched, on uint8."""
    b, c, h, w = images.shape
    device = images.device
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=generator.device).to(device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=generator.device).to(device)
    rows = (dy[:, None] + torch.arange(h, device=device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=device))[:, None, None, :]
    batch = torch.arange(b, device=device)[:, None, None, None]
    channel = torch.arange(c, device=device)[None, :, None, None]
    cropped = padded[batch, channel, rows, cols]
    flip = torch.rand(b, generator=generator, device=generator.device).to(device) < 0.5
    return torch.where(flip[:, None, None, None], cropped.flip(3), cropped)


def zoom_crop(images: torch.Tensor, generator: torch.Generator, min_area: float) -> torch.Tensor:
    """Random-resized crops, batched, on uint8: each image becomes a random window of at least `min_area` of its
    area (aspect 3:4 to 4:3) scaled back to full size, bilinearly: the close-ups a phone photo brings."""
    b = len(images)

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(b, generator=generator, device=generator.device).to(images.device)

    area, aspect = uniform(min_area, 1.0), uniform(math.log(3 / 4), math.log(4 / 3)).exp()
    width, height = (area * aspect).sqrt().clamp(max=1.0), (area / aspect).sqrt().clamp(max=1.0)
    # affine_grid's coordinates run from -1 to 1: a window of `width` can move by ±(1 - width)
    dx, dy = (1 - width) * uniform(-1.0, 1.0), (1 - height) * uniform(-1.0, 1.0)
    zero = torch.zeros_like(width)
    theta = torch.stack([torch.stack([width, zero, dx], 1), torch.stack([zero, height, dy], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    zoomed = torch.nn.functional.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border",
                                             align_corners=False)
    return zoomed.round().clamp(0, 255).to(torch.uint8)


def cutout(images: torch.Tensor, generator: torch.Generator, size: int) -> torch.Tensor:
    """A random `size`×`size` square of each image, batched, set to mid-gray (about 0 after the tutorial's
    normalisation): airbench96's cutout, which makes the network use the whole object."""
    b, _, h, w = images.shape

    def corner(extent: int) -> torch.Tensor:
        drawn = torch.randint(0, extent - size + 1, (b,), generator=generator, device=generator.device)
        return drawn.to(images.device).view(b, 1, 1, 1)

    top, left = corner(h), corner(w)
    rows = torch.arange(h, device=images.device).view(1, 1, h, 1)
    cols = torch.arange(w, device=images.device).view(1, 1, 1, w)
    square = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return images.masked_fill(square, 128)


_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights, as PIL and torchvision make gray


def color_jitter(images: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    """Random brightness, contrast and saturation, batched, on uint8: each scaled by its own factor in
    [1 - strength, 1 + strength] per image, clipped after each like torchvision's ColorJitter (in a fixed order):
    a phone's exposure and colour processing."""
    b = len(images)
    luma = torch.tensor(_LUMA, device=images.device).view(1, 3, 1, 1)

    def factor() -> torch.Tensor:
        drawn = torch.rand(b, generator=generator, device=generator.device).to(images.device)
        return (1 - strength + 2 * strength * drawn).view(b, 1, 1, 1)

    def blend(x: torch.Tensor, toward: torch.Tensor) -> torch.Tensor:  # factor 0: `toward`, 1: x unchanged
        return (toward + (x - toward) * factor()).clamp(0, 255)

    x = (images.float() * factor()).clamp(0, 255)  # brightness
    x = blend(x, (x * luma).sum(1, keepdim=True).mean((2, 3), keepdim=True))  # contrast: toward the mean gray
    x = blend(x, (x * luma).sum(1, keepdim=True))  # saturation: toward each pixel's gray
    return x.round().to(torch.uint8)


def augmented(images: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """A batch as the network trains on it: zoomed in (`zoom`), shifted and mirrored (`augment`), a square blanked
    (`cutout`), recoloured (`jitter`), each only when asked for; batched on the images' device."""
    if config.zoom < 1:
        images = zoom_crop(images, generator, config.zoom)
    if config.augment:
        images = augment(images, generator, config.translate)
    if config.cutout:
        images = cutout(images, generator, config.cutout)
    if config.jitter:
        images = color_jitter(images, generator, config.jitter)
    return images
