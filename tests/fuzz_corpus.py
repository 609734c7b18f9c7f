"""A seeded fuzz corpus of encoded images for tests/test_fuzz.py (deterministic for a given seed and encoder build).

    entries = corpus(seed=14)      # [Entry(name, data, kind)], a few hundred inputs of at most a few KB
    valid_images()                 # {name: bytes}: the small valid images the mutants start from

The bases: tiny images of each format `tf.io.decode_image` reads and Pillow writes (JPEG baseline and progressive,
PNG RGB and grayscale+alpha, GIF still and animated, BMP; WebP lossless and lossy when Pillow encodes WebP). Each
base gets truncations, bit flips, corrupted headers (random bytes over the first bytes after the signature) and
random tails; random byte strings (some behind a valid signature) stand alone. `kind`:

- "valid": a base image, untouched.
- "mutant": a truncated / bit-flipped / corrupted / random input; it may still decode (decoders are lenient).
- "oversized": the header patched to declare far more pixels than `OVERSIZED_PIXELS` (PNG IHDR with a valid CRC,
  JPEG SOF0/SOF2, GIF logical screen and frame descriptor, BMP header; an animated GIF whose frames only add up
  to too many): the decompression bombs a pixel budget must reject before decoding.

WebP mutants flip bits only after the 30-byte header: its dimensions are not checked from the header (a flipped
size bit could make the decoder allocate a 16384 x 16384 canvas).
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import NamedTuple

import numpy as np
from PIL import Image, features

OVERSIZED_PIXELS = 64_000_000  # every "oversized" entry declares more pixels than this (format.MAX_PIXELS)


class Entry(NamedTuple):
    name: str
    data: bytes
    kind: str  # "valid", "mutant" or "oversized"


def _pixels(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 127 // max(h + w - 2, 1)], -1)
    return np.clip(base + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)


def _save(image, fmt, **kwargs):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def valid_images() -> dict:
    """{name: encoded bytes}: tiny valid images of each format (16 to 24 pixels a side)."""
    rgb = Image.fromarray(_pixels(20, 24, 0))
    frames = [Image.fromarray(_pixels(16, 16, k)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
              for k in range(3)]
    gray_alpha = Image.fromarray(_pixels(18, 16, 1)[..., :2].copy(), "LA")
    images = {
        "jpeg": _save(rgb, "JPEG", quality=90),
        "jpeg_progressive": _save(rgb, "JPEG", quality=80, progressive=True),
        "png": _save(rgb, "PNG"),
        "png_gray_alpha": _save(gray_alpha, "PNG"),
        "gif": _save(frames[0], "GIF"),
        "gif_animated": _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0),
        "bmp": _save(rgb, "BMP"),
    }
    if features.check("webp"):
        images["webp_lossless"] = _save(rgb, "WEBP", lossless=True)
        images["webp"] = _save(rgb, "WEBP", quality=70)
    return images


# ------------------------------------------------------------------------------------------- mutations


def _truncations(data, rng):
    n = len(data)
    cuts = sorted({1, 4, 8, 16, 30, n // 4, n // 2, 3 * n // 4, n - 16, n - 1, int(rng.integers(2, n))})
    return [(f"truncated_{c}", data[:c]) for c in cuts if 0 < c < n]


def _bit_flips(data, rng, start=0, counts=(1, 1, 2, 4, 8, 32)):
    out = []
    for k, count in enumerate(counts):
        mutated = bytearray(data)
        for pos in rng.integers(start, len(data), count):
            mutated[pos] ^= 1 << int(rng.integers(0, 8))
        out.append((f"bitflip{count}_{k}", bytes(mutated)))
    return out


def _corrupted_headers(data, rng, keep=4):
    out = []
    for k, length in enumerate((4, 16, 48)):
        mutated = bytearray(data)
        end = min(keep + length, len(data))
        mutated[keep:end] = rng.integers(0, 256, end - keep, dtype=np.uint8).tobytes()
        out.append((f"header{length}_{k}", bytes(mutated)))
    return out


def _random_tails(data, rng):
    cut = len(data) // 3
    return [("random_tail", data[:cut] + rng.integers(0, 256, len(data) - cut, dtype=np.uint8).tobytes()),
            ("random_middle", data[:cut] + rng.integers(0, 256, 64, dtype=np.uint8).tobytes() + data[cut + 64:])]


def _random_inputs(rng):
    signatures = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"RIFF\x00\x00\x00\x00WEBP"]
    out = [("random_empty", b""), ("random_text", b"this is not an image")]
    for k in range(8):
        out.append((f"random_{k}", rng.integers(0, 256, int(rng.integers(1, 600)), dtype=np.uint8).tobytes()))
    for k, sig in enumerate(signatures):
        out.append((f"random_after_signature_{k}", sig + rng.integers(0, 256, 200, dtype=np.uint8).tobytes()))
    return out


# ------------------------------------------------------------------------------ oversized declared sizes


def _png_size(data, width, height):
    """The PNG with its IHDR declaring width x height, with a valid CRC (the decoder's CRC check passes)."""
    assert data[12:16] == b"IHDR"
    body = b"IHDR" + struct.pack(">II", width, height) + data[24:29]
    return data[:8] + data[8:12] + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF) + data[33:]


def _jpeg_size(data, width, height):
    """The JPEG with its SOF0 / SOF2 (frame header) declaring width x height."""
    pos = 2
    while pos + 4 <= len(data):
        marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            return data[:pos + 5] + struct.pack(">HH", height, width) + data[pos + 9:]
        pos += 2 + length
    raise ValueError("no SOF marker")


def _gif_size(data, width, height, frame=True):
    """The GIF with its logical screen (and, `frame`, its first image descriptor) declaring width x height."""
    data = data[:6] + struct.pack("<HH", width, height) + data[10:]
    if frame:
        pos = data.index(b"\x2c", 13)  # the first image descriptor (after the global palette)
        data = data[:pos + 5] + struct.pack("<HH", width, height) + data[pos + 9:]
    return data


def _bmp_size(data, width, height):
    """The BMP with its BITMAPINFOHEADER declaring width x height (negative height: top-down rows)."""
    return data[:18] + struct.pack("<ii", width, height) + data[26:]


def _oversized(images):
    out = [("png_30000x30000", _png_size(images["png"], 30000, 30000)),
           ("png_1000000x100", _png_size(images["png"], 1_000_000, 100)),
           ("png_gray_alpha_20000x20000", _png_size(images["png_gray_alpha"], 20000, 20000)),
           ("jpeg_60000x60000", _jpeg_size(images["jpeg"], 60000, 60000)),
           ("jpeg_progressive_65500x2000", _jpeg_size(images["jpeg_progressive"], 65500, 2000)),
           ("jpeg_65535x65535", _jpeg_size(images["jpeg"], 65535, 65535)),  # past libjpeg's 65500 limit
           ("gif_65535x65535", _gif_size(images["gif"], 65535, 65535)),
           ("gif_screen_only_30000x30000", _gif_size(images["gif"], 30000, 30000, frame=False)),
           # 3 frames of 5000 x 5000: 25 MP each, 75 MP in all (the pixel budget counts frames)
           ("gif_animated_5000x5000x3", _gif_size(images["gif_animated"], 5000, 5000, frame=False)),
           ("bmp_50000x50000", _bmp_size(images["bmp"], 50000, 50000)),
           ("bmp_topdown_40000x-40000", _bmp_size(images["bmp"], 40000, -40000))]
    return out


def corpus(seed=14, oversized=True) -> list:
    """[Entry]: the valid bases, their mutants, random inputs and (with `oversized`) the oversized ones; the same
    list for the same seed. Names are "<base>/<mutation>"; each entry is at most a few KB."""
    images = valid_images()
    entries = [Entry(f"{name}/valid", data, "valid") for name, data in images.items()]
    for k, (name, data) in enumerate(images.items()):
        rng = np.random.default_rng([seed, k])
        webp = name.startswith("webp")  # no size check from the header: mutate after it (module docstring)
        mutants = _truncations(data, rng) + _bit_flips(data, rng, start=30 if webp else 0)
        if not webp:
            mutants += _corrupted_headers(data, rng) + _random_tails(data, rng)
        entries += [Entry(f"{name}/{m}", d, "mutant") for m, d in mutants]
    entries += [Entry(f"random/{m}", d, "mutant") for m, d in _random_inputs(np.random.default_rng([seed, 99]))]
    if oversized:
        entries += [Entry(f"oversized/{m}", d, "oversized") for m, d in _oversized(images)]
    return entries
