"""regnet_tf.data.format.declared_size / check_pixel_budget: the (frames, height, width) read from each format's
header equals what TensorFlow decodes; decompression bombs are rejected from the header, before any decoding;
truncated, corrupted and random bytes never make the header parser raise, and no input that TensorFlow decodes
declares fewer pixels than it decodes to."""

import io
import os
import re
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from regnet_tf.data import format as fmt
from test_format import JXL_CODESTREAM, JXL_CONTAINER  # tests/ is on sys.path

# cjxl -d 0 -e 1 outputs: 5 x 300 (SizeHeader U32 dimensions, fixed ratio off), 1000 x 3, and an 8 x 24 JPEG with
# EXIF orientation 6 in the container (decoded 24 x 8: orientation 5-8 swaps height and width).
JXL_5X300 = (b"\xff\n \x00V\x82\x80\xe2B\x08\x02\x01\x00<\x00\x00\x00\x00\x02\x18\x00K\x12\xa5B\x05R,\xdb\xff\x0f\x00"
             b"\x00\xc0\x04\x00\x13:=\x00`\xc2O\x01\x03:6\x1cM\x01")
JXL_1000X3 = (b"\xff\n:\x1f@\x00\x08(.\x04\x08\x02\x01\x00<\x00\x00\x00\x00\x02 \x00\x02 \x00K\x12\xa5B\x05R,\xdb\xff"
              b"\x0f\x00\x00\xc0\x04\x00\x03:\x1d\x00@\xbeH\x01\x03:\x1d\x00@\xbeH\x01\x03:\x1d\x00@\xbeH\x01\x03:\x1a"
              b"\x00`\xedJ\x01")
JXL_ORIENTED = (b"\x00\x00\x00\x0cJXL \r\n\x87\n\x00\x00\x00\x14ftypjxl \x00\x00\x00\x00jxl \x00\x00\x00'jxlc"
                b"\xff\n\x01\x84\x05\x02\x8aK\x02\x08\x02\x01\x00@\x00K\x12\xa5B\x05R,\x1b\xff\x0f\x00\xe8\\A\x1d\x05")
SIZES = [(8, 12), (31, 7), (1, 1), (40, 64)]
LIMIT_MESSAGE = ("{what}: the image declares {w} x {h} pixels{frames} = {n} pixels, over the limit of {limit} "
                 "(max_pixels)")


def image(height, width, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (height, width, 3)).astype(np.uint8)


def pil(array, kind, frames=(), **kwargs):
    buffer = io.BytesIO()
    images = [Image.fromarray(a) for a in (array, *frames)]
    images[0].save(buffer, kind, save_all=bool(frames), append_images=images[1:], **kwargs)
    return buffer.getvalue()


def samples(height, width):
    """{name: encoded} of one height x width image in every format and variant."""
    a = image(height, width)
    return {"JPEG": tf.io.encode_jpeg(a).numpy(), "PNG": tf.io.encode_png(a).numpy(), "GIF": pil(a, "GIF"),
            "BMP": pil(a, "BMP"), "WebP lossless": pil(a, "WEBP", lossless=True), "WebP lossy": pil(a, "WEBP")}


def declared(data):
    return tuple(int(v) for v in fmt.declared_size(tf.constant(data)).numpy())


def decoded_pixels(data):
    """frames x height x width that tf.io.decode_image decodes (all frames of an animation), or None if it fails."""
    try:
        shape = tf.io.decode_image(data, expand_animations=True).shape
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
        return None
    return int(np.prod(shape[:-1]))


@pytest.mark.parametrize("height,width", SIZES)
def test_declared_size_is_the_decoded_shape(height, width):
    for name, data in samples(height, width).items():
        decoded = tf.io.decode_image(data, expand_animations=False).shape
        assert declared(data) == (1, height, width) == (1, *decoded[:2]), name


def test_jpeg_xl_sizes_and_orientation():
    for data, shape in ((JXL_CODESTREAM, (8, 12)), (JXL_CONTAINER, (8, 12)), (JXL_5X300, (5, 300)),
                        (JXL_1000X3, (1000, 3)), (JXL_ORIENTED, (24, 8))):
        assert declared(data) == (1, *shape) == (1, *tf.io.decode_jxl(data).shape[:2])
    # A jxlp box (a 4-byte part index before the codestream) and a 64-bit box size are followed too.
    boxes = JXL_CONTAINER[:32]
    jxlp = boxes + (20 + len(JXL_CODESTREAM)).to_bytes(4, "big") + b"jxlp" + b"\0" * 4 + JXL_CODESTREAM
    assert declared(jxlp) == (1, 8, 12)
    large = boxes + (1).to_bytes(4, "big") + b"jxlc" + (16 + len(JXL_CODESTREAM)).to_bytes(8, "big") + JXL_CODESTREAM
    assert declared(large) == (1, 8, 12) == (1, *tf.io.decode_jxl(large).shape[:2])


def test_animations_count_their_frames():
    frames = [image(9, 14, seed) for seed in range(1, 4)]
    gif = pil(image(9, 14), "GIF", frames, duration=50, loop=0)  # per-frame palettes: local colour tables
    assert declared(gif) == (4, 9, 14) == tuple(tf.io.decode_gif(gif).shape[:3])
    webp = pil(image(9, 14), "WEBP", frames, lossless=True)
    assert webp[12:16] == b"VP8X" and b"ANMF" in webp
    # (Not decoded here: TensorFlow 2.21's WebP decoder corrupts the heap on animated WebP, aborting the process.)
    assert declared(webp) == (4, 9, 14) and webp.count(b"ANMF") == 4
    apng = pil(image(9, 14), "PNG", frames)
    assert b"acTL" in apng
    assert declared(apng) == (1, 9, 14) == (1, *tf.io.decode_image(apng, expand_animations=True).shape[:2])


def test_bmp_top_down_and_core_header():
    a = image(5, 7)
    data = bytearray(pil(a, "BMP"))
    data[22:26] = struct.pack("<i", -5)  # top-down rows
    assert declared(bytes(data)) == (1, 5, 7) == (1, *tf.io.decode_bmp(bytes(data)).shape[:2])
    # BITMAPCOREHEADER (12 bytes, uint16 width and height at 18 and 20): decode_bmp reads the BITMAPINFOHEADER
    # fields at 18 and 22 whatever the header size, and so does declared_size.
    row = (24 * 7 + 31) // 32 * 4
    core = b"BM" + struct.pack("<IHHI", 26 + row * 5, 0, 0, 26) + struct.pack("<IHHHH", 12, 7, 5, 1, 24) + bytes(
        row * 5)
    assert declared(core) == (1, 1 + (24 << 16), 7 + (5 << 16))
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.io.decode_bmp(core)


def bombs():
    """{name: (encoded, (frames, height, width))}: small files whose headers declare far more pixels."""
    png = bytearray(tf.io.encode_png(image(8, 12)).numpy())
    png[16:24] = struct.pack(">II", 20000, 20000)
    jpeg = bytearray(tf.io.encode_jpeg(image(8, 12)).numpy())
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5:sof + 9] = struct.pack(">HH", 30000, 20000)
    gif = bytearray(pil(image(8, 12), "GIF", [image(8, 12, 1)]))
    gif[6:10] = struct.pack("<HH", 10000, 9000)
    bmp = bytearray(pil(image(8, 12), "BMP"))
    bmp[18:26] = struct.pack("<ii", 30000, -30000)
    webp = bytearray(pil(image(8, 12), "WEBP", [image(8, 12, 1)], lossless=True))
    webp[24:30] = (16383).to_bytes(3, "little") + (16383).to_bytes(3, "little")
    jxl = JXL_CODESTREAM[:2] + bytes([0b11111100, 0b11111111, 0b11111111, 0b1111111]) + JXL_CODESTREAM[6:]
    return {"PNG": (bytes(png), (1, 20000, 20000)), "JPEG": (bytes(jpeg), (1, 30000, 20000)),
            "GIF": (bytes(gif), (2, 9000, 10000)), "BMP": (bytes(bmp), (1, 30000, 30000)),
            "WebP": (bytes(webp), (2, 16384, 16384)), "JPEG XL": (jxl, None)}


def limit_message(what, size, limit):
    frames, height, width = size
    return LIMIT_MESSAGE.format(what=what, w=width, h=height, frames=f" x {frames} frames" if frames > 1 else "",
                                n=frames * height * width, limit=limit)


def test_bombs_are_rejected_from_the_header_eagerly_and_in_a_graph():
    check = tf.function(lambda data, what: fmt.check_pixel_budget(data, fmt.MAX_PIXELS, what))
    check(tf.constant(b"\xff\xd8\xff"), tf.constant("warm-up"))  # traces once (a one-time cost per process)
    for name, (data, size) in bombs().items():
        got = declared(data)
        if size is None:  # JPEG XL: the patched SizeHeader declares a U32 height, fixed ratio
            assert got[0] == 1 and got[1] * got[2] > fmt.MAX_PIXELS, got
            size = got
        assert got == size, name
        message = re.escape(limit_message(f"bomb.{name}", size, fmt.MAX_PIXELS))
        for run in (lambda: fmt.check_pixel_budget(data, fmt.MAX_PIXELS, f"bomb.{name}"),
                    lambda: check(tf.constant(data), tf.constant(f"bomb.{name}"))):
            start = time.perf_counter()
            with pytest.raises(tf.errors.InvalidArgumentError, match=message):
                run()
            assert time.perf_counter() - start < 0.5, name


def test_budget_boundaries():
    data = tf.io.encode_png(image(8, 12)).numpy()
    assert fmt.check_pixel_budget(data, 96, "x").numpy() == data  # exactly at the limit passes
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(limit_message("x", (1, 8, 12), 95))):
        fmt.check_pixel_budget(data, 95, "x")
    bomb = bombs()["PNG"][0]
    for off in (0, -1, tf.constant(0, tf.int64)):
        assert fmt.check_pixel_budget(bomb, off, "x").numpy() == bomb  # max_pixels <= 0 disables the check
    for unknown in (b"", b"\xff\xd8\xff", b"not an image"):  # unknown sizes pass to the decoder
        assert declared(unknown) == (-1, -1, -1)
        assert fmt.check_pixel_budget(unknown, 1, "x").numpy() == unknown


def test_works_in_tf_data_map_fn_and_a_saved_model(tmp_path):
    good = [s for s in samples(8, 12).values()] + [JXL_CODESTREAM]
    bomb = bombs()["PNG"][0]
    sizes = tf.data.Dataset.from_tensor_slices(good + [bomb]).map(fmt.declared_size)
    assert [tuple(s.numpy()) for s in sizes] == [(1, 8, 12)] * len(good) + [(1, 20000, 20000)]

    class Server(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, images):
            index = tf.range(tf.size(images))
            checked = tf.map_fn(lambda i: fmt.check_pixel_budget(
                images[i], 1000, tf.strings.format("image_bytes[{}]", i)), index, fn_output_signature=tf.string)
            return tf.map_fn(fmt.declared_size, checked, fn_output_signature=tf.int64)

    tf.saved_model.save(Server(), str(tmp_path / "server"))
    loaded = tf.saved_model.load(str(tmp_path / "server"))
    assert loaded.serve(tf.constant(good)).numpy().tolist() == [[1, 8, 12]] * len(good)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=re.escape(limit_message("image_bytes[2]", (1, 20000, 20000), 1000))):
        loaded.serve(tf.constant(good[:2] + [bomb]))


def test_walks_that_run_long():
    # 5000 RST markers before the SOF: past the JPEG walk's 4096 steps, tf.image.extract_jpeg_shape decides.
    jpeg = tf.io.encode_jpeg(image(8, 12)).numpy()
    padded = jpeg[:2] + b"\xff\xd0" * 5000 + jpeg[2:]
    assert declared(padded) == (1, 8, 12) == (1, *tf.io.decode_jpeg(padded).shape[:2])
    # A GIF frame whose data is 30000 one-byte sub-blocks, then a second frame: counted exactly. With 300000, past
    # the GIF walk's 2**13 steps of 16 sub-blocks, the rest of the bytes count as 12-byte frames: over any budget.
    head = b"GIF89a" + struct.pack("<HHBBB", 12, 8, 0x80, 0, 0) + bytes(6)  # a 2-colour global colour table
    frame = b"\x2c" + bytes(4) + struct.pack("<HH", 12, 8) + b"\x00\x02"  # image descriptor, LZW code size
    for blocks in (30000, 300000):
        data = head + frame + b"\x01\x00" * blocks + b"\x00" + frame + b"\x02\x4c\x01\x00\x3b"
        start = time.perf_counter()
        frames = declared(data)[0]
        assert time.perf_counter() - start < 3
        assert frames == 2 if blocks == 30000 else frames > (2 * blocks - 2 ** 17 * 2) // 12


def mutations(data, rng):
    """Truncations, bit flips, overwritten header bytes and random tails of `data` (seeded)."""
    out = [data[:k] for k in sorted(set(range(0, min(len(data), 48))) | set(rng.randint(0, len(data), 8)))]
    for _ in range(20):
        flipped = bytearray(data)
        for pos in rng.randint(0, min(len(data), 64), rng.randint(1, 4)):
            flipped[pos] ^= 1 << rng.randint(8)
        out.append(bytes(flipped))
    for _ in range(10):
        cut = rng.randint(2, min(len(data), 40))
        out.append(data[:cut] + rng.bytes(rng.randint(0, 64)))
    return out


def test_mutated_inputs_never_raise_and_never_declare_less_than_they_decode():
    rng = np.random.RandomState(14)
    base = list(samples(8, 12).values()) + [pil(image(9, 14), "GIF", [image(9, 14, 1)]), JXL_CODESTREAM,
                                             JXL_CONTAINER]
    checked = 0
    for data in base:
        for mutated in mutations(data, rng):
            size = declared(mutated)  # never raises
            # (TensorFlow's WebP decoder aborts the process on animated WebP: VP8X files are not decoded.)
            pixels = None if mutated[12:16] == b"VP8X" else decoded_pixels(mutated)
            if pixels is not None:
                checked += 1
                assert min(size) >= 0 and size[0] * size[1] * size[2] >= pixels, (mutated[:40], size, pixels)
            if mutated[:3] == b"\xff\xd8\xff":  # the JPEG walk agrees with libjpeg's header reader
                try:
                    shape = tuple(tf.image.extract_jpeg_shape(mutated).numpy()[:2])
                except tf.errors.InvalidArgumentError:
                    shape = None
                assert (size == (-1, -1, -1)) <= (shape is None) and (shape is None or size[1:] == shape), mutated
    assert checked > 50  # mutated files that still decode
    for seed in range(40):  # random bytes behind each signature
        r = np.random.RandomState(seed)
        for magic in (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"RIFF\0\0\0\0WEBPVP8X", b"\xff\x0a",
                      b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
            declared(magic + r.bytes(r.randint(0, 80)))


def test_rejecting_a_bomb_costs_megabytes_not_gigabytes():
    # In a fresh process: peak RSS after warming up on a good image, then after rejecting the 20000 x 20000 PNG
    # (decoding it would take 1.2 GB of output alone; the issue measured 4.5 GB and 7.6 s).
    code = ("import resource, struct, sys, time\n"
            "import tensorflow as tf\n"
            "from regnet_tf.data import format as fmt\n"
            "png = tf.io.encode_png(tf.zeros([8, 12, 3], tf.uint8)).numpy()\n"
            "fmt.check_pixel_budget(png, fmt.MAX_PIXELS, 'warm-up')\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "bomb = png[:16] + struct.pack('>II', 20000, 20000) + png[24:]\n"
            "start = time.perf_counter()\n"
            "for _ in range(5):\n"
            "    try:\n"
            "        fmt.check_pixel_budget(bomb, fmt.MAX_PIXELS, 'bomb')\n"
            "        sys.exit('not rejected')\n"
            "    except tf.errors.InvalidArgumentError:\n"
            "        pass\n"
            "growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
            "print(growth / 1024, time.perf_counter() - start)\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    growth_mb, seconds = map(float, result.stdout.split()[-2:])
    assert growth_mb < 50 and seconds < 1, (growth_mb, seconds)


def test_animated_webp_is_refused_before_decoding_whatever_the_budget():
    """TensorFlow 2.21's WebP decoders abort the process on a multi-frame WebP: check_pixel_budget refuses every
    animated WebP (VP8X animation flag), even with the budget disabled; still WebPs pass."""
    frames = [image(9, 14, seed) for seed in range(1, 3)]
    animated = pil(image(9, 14), "WEBP", frames, lossless=True)
    still = pil(image(9, 14), "WEBP", lossless=True)
    assert fmt.is_animated_webp(tf.constant(animated)).numpy() and not fmt.is_animated_webp(tf.constant(still)).numpy()
    for budget in (0, fmt.MAX_PIXELS):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_bytes\[2\]: animated WebP is not supported"):
            fmt.check_pixel_budget(tf.constant(animated), budget, "image_bytes[2]")
        assert fmt.check_pixel_budget(tf.constant(still), budget, "x").numpy() == still
    assert not fmt.is_animated_webp(tf.constant(b"RIFF")).numpy()  # short input: no error


def test_animated_webp_is_refused_by_the_writer_and_the_pipeline_without_a_budget():
    from regnet_tf.data import preprocess, records
    from regnet_tf.data.config import DataConfig

    animated = pil(image(9, 14), "WEBP", [image(9, 14, 1)], lossless=True)
    assert "a.webp: animated WebP is not supported" in records.over_budget(animated, 0, "a.webp")
    assert records.over_budget(pil(image(9, 14), "WEBP", lossless=True), 0, "b.webp") is None
    for training in (False, True):
        view = preprocess.pipeline_view(DataConfig(max_pixels=0, image_size=8), training)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"f record index 3: animated WebP"):
            view(tf.constant(animated), tf.constant([1, 2], tf.int64), tf.constant("f record index 3"))
