"""regnet_tf.data.folder: your own images as a data source (class folders, the held-out split, resolve, resume).

The split tests need no images (empty files with image extensions); one test reads real (tiny) demo JPEGs through
the input pipeline."""

import os
import types

import pytest

from regnet_tf.data import folder
from regnet_tf.data.config import DataConfig
from regnet_tf.data.folder import FolderSplit, resolve, scan
from regnet_tf.data.format import read_label_map


def _files(root, layout):
    """Empty files: layout = {relative class dir: count or [file names]}; returns root."""
    for d, files in layout.items():
        os.makedirs(os.path.join(root, d), exist_ok=True)
        for name in (files if isinstance(files, list) else [f"{i:03d}.jpg" for i in range(files)]):
            open(os.path.join(root, d, name), "wb").close()
    return str(root)


def _one_line(e):
    message = str(e.value)
    assert "\n" not in message, message
    return message


def test_stratified_hold_out_counts_per_class(tmp_path):
    root = _files(tmp_path / "photos", {"b": 25, "a": 10, "c": 3, "d": 2})
    # other extensions count; hidden files, other files and hidden folders do not
    _files(tmp_path / "photos", {"a": ["x.PNG", "y.jpeg", "notes.txt", ".hidden.jpg", "._a.jpg"],
                                 ".ipynb_checkpoints": 4})
    split = scan(root)
    assert split.root == os.path.abspath(root) and split.classes == ("a", "b", "c", "d") and split.held_out
    assert (split.validation_fraction, split.seed) == (0.1, 0)
    # per class: round(n x 0.1) half up, at least 1, at most n - 1
    assert split.counts("validation") == [1, 3, 1, 1] and split.counts("train") == [11, 22, 2, 1]
    train, val = {p for p, _ in split.train}, {p for p, _ in split.validation}
    assert not train & val and len(train | val) == 12 + 25 + 3 + 2
    assert {"a/x.PNG", "a/y.jpeg"} <= train | val and not any(".hidden" in p or "._" in p for p in train | val)
    assert all(p.split("/")[0] == split.classes[k] for p, k in split.train + split.validation)
    assert scan(root, validation_fraction=0.5).counts("validation") == [6, 13, 2, 1]  # 12.5 -> 13; d keeps one
    abs_paths, labels = split.paths("validation")
    assert all(os.path.isfile(p) for p in abs_paths) and labels == [k for _, k in split.validation]


def test_split_is_deterministic_and_seeded(tmp_path):
    root = _files(tmp_path / "photos", {"cat": 40, "dog": 40})
    first, again, other = scan(root, 0.25, seed=0), scan(root, 0.25, seed=0), scan(root, 0.25, seed=1)
    assert first == again and first.counts("validation") == [10, 10]
    assert set(first.validation) != set(other.validation) and other.counts("validation") == [10, 10]
    # a class's hold-out depends on its own files and the seed only, not on the other classes
    _files(tmp_path / "photos", {"bird": 5})
    with_bird = scan(root, 0.25, seed=0)
    assert [p for p, k in with_bird.validation if p.startswith("cat/")] == [
        p for p, k in first.validation if p.startswith("cat/")]


def test_validation_folder_is_used_as_is_and_train_alone_holds_out(tmp_path):
    root = _files(tmp_path / "photos", {"train/a": 5, "train/b": 4, "validation/a": 2, "validation/b": 1})
    split = scan(root)
    assert not split.held_out and split.classes == ("a", "b")
    assert split.counts("train") == [5, 4] and split.counts("validation") == [2, 1]
    assert all(p.startswith("train/") for p, _ in split.train)
    assert sorted(split.validation) == [("validation/a/000.jpg", 0), ("validation/a/001.jpg", 0),
                                        ("validation/b/000.jpg", 1)]
    alone = _files(tmp_path / "alone", {"train/a": 10, "train/b": 10})
    split = scan(alone)
    assert split.held_out and split.counts("validation") == [1, 1]
    assert all(p.startswith("train/") for p, _ in split.train + split.validation)


def test_json_round_trip_and_atomic_save(tmp_path):
    split = scan(_files(tmp_path / "photos", {"a": 3, "b": 4}))
    assert FolderSplit.from_json(split.to_json()) == split
    path = split.save(str(tmp_path / "split.json"))
    assert FolderSplit.load(path) == split and sorted(os.listdir(tmp_path)) == ["photos", "split.json"]
    empty_val = FolderSplit("/x", ("a", "b"), (("a/1.jpg", 0),), (), True, 0.1, 0)
    assert FolderSplit.from_json(empty_val.to_json()) == empty_val
    with open(path, "w") as f:
        f.write('{"version": 1, "root": "/x"}')
    with pytest.raises(ValueError, match="not a data split file") as e:
        FolderSplit.load(path)
    _one_line(e)


def test_resolve_fills_the_sizes_and_writes_the_split_and_label_map(tmp_path):
    root = _files(tmp_path / "photos", {"cat": 20, "dog": 12, "emu": 8})
    config = DataConfig(source="folder", data_dir=root)
    assert (config.num_classes, config.num_train_examples, config.num_eval_examples) == (None, None, None)
    lines = []
    run = str(tmp_path / "runs" / "x")
    resolved = resolve(config, run, lines.append)
    split = FolderSplit.load(os.path.join(run, "data_split.json"))
    assert (resolved.num_classes, resolved.num_train_examples, resolved.num_eval_examples) == (3, 36, 4)
    assert resolved.split_file == os.path.join(run, "data_split.json") and len(split.validation) == 4
    assert resolved.num_trained_examples == 36 and resolved.num_examples("validation") == 4
    assert open(os.path.join(run, "label_map.txt")).read() == "0 cat\n1 dog\n2 emu\n"
    assert read_label_map(run, 0) == {0: "cat", 1: "dog", 2: "emu"}
    assert lines == [f"data: 3 classes from {root} (cat, dog, emu): 36 training images, 4 held out for validation "
                     f"(10%, seed 0, stratified), split in {run}/data_split.json"]
    assert sorted(os.listdir(run)) == ["data_split.json", "label_map.txt"]  # no temporary files left
    memory = resolve(config)  # without a run directory: in memory
    assert memory.split_file is None and memory.num_eval_examples == 4 and not os.path.exists(root + "/data_split.json")
    assert resolve(resolved, run) == resolved  # resolving again changes nothing
    fewer = resolve(DataConfig(source="folder", data_dir=root, num_classes=10))  # fewer classes than outputs: allowed
    assert fewer.num_classes == 10
    tfrecord = DataConfig(data_dir=root)
    assert resolve(tfrecord, run) is tfrecord and tfrecord.num_classes == 1000


def test_resume_reads_the_stored_split_after_files_were_added(tmp_path):
    root = _files(tmp_path / "photos", {"cat": 10, "dog": 10})
    run = str(tmp_path / "run")
    first = resolve(DataConfig(source="folder", data_dir=root), run)
    stored = open(first.split_file).read()
    _files(tmp_path / "photos", {"cat": ["new.jpg"], "fox": 5})  # the folder grows after the run started
    lines = []
    again = resolve(DataConfig(source="folder", data_dir=root, split_seed=7), run, lines.append)
    assert again == first and open(first.split_file).read() == stored
    assert "split read from" in lines[0] and "split_seed=7" in lines[0]
    assert scan(root).classes == ("cat", "dog", "fox")  # a new run would see the new class
    # resolved config with its split_file, without the run: the stored split too
    assert resolve(DataConfig(source="folder", data_dir=root, split_file=first.split_file)).num_classes == 2


def test_errors_are_one_line_naming_the_problem_and_the_fix(tmp_path):
    def fails(exc, match, fn, *args, **kwargs):
        with pytest.raises(exc, match=match) as e:
            fn(*args, **kwargs)
        return _one_line(e)

    one = _files(tmp_path / "one", {"cat": 5})
    assert "cat" in fails(ValueError, "needs at least 2 classes", scan, one)
    empty = _files(tmp_path / "empty", {"cat": 5, "dog": 0})
    assert "dog" in fails(ValueError, "empty class folder", scan, empty)
    few = _files(tmp_path / "few", {"cat": 5, "dog": 1})
    message = fails(ValueError, "too few images", scan, few)
    assert "dog (1 image)" in message and "add images" in message and "validation/" in message
    nothing = _files(tmp_path / "nothing", {"cat": 0, "dog": ["readme.txt"]})
    assert "root/<class name>/<image>" in fails(FileNotFoundError, "no images", scan, nothing)
    fails(FileNotFoundError, "does not exist", scan, tmp_path / "missing")
    assert "e.g. 0.1" in fails(ValueError, r"validation_fraction=0 must be in \(0, 1\)", scan, few, 0)
    scan(_files(tmp_path / "given", {"train/a": 1, "train/b": 1, "validation/a": 1, "validation/b": 1}), 0)  # no need
    many = _files(tmp_path / "many", {f"c{i:02d}": 2 for i in range(12)})
    message = fails(ValueError, "has 12 classes, more than data.num_classes=10", resolve,
                    DataConfig(source="folder", data_dir=many, num_classes=10))
    assert "remove data.num_classes" in message
    mixed = _files(tmp_path / "mixed", {"train/a": 2, "train/b": 2, "train/c": 2, "validation/a": 1,
                                        "validation/d": 1})
    message = fails(ValueError, "different class folders", scan, mixed)
    assert "only in train/: b, c" in message and "only in validation/: d" in message
    fails(ValueError, "validation/ but no train/", scan, _files(tmp_path / "val", {"validation/a": 2}))
    run = str(tmp_path / "run")
    resolve(DataConfig(source="folder", data_dir=many), run)
    os.rename(many, str(tmp_path / "moved"))
    message = fails(ValueError, "holds the split of the folder", resolve,
                    DataConfig(source="folder", data_dir=str(tmp_path / "moved")), run)
    assert many in message and str(tmp_path / "moved") in message and "--data_dir" in message
    fails(ValueError, "validation_fraction must be in", DataConfig, source="folder", validation_fraction=1.0)
    fails(FileNotFoundError, "data_dir is not set", resolve, DataConfig(source="folder"))


def test_data_config_folder_sizes_stay_none_until_resolved():
    config = DataConfig(source="folder", data_dir="photos")
    assert (config.num_classes, config.num_train_examples, config.num_eval_examples) == (None, None, None)
    assert (config.validation_fraction, config.split_seed, config.split_file) == (0.1, 0, None)
    for read in (lambda: config.num_trained_examples, lambda: config.num_examples("validation")):
        with pytest.raises(ValueError, match=r"call regnet_tf.data.folder.resolve\(config\)") as e:
            read()
        _one_line(e)
    assert not folder.is_resolved(config) and folder.is_resolved(DataConfig())
    assert DataConfig().num_classes == 1000 and DataConfig(source="tfds").num_eval_examples == 50_000
    assert DataConfig().tfds_eval_split == "validation"


def test_tfds_eval_split_is_read_for_validation(monkeypatch):
    sources = pytest.importorskip("regnet_tf.data.sources")
    asked = []

    class Stop(Exception):
        pass

    def load(name, split, **kwargs):
        asked.append((name, split))
        raise Stop

    fake = types.SimpleNamespace(ReadConfig=lambda **k: None, load=load, decode=types.SimpleNamespace(
        SkipDecoding=lambda: None), core=types.SimpleNamespace(registered=types.SimpleNamespace(
            DatasetNotFoundError=LookupError)))
    monkeypatch.setattr(sources, "_tfds", lambda: fake)
    for config, split in ((DataConfig(source="tfds", tfds_name="cifar100", tfds_eval_split="test"), "validation"),
                          (DataConfig(source="tfds", tfds_name="cifar100", tfds_eval_split="test"), "train"),
                          (DataConfig(source="tfds"), "validation")):
        with pytest.raises(Stop):
            sources._tfds_source(config, split, False, None)
    assert asked == [("cifar100", "test"), ("cifar100", "train"), ("imagenet2012", "validation")]


def test_demo_folder_through_the_input_pipeline(tmp_path):
    from regnet_tf.data import demo
    from regnet_tf.data.sources import check_data, input_pipeline, label_map_path

    root = demo.write_folder(str(tmp_path / "photos"), classes=("disk", 1, "stripes"), per_class=5, min_size=24,
                             max_size=24)
    assert sorted(os.listdir(root)) == ["disk", "square", "stripes"]
    assert sorted(os.listdir(os.path.join(root, "disk"))) == [f"{i}.jpg" for i in range(5)]
    again = demo.write_folder(str(tmp_path / "again"), classes=("disk",), per_class=2, min_size=24, max_size=24)
    other = demo.write_folder(str(tmp_path / "other"), classes=("disk",), per_class=2, seed=1, min_size=24,
                              max_size=24)
    read = lambda r: open(os.path.join(r, "disk", "1.jpg"), "rb").read()  # noqa: E731
    assert read(again) == read(root) and read(other) != read(root)
    with pytest.raises(ValueError, match="unknown demo class 'cat'"):
        demo.write_folder(str(tmp_path / "x"), classes=("cat",))

    run = str(tmp_path / "run")
    config = resolve(DataConfig(source="folder", data_dir=root, image_size=16, validation_fraction=0.4), run)
    split = FolderSplit.load(config.split_file)
    assert split.counts("validation") == [2, 2, 2] and label_map_path(config) == os.path.join(run, "label_map.txt")
    check_data(config)
    batches = list(input_pipeline(config, "validation", 4))
    # batches come in any order unless config.deterministic (parallel batching): check the sizes as a set
    assert sorted(tuple(x.shape) for x, _ in batches) == [(2, 16, 16, 3), (4, 16, 16, 3)]
    labels = [int(v) for _, y in batches for v in y.numpy()]
    assert sorted(labels) == sorted(k for _, k in split.validation) and max(labels) < config.num_classes
    # an unresolved config resolves itself (in memory; no label map without a run)
    plain = DataConfig(source="folder", data_dir=root, image_size=16)
    assert sum(int(y.shape[0]) for _, y in input_pipeline(plain, "validation", 8)) == 3
    assert label_map_path(plain) is None
    with pytest.raises(ValueError, match="needs at least 2 classes"):
        check_data(DataConfig(source="folder", data_dir=os.path.join(str(tmp_path), "again")))
    layout = demo.write_folder(str(tmp_path / "split"), classes=(0, 1), per_class=3, validation_per_class=2,
                               min_size=24, max_size=24)
    split = scan(layout)
    assert not split.held_out and split.counts("train") == [3, 3] and split.counts("validation") == [2, 2]
