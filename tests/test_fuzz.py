"""A seeded fuzz suite of the input boundaries (issue 14): the corpus of tests/fuzz_corpus.py (a few hundred tiny
truncated, bit-flipped, header-corrupted, random and oversized-header images of every format) through

(a) the exported SavedModel (`serving_default`), loaded in a fresh process without regnet_tf (as TF Serving), each
    input alone and in mixed batches: every call returns finite outputs or raises InvalidArgumentError naming the
    input's index (exported with name_decode_errors=True, a corrupt file of a known format too: "image_bytes[i] could
    not be decoded: corrupt ..."),
    oversized ones the pixel budget's; the process survives; a good batch gives the same outputs after as before;
(b) `launch/build_tfrecords.py` (image folder -> TFRecords): no crash, every skipped file named and counted, the
    oversized ones as over the pixel budget, and every written record decodes (`check_records`);
(c) the input pipeline on the corpus as TFRecords (evaluation and training views): no crash, exactly the good
    images come out (labels identify them), and the skipped ones are named in tf.data's warnings.

A "good" input decodes with `tf.io.decode_image` and declares at most `MAX_PIXELS` pixels (decoders are lenient:
some mutants still decode). Under a minute on 2 cores.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import fuzz_corpus
from regnet_tf.data import format as data_format
from regnet_tf.data import make_example, records
from regnet_tf.data.config import MAX_PIXELS
from test_export import SERVING_ENV, SIZE, object_array, tiny_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="2")
EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "gif": ".gif", "bmp": ".bmp", "webp": ".webp", "random": ".jpg"}
UNNAMED_DECODER_ERRORS = False  # every rejection names its index (regnet_tf.train.serving_input)


def _start(args, env):
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


def _wait(proc, timeout=150):
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, f"exit code {proc.returncode}\n{err[-3000:]}"  # the process survived
    return out, err


def _decodes(data):
    try:
        tf.io.decode_image(data, channels=3, expand_animations=False)
        return True
    except tf.errors.InvalidArgumentError:
        return False


def _libjpeg_refuses(data):
    """A JPEG whose header libjpeg refuses (e.g. over its 65500 pixel limit): the pipeline's JPEG fast path
    (`preprocess.within_pixel_budget`) skips it with libjpeg's error instead of the budget's."""
    if not tf.io.is_jpeg(data):
        return False
    try:
        tf.image.extract_jpeg_shape(data)
        return False
    except tf.errors.InvalidArgumentError:
        return True


@pytest.fixture(scope="module")
def corpus():
    """The entries and which are good (decode, within the budget); oversized entries are never decoded here."""
    entries = fuzz_corpus.corpus(seed=14)
    assert 150 <= len(entries) <= 400 and max(len(e.data) for e in entries) < 4096
    assert fuzz_corpus.OVERSIZED_PIXELS == MAX_PIXELS
    over = [records.over_budget(e.data, MAX_PIXELS, e.name) is not None for e in entries]
    good = [not o and e.kind != "oversized" and _decodes(e.data) for e, o in zip(entries, over)]
    assert [e.name for e, o in zip(entries, over) if e.kind == "oversized" and not o] == []  # all rejected
    assert all(g for e, g in zip(entries, good) if e.kind == "valid")
    assert 20 <= sum(good) < len(entries) - 100  # some mutants decode, most do not
    return entries, good


def test_corpus_is_seeded_and_declares_what_it_says():
    a, b = fuzz_corpus.corpus(seed=14), fuzz_corpus.corpus(seed=14)
    assert a == b and a != fuzz_corpus.corpus(seed=15)
    sizes = {e.name: data_format.declared_size(e.data).numpy().tolist() for e in a if e.kind != "mutant"}
    assert sizes["png/valid"] == [1, 20, 24] and sizes["oversized/png_30000x30000"] == [1, 30000, 30000]
    assert sizes["oversized/jpeg_60000x60000"] == [1, 60000, 60000]
    assert sizes["oversized/bmp_50000x50000"] == [1, 50000, 50000]
    assert sizes["oversized/gif_animated_5000x5000x3"] == [3, 5000, 5000]
    assert data_format.declared_size(b"not an image").numpy().tolist() == [-1, -1, -1]


# ----------------------------------------------------------------------------------------- (a) serving

SERVE = r"""
import json, re, sys
import numpy as np, tensorflow as tf
export_dir, inputs, out = sys.argv[1:4]
data = np.load(inputs, allow_pickle=True)
corpus, good = [bytes(x) for x in data["corpus"]], [bytes(x) for x in data["good"]]
serve = tf.saved_model.load(export_dir).signatures["serving_default"]

def call(batch):
    try:
        logits = serve(image_bytes=tf.constant(batch, tf.string))["logits"].numpy()
        return {"status": "ok", "finite": bool(np.isfinite(logits).all()), "logits": logits.tolist()}
    except tf.errors.InvalidArgumentError as e:
        indices = sorted({int(i) for i in re.findall(r"image_bytes\[(\d+)\]", e.message)})
        return {"status": "invalid", "indices": indices, "message": e.message[:600]}
    except Exception as e:  # anything else is a failure of the test
        return {"status": type(e).__name__, "message": str(e)[:2000]}

before = call(good)
singles = [call([x]) for x in corpus]
failed = [i for i, r in enumerate(singles) if r["status"] != "ok"][:200]
named = [i for i in failed if singles[i].get("indices") == [0]][:200]  # whose error names the index
passed = [i for i, r in enumerate(singles) if r["status"] == "ok"][:200]
mixed_bad = call(good[:2] + [corpus[i] for i in named] + good[2:])
mixed_all_bad = call(good[:2] + [corpus[i] for i in failed] + good[2:])
mixed_ok = call(good + [corpus[i] for i in passed])
after = call(good)
assert "regnet_tf" not in sys.modules
json.dump({"before": before, "after": after, "singles": singles, "named": named, "passed": passed,
           "mixed_bad": mixed_bad, "mixed_all_bad": mixed_all_bad, "mixed_ok": mixed_ok}, open(out, "w"))
"""


@pytest.fixture(scope="module")
def runs(corpus, tmp_path_factory):
    """The three subprocesses, started at once (their TensorFlow start-ups overlap): {"serve", "build",
    "pipeline"}: (process, working directory)."""
    entries, good = corpus
    root = tmp_path_factory.mktemp("fuzz")
    procs = {"build": (_start([sys.executable, os.path.join(REPO, "launch", "build_tfrecords.py"), "--input",
                               _folder(entries, str(root / "folder")), "--output", str(root / "built"), "--shards",
                               "3", "--workers", "2"], ENV), root / "built")}
    records_dir = _corpus_records(entries, root / "records")
    procs["pipeline"] = (_start([sys.executable, "-c", PIPELINE, records_dir, str(len(entries)), str(3 * sum(good))],
                                dict(ENV, TF_CPP_MIN_LOG_LEVEL="1")), records_dir)
    from regnet_tf.train.export import export_saved_model

    # name_decode_errors: a file the decoder refuses fails naming its index too (the default names only the others)
    export_dir = export_saved_model(tiny_model(), root / "export" / "1", image_size=SIZE, name_decode_errors=True)
    valid = [e.data for e in entries if e.kind == "valid"]
    np.savez(root / "inputs.npz", corpus=object_array([e.data for e in entries]), good=object_array(valid))
    procs["serve"] = (_start([sys.executable, "-c", SERVE, str(export_dir), str(root / "inputs.npz"),
                              str(root / "out.json")], SERVING_ENV), root)
    yield procs
    for proc, _ in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_saved_model_in_a_fresh_process_survives_the_corpus(corpus, runs):
    entries, good = corpus
    proc, root = runs["serve"]
    _wait(proc)
    out = json.load(open(root / "out.json"))
    problems, unnamed = [], []
    for e, g, r in zip(entries, good, out["singles"]):
        if r["status"] == "ok":
            if not r["finite"]:
                problems.append(f"{e.name}: non-finite outputs")
        elif r["status"] != "invalid":
            problems.append(f"{e.name}: {r['status']} (not InvalidArgumentError) {r['message'][:300]!r}")
        elif r["indices"] != [0]:
            unnamed.append((e, r))
        if e.kind == "oversized" and not (r["status"] == "invalid" and "max_pixels" in r["message"]):
            problems.append(f"{e.name}: not rejected by the pixel budget: {r['status']} {r.get('message', '')[:200]}")
        if g and r["status"] != "ok":  # an image the decoder reads is served
            problems.append(f"{e.name}: a good image failed: {r['message'][:200]!r}")
    assert not problems, "\n".join(problems)
    # Every rejected input names its index: no signature, over the pixel budget, refused by the decoder.
    wrong = [f"{e.name}: {r['indices']} {r['message'][:300]!r}" for e, r in unnamed if not (
        UNNAMED_DECODER_ERRORS and data_format.detect_image_format(e.data) and "decode_image_bytes" in r["message"])]
    assert not wrong, f"{len(wrong)} rejected inputs fail without naming image_bytes[0]:\n" + "\n".join(wrong[:5])
    served = {e.name for e, r in zip(entries, out["singles"]) if r["status"] == "ok"}
    assert served == {e.name for e, g in zip(entries, good) if g}

    # Mixed batches: the inputs whose errors name their index, between good ones: the error names one of their
    # positions (2 .. 2 + len(named) - 1); all rejected inputs between good ones: InvalidArgumentError
    bad = out["mixed_bad"]
    assert len(out["named"]) >= 40 and bad["status"] == "invalid" and bad["indices"], bad
    assert all(2 <= i < 2 + len(out["named"]) for i in bad["indices"]), bad["indices"]
    assert out["mixed_all_bad"]["status"] == "invalid"
    # good and leniently decoded inputs in one batch: the same outputs as one by one
    ok = out["mixed_ok"]
    assert ok["status"] == "ok" and ok["finite"]
    singles = np.array([out["singles"][i]["logits"][0] for i in out["passed"]])
    np.testing.assert_allclose(np.array(ok["logits"])[len(out["before"]["logits"]):], singles, atol=1e-4)
    # the server still serves, and serves the same
    assert out["before"]["status"] == out["after"]["status"] == "ok"
    np.testing.assert_allclose(out["after"]["logits"], out["before"]["logits"], atol=1e-6)


# -------------------------------------------------------------------------------- (b) build_tfrecords


def _folder(entries, root):
    """Writes root/c<k % 3>/<k>_<name>.<ext of its base format> (`root` None: only the relative paths); returns
    root, or the relative file paths in entry order."""
    paths = []
    for k, e in enumerate(entries):
        base = e.name.split("/")[1 if e.name.startswith("oversized/") else 0]
        ext = next(v for key, v in EXTENSIONS.items() if base.startswith(key))
        paths.append(os.path.join(f"c{k % 3}", f"{k:03d}_{e.name.replace('/', '_')}{ext}"))
        if root is not None:
            os.makedirs(os.path.join(root, f"c{k % 3}"), exist_ok=True)
            with open(os.path.join(root, paths[-1]), "wb") as f:
                f.write(e.data)
    return root if root is not None else paths


def test_build_tfrecords_skips_names_and_counts_every_bad_file(corpus, runs):
    entries, good = corpus
    proc, out = runs["build"]
    stdout, stderr = _wait(proc)
    paths = _folder(entries, None)
    skipped_lines = [line for line in stderr.splitlines() if line.startswith("skipped ")]
    n_good, n_big = sum(good), sum(e.kind == "oversized" for e in entries)
    for e, g, path in zip(entries, good, paths):
        named = [line for line in skipped_lines if os.sep + path + ":" in line]
        assert len(named) == (0 if g else 1), (e.name, named)
        if e.kind == "oversized":
            assert named[0].startswith("skipped over-budget image ") and f"{path}: the image declares" in named[0]
            assert f"over the limit of {MAX_PIXELS} (max_pixels)" in named[0]
    big = sum(line.startswith("skipped over-budget") for line in skipped_lines)
    assert big >= n_big and len(skipped_lines) == len(entries) - n_good
    assert (f"wrote {n_good} images of 3 classes into 3 shards" in stdout
            and f"skipped {len(entries) - n_good - big} corrupt images and {big} over the pixel budget "
                f"(--max_pixels={MAX_PIXELS})" in stdout), stdout
    report = records.check_records(str(out / "train-*"))
    assert report["records"] == report["ok"] == n_good
    assert not report["corrupt"] and not report["over_budget"] and not report["truncated"]


# ------------------------------------------------------------------------------------ (c) input pipeline

PIPELINE = r"""
import json, sys
from regnet_tf.data import DataConfig, input_pipeline
data_dir, n, train_take = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = DataConfig(data_dir=data_dir, num_classes=n, image_size=16, eval_pattern="train-*", shuffle_buffer=64,
                    deterministic=True, seed=3, cycle_length=2)
labels = {"eval": [int(v) for _, y in input_pipeline(config, "validation", 32) for v in y.numpy()],
          "train": [int(v) for _, y in input_pipeline(config, "train", 8).take(train_take // 8) for v in y.numpy()]}
print(json.dumps(labels))
"""


def _corpus_records(entries, directory):
    """The corpus as two TFRecord files, entry k with stored label k + 1 (class k identifies it)."""
    os.makedirs(directory)
    with tf.io.TFRecordWriter(str(directory / "train-00000-of-00002")) as w0, \
            tf.io.TFRecordWriter(str(directory / "train-00001-of-00002")) as w1:
        for k, e in enumerate(entries):
            (w0, w1)[k % 2].write(make_example(e.data, k + 1, 16, 16))
    return str(directory)


def test_input_pipeline_yields_exactly_the_good_images(corpus, runs):
    entries, good = corpus
    proc, records_dir = runs["pipeline"]
    stdout, stderr = _wait(proc)
    n_good = sum(good)
    labels = json.loads(stdout.strip().splitlines()[-1])
    expected = sorted(k for k, g in enumerate(good) if g)
    assert sorted(labels["eval"]) == expected  # each good image once, no other
    assert set(labels["train"]) == set(expected)  # 3 epochs' worth: every good image, no other
    warnings = [line for line in stderr.splitlines() if "Error raised with error message" in line]
    assert len(warnings) >= len(entries) - n_good  # the evaluation pass alone skips each bad one once
    refused = [e.name for e in entries if e.kind == "oversized" and _libjpeg_refuses(e.data)]
    assert refused == ["oversized/jpeg_65535x65535"]
    for k, e in enumerate(entries):
        if e.kind == "oversized" and e.name not in refused:  # that one fails on libjpeg's own header error
            name = f"train-0000{k % 2}-of-00002 record index {k // 2}: the image declares"
            assert any(name in line for line in warnings), (e.name, name)
    # the same records through check_records: the bad ones listed, the oversized ones as over the budget
    report = records.check_records(os.path.join(records_dir, "train-*"))
    assert report["ok"] == n_good and report["records"] == len(entries)
    over = {(os.path.basename(f), i) for f, i, _ in report["over_budget"]}
    assert {(f"train-0000{k % 2}-of-00002", k // 2) for k, e in enumerate(entries) if e.kind == "oversized"} <= over
    assert len(report["corrupt"]) + len(over) == len(entries) - n_good
