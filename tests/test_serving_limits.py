"""Request limits of the exported SavedModel (`regnet_tf.train.export`: max_pixels, max_batch, max_request_bytes).

A 20000 x 20000 PNG decompression bomb (1.2 GB of pixels in 1.2 MB) is rejected from its header in a fresh process,
fast and with bounded memory, and the process then serves a good image; the batch and byte limits are checked
before any decoding; `serving_image_tensor` checks batch and H x W; an animated GIF serves its first frame, with
every frame counted in the pixel budget; the limits are export options, validated and stored in the metadata
(the launch/export.py flags: tests/test_export.py).
"""

import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tensorflow as tf

from regnet_tf.data.format import MAX_PIXELS
from regnet_tf.train.export import MAX_BATCH, MAX_REQUEST_BYTES, METADATA_FILE, export_saved_model
from test_export import SERVING_ENV, SIZE, expected_logits, object_array, pixels, tiny_model

BOMB_SIDE = 20000
MAX_RSS_GROWTH_MB = 300  # measured: see docs/SERVING.md


# ------------------------------------------------------------------------------------------------ test images

def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _zeros_zlib(n, block=2 ** 24):
    """A zlib stream of `n` zero bytes, built in ~0.1 s: one block compressed after a full flush (so it references
    nothing before it) repeated, then the rest; the Adler-32 of n zeros is (n mod 65521) << 16 | 1."""
    compressor = zlib.compressobj(9)
    head = compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH)
    count, rest = divmod(n, block)
    tail = compressor.compress(bytes(rest)) + compressor.flush(zlib.Z_FINISH)
    return head[:2] + head[2:] * count + tail[:-4] + struct.pack(">I", (n % 65521) << 16 | 1)


def png_bomb(side=BOMB_SIDE):
    """A valid side x side RGB PNG of black rows (filter byte 0 + 3 x side zeros each): ~1.2 MB for 20000."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", _zeros_zlib((3 * side + 1) * side))
            + _png_chunk(b"IEND", b""))


def patched_ihdr(png, side=BOMB_SIDE):
    """`png` (a small PNG) whose IHDR declares side x side pixels (CRC fixed): a few hundred bytes."""
    ihdr = png[16:29]
    ihdr = struct.pack(">II", side, side) + ihdr[8:]
    return png[:8] + _png_chunk(b"IHDR", ihdr) + png[33:]


PALETTE = np.array([(r, g, b) for r in range(0, 256, 51) for g in range(0, 256, 51) for b in range(0, 256, 51)]
                   + [(0, 0, 0)] * 40, np.uint8)  # 6 x 6 x 6 colours, padded to 256


def palette_indices(image):
    """The nearest PALETTE index of each pixel of a uint8 RGB image."""
    levels = np.round(image.astype(np.float64) / 51).astype(np.int64)
    return (levels[..., 0] * 36 + levels[..., 1] * 6 + levels[..., 2]).astype(np.uint8)


def _lzw_uncompressed(indices):
    """GIF LZW data (min code size 8) of literal 9-bit codes, a clear code every 250 so the width never grows."""
    codes = []
    for start in range(0, len(indices), 250):
        codes += [256] + list(indices[start:start + 250])
    codes.append(257)
    bits = sum(int(code) << (9 * k) for k, code in enumerate(codes))
    data = bits.to_bytes((9 * len(codes) + 7) // 8, "little")
    blocks = b"".join(bytes([len(data[i:i + 255])]) + data[i:i + 255] for i in range(0, len(data), 255))
    return b"\x08" + blocks + b"\x00"


def gif(frames):
    """A GIF89a of `frames` (uint8 [H, W] PALETTE indices, all one size) with a global colour table."""
    h, w = frames[0].shape
    out = b"GIF89a" + struct.pack("<HHBBB", w, h, 0xF7, 0, 0) + PALETTE.tobytes()
    for frame in frames:
        out += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: 0.1 s, no transparency
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0) + _lzw_uncompressed(frame.reshape(-1))
    return out + b"\x3b"


# ------------------------------------------------------------------------------------------------ exports

@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def limited(model, tmp_path_factory):
    """Default max_pixels, max_batch=3, max_request_bytes=2 MB (the bomb, 1.2 MB, passes it; two do not)."""
    return export_saved_model(model, tmp_path_factory.mktemp("limited") / "1", image_size=SIZE, max_batch=3,
                              max_request_bytes=2_000_000)


@pytest.fixture(scope="module")
def small_budget(model, tmp_path_factory):
    """max_pixels=3000: a 32 x 32 GIF of 3 frames (3072 pixels) is over it, its first frame (1024) is not."""
    return export_saved_model(model, tmp_path_factory.mktemp("small") / "1", image_size=SIZE, max_pixels=3000)


def jpeg(seed, h=40, w=50):
    return tf.io.encode_jpeg(pixels(h, w, seed)).numpy()


def serve(export_dir, signature="serving_default"):
    return tf.saved_model.load(export_dir).signatures[signature]


# ------------------------------------------------------------------------------------------------ tests

FRESH_PROCESS = r"""
import json, resource, sys, time
import numpy as np, tensorflow as tf
export_dir, inputs, out = sys.argv[1:4]
data = np.load(inputs, allow_pickle=True)
serve = tf.saved_model.load(export_dir).signatures["serving_default"]
serve(image_bytes=tf.constant(data["good"]))  # warm-up: the first call's allocations are not the bomb's
result = {}
for name in ("bomb", "patched"):
    batch = tf.constant(data[name])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, peak
    start = time.perf_counter()
    try:
        serve(image_bytes=batch)
        message = None
    except tf.errors.InvalidArgumentError as e:
        message = e.message
    result[name] = {"seconds": time.perf_counter() - start, "message": message,
                    "rss_growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024}
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
np.save(out, serve(image_bytes=tf.constant(data["good"]))["logits"].numpy())
print(json.dumps(result))
"""


def test_a_decompression_bomb_is_rejected_from_its_header_in_a_fresh_process(limited, model, tmp_path):
    bomb = png_bomb()
    assert len(bomb) < 1_300_000 and zlib.decompressobj().decompress(bomb[41:41 + 4096])  # a real, valid stream
    small = tf.io.encode_png(pixels(45, 37, 1)).numpy()
    good = [jpeg(0), small]
    np.savez(tmp_path / "inputs.npz", good=object_array(good), bomb=object_array([bomb]),
             patched=object_array([jpeg(2), patched_ihdr(small)]))
    run = subprocess.run([sys.executable, "-c", FRESH_PROCESS, limited, str(tmp_path / "inputs.npz"),
                          str(tmp_path / "logits.npy")], capture_output=True, text=True, env=SERVING_ENV, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(json.dumps(result, indent=1))  # the numbers of docs/SERVING.md (pytest -s)
    for name, index in (("bomb", 0), ("patched", 1)):
        message = result[name]["message"]
        assert message is not None, f"the {name} was served"
        first = next(line for line in message.splitlines() if "image_bytes[" in line)
        assert f"image_bytes[{index}]: the image declares 20000 x 20000 pixels = 400000000 pixels, over the limit " \
               f"of {MAX_PIXELS} (max_pixels)" in first, message
        assert result[name]["seconds"] < 1.0, result
        assert result[name]["rss_growth_mb"] < MAX_RSS_GROWTH_MB, result
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected_logits(model, good), atol=1e-4)


def test_batch_and_request_bytes_are_checked_before_decoding(limited):
    fn = serve(limited)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_bytes: the request holds 4 images, over the "
                       r"limit of 3 \(max_batch\): send fewer or smaller images, or export with a larger max_batch"):
        fn(image_bytes=tf.constant([jpeg(k) for k in range(4)]))
    bombs = [png_bomb()] * 2  # over max_request_bytes, checked first (max_pixels would name image_bytes[0])
    size = sum(map(len, bombs))
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"image_bytes: the request holds {size} encoded bytes, "
                       r"over the limit of 2000000 \(max_request_bytes\)"):
        fn(image_bytes=tf.constant(bombs))
    assert fn(image_bytes=tf.constant([jpeg(k) for k in range(3)]))["logits"].shape == (3, 4)


def test_image_tensor_signature_checks_batch_and_pixels(limited, small_budget):
    images = np.stack([pixels(60, 60, k) for k in range(4)])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"images: the request holds 4 images, over the limit "
                       r"of 3 \(max_batch\)"):
        serve(limited, "serving_image_tensor")(images=tf.constant(images))
    fn = serve(small_budget, "serving_image_tensor")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"images: the images are 60 x 55 pixels = 3300 pixels "
                       r"each, over the limit of 3000 \(max_pixels\): send fewer or smaller images, or export with "
                       r"a larger max_pixels"):
        fn(images=tf.constant(images[:, :55]))
    assert fn(images=tf.constant(images[:, :50]))["logits"].shape == (4, 4)  # 3000 pixels: at the limit


def test_an_animated_gif_serves_its_first_frame_and_counts_every_frame(limited, small_budget, model):
    frames = [palette_indices(pixels(32, 32, seed)) for seed in (5, 6, 7)]
    animated, first = gif(frames), gif(frames[:1])
    np.testing.assert_array_equal(tf.io.decode_gif(animated)[0], PALETTE[frames[0]])  # the encoder is right
    assert tf.io.decode_gif(animated).shape[0] == 3
    out = serve(limited)(image_bytes=tf.constant([animated, first, gif(frames[1:2])]))["logits"].numpy()
    np.testing.assert_array_equal(out[0], out[1])
    assert np.abs(out[0] - out[2]).max() > 1e-3  # another frame predicts something else: the test can fail
    np.testing.assert_allclose(out[:2], expected_logits(model, [first, first]), atol=1e-4)

    fn = serve(small_budget)
    assert fn(image_bytes=tf.constant([first]))["logits"].shape == (1, 4)  # 1024 pixels
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_bytes\[1\]: the image declares 32 x 32 pixels x "
                       r"3 frames = 3072 pixels, over the limit of 3000 \(max_pixels\)"):
        fn(image_bytes=tf.constant([first, animated]))


def test_limits_are_stored_in_the_metadata_and_validated(limited, small_budget, model, tmp_path):
    limits = {name: json.load(open(f"{path}/{METADATA_FILE}"))["limits"] for name, path in
              (("limited", limited), ("small", small_budget))}
    assert limits == {"limited": {"max_pixels": MAX_PIXELS, "max_batch": 3, "max_request_bytes": 2_000_000},
                      "small": {"max_pixels": 3000, "max_batch": MAX_BATCH, "max_request_bytes": MAX_REQUEST_BYTES}}
    for name, bad in (("max_pixels", -1), ("max_batch", 2.5), ("max_request_bytes", True), ("max_batch", "8")):
        with pytest.raises(ValueError, match=rf"{name} must be an int >= 0 \(0: no limit\); got {bad!r}"):
            export_saved_model(model, tmp_path / "1", image_size=SIZE, **{name: bad})
    assert not (tmp_path / "1").exists()

