"""Turning any picture into the 32x32 RGB uint8 tensor the network sees.

One function serves the dataset loader (trees of other sizes), the CLI's `predict` and the
dashboard's uploads, so what is classified is always prepared the same way.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

SIZE = 32
# Larger than any photo a phone takes (~50 MP) but far below what a decompression bomb
# asks for; PIL raises DecompressionBombError past twice this.
MAX_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
DRAFT = 512  # JPEGs need not decode beyond this many pixels a side (also the largest preview shown)


class ImageError(ValueError):
    """A file that cannot be turned into an image; the message says why and what to do."""


def open_image(source: str | Path | bytes) -> Image.Image:
    """Open and fully decode an image file (path or bytes), raising ImageError when it is not one.

    JPEGs decode at a reduced scale when they are much larger than DRAFT pixels a side (libjpeg
    scales by 1/2, 1/4, 1/8 while decoding): a phone photo costs a few ms instead of tens.
    """
    name = "the upload" if isinstance(source, bytes) else str(source)
    if isinstance(source, bytes):
        if not source:
            raise ImageError(f"{name} is empty (0 bytes); choose an image file such as a JPEG or PNG.")
        source = io.BytesIO(source)
    try:
        with warnings.catch_warnings():  # PIL only warns between 1x and 2x its pixel limit: refuse those too
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source)
            if image.format == "JPEG":
                image.draft("RGB", (DRAFT, DRAFT))
            image.load()  # decode now so truncated files fail here, not later
    except FileNotFoundError:
        raise ImageError(f"{name} does not exist.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name} is too large to decode safely (over {MAX_PIXELS:,} pixels); "
                         "scale it down first.") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image PIL can read; use JPEG, PNG, WebP, BMP or GIF.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name} could not be decoded ({exc}); it may be truncated or corrupt.") from None
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB view of any mode: palette, grayscale, 16-bit, CMYK, alpha (composited on white)."""
    image = ImageOps.exif_transpose(image) if hasattr(image, "getexif") else image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grayscale: scale to 8 bits instead of clipping everything to white
        pixels = np.asarray(image, dtype=np.float64)
        peak = float(pixels.max()) or 1.0
        image = Image.fromarray(np.round(pixels / peak * 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


FRAMINGS = ("crop", "whole", "squeeze")  # the centre square; the whole picture padded, or squeezed, to a square
# served: on the real photos of photos/validation/ its verdict flags the most photos of other things; squeezed, the
# shipped model is right more often but flags fewer (BENCHMARKS.md, real photos and "A third framing")
FRAMING = "whole"


def to_32(image: Image.Image, framing: str = FRAMING) -> Image.Image:
    """A square view of the picture, antialiased down to 32x32 the way CIFAR's images were made: the centre
    square ("crop"), the whole picture with its short side padded in its border's mean colour ("whole"), or the
    whole picture squeezed to a square, its aspect not kept ("squeeze"). CIFAR-sized images pass through
    untouched."""
    if framing not in FRAMINGS:
        raise ValueError(f"unknown framing {framing!r}; choose one of {list(FRAMINGS)}")
    image = to_rgb(image)
    if image.size == (SIZE, SIZE):
        return image
    if framing == "crop":
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        square = image.crop((left, top, left + side, top + side))
        return square.resize((SIZE, SIZE), Image.Resampling.BICUBIC, reducing_gap=3.0)
    if framing == "squeeze":
        return image.resize((SIZE, SIZE), Image.Resampling.BICUBIC, reducing_gap=3.0)
    # shrink first, then pad: padding a 100000×10 strip to a square first would allocate 30 GB
    scale = SIZE / max(image.size)
    fitted = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                          Image.Resampling.BICUBIC, reducing_gap=3.0)
    pixels = np.asarray(fitted)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]).mean(0)
    square = Image.new("RGB", (SIZE, SIZE), tuple(int(round(c)) for c in border))
    square.paste(fitted, ((SIZE - fitted.width) // 2, (SIZE - fitted.height) // 2))
    return square


def to_uint8_tensor(image: Image.Image, framing: str = FRAMING) -> torch.Tensor:
    """[3,32,32] uint8, channels first, as the dataset tensors are stored."""
    return torch.from_numpy(np.asarray(to_32(image, framing), dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def load_for_model(source: str | Path | bytes, framing: str = FRAMING) -> torch.Tensor:
    """Path or bytes -> [3,32,32] uint8 tensor; raises ImageError with a readable reason."""
    return to_uint8_tensor(open_image(source), framing)


def mosaic(images: torch.Tensor, per_row: int = 8, scale: int = 4, gap: int = 2) -> Image.Image:
    """[N,3,h,w] uint8 pictures (a layer's filters) as one picture: rows of `per_row` cells, each picture `scale`
    times larger with crisp pixels, `gap` white pixels between cells; cells past the last picture stay white. One
    image element for the browser to fetch and draw instead of N (BENCHMARKS.md, "A room on one link")."""
    count, channels, height, width = images.shape
    rows = max(1, -(-count // per_row))
    cell_h, cell_w = height * scale + gap, width * scale + gap
    canvas = torch.full((channels, rows * cell_h - gap, per_row * cell_w - gap), 255, dtype=torch.uint8)
    big = images.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
    for i, picture in enumerate(big):
        top, left = (i // per_row) * cell_h, (i % per_row) * cell_w
        canvas[:, top:top + height * scale, left:left + width * scale] = picture
    return Image.fromarray(canvas.permute(1, 2, 0).numpy())


def side_by_side(photo: Image.Image, views: list[torch.Tensor | np.ndarray], height: int = 8 * SIZE,
                 gap: int = 16) -> Image.Image:
    """A photo and 32×32 views of it (what the network sees, its Grad-CAM) in one row at one height, on a
    transparent ground: one picture, so a phone's narrow column scales the row as a whole instead of stacking
    three pictures each the screen's width. The photo is fitted into at most twice `height` across (a panorama
    stays beside the views); each view is enlarged with crisp pixels."""
    fitted = ImageOps.contain(to_rgb(photo), (2 * height, height), Image.Resampling.BICUBIC)
    pictures = [fitted] + [enlarge(view, height // SIZE) for view in views]
    row = Image.new("RGBA", (sum(p.width for p in pictures) + gap * (len(pictures) - 1), height), (0, 0, 0, 0))
    left = 0
    for picture in pictures:
        row.paste(picture, (left, (height - picture.height) // 2))
        left += picture.width + gap
    return row


def enlarge(image: torch.Tensor | np.ndarray, scale: int = 4, border: str | None = None) -> Image.Image:
    """[3,H,W] uint8 tensor (or HxWx3 array) -> PIL image `scale` times larger with nearest-neighbour
    pixels (crisp, not blurred), optionally framed in `border` colour (e.g. right/wrong)."""
    pixels = image.permute(1, 2, 0).cpu().numpy() if isinstance(image, torch.Tensor) else image
    pil = Image.fromarray(pixels)
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.NEAREST)
    return ImageOps.expand(pil, border=max(2, scale), fill=border) if border else pil
