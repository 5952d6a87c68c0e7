"""Image files of every awkward kind, made in memory, for the upload tests."""
import io
import struct
import zlib

import numpy as np
from PIL import Image


def _save(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kw)
    return buffer.getvalue()


def photo(size=(300, 200), colour=(200, 40, 40)) -> Image.Image:
    rng = np.random.default_rng(0)
    pixels = np.clip(rng.normal(0, 20, (size[1], size[0], 3)) + colour, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims enormous dimensions (a decompression bomb) in a few bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def good() -> dict[str, bytes]:
    """Files that must be classified (converted as needed)."""
    frames = [photo(colour=(250, 0, 0)), photo(colour=(0, 0, 250))]
    sixteen = Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16))
    return {
        "photo.jpg": _save(photo(), "JPEG"),
        "photo.png": _save(photo(), "PNG"),
        "photo.webp": _save(photo(), "WEBP"),
        "photo.bmp": _save(photo(), "BMP"),
        "still.gif": _save(photo().convert("P"), "GIF"),
        "animated.gif": _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0),
        "palette.png": _save(photo().convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "grayscale.png": _save(photo().convert("L"), "PNG"),
        "rgba.png": _save(photo().convert("RGBA"), "PNG"),
        "cmyk.jpg": _save(photo().convert("CMYK"), "JPEG"),
        "sixteen-bit.png": _save(sixteen, "PNG"),
        "tiny.png": _save(photo((5, 3)), "PNG"),
        "panorama-strip.png": _save(photo((100_000, 10)), "PNG"),  # huge dimensions, few pixels
    }


def bad() -> dict[str, tuple[bytes, str]]:
    """Files that must be refused, with a fragment of the expected message."""
    jpeg = _save(photo(), "JPEG")
    return {
        "notes.jpg": (b"these are my shopping notes, not a picture", "not an image"),
        "empty.png": (b"", "empty"),
        "truncated.jpg": (jpeg[: len(jpeg) // 3], "truncated"),
        "bomb.png": (png_header_only(30_000, 30_000), "too large"),
        "just-over-the-limit.png": (png_header_only(9_000, 8_000), "too large"),  # PIL would only warn
        "page.png": (b"<html><script>alert(1)</script></html>", "not an image"),
        "drawing.gif": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "not an image"),
    }
