"""Population sweeps: sample models from a design space, train each with a recipe, one JSON record per model.

    plan = make_plan("anynetx_a", "400MF", samples=32, seed=0)        # deterministic in the seed
    run_sweep(plan, "regnet_design_space", out="sweeps/a", shard=(0, 1), overrides=["train.steps=5"])

Layout of ``out`` (local or any `tf.io.gfile` path such as ``gs://``):

- ``plan.json``: the sweep (space, regime, seed, samples, resolution, recipe, overrides) and its sampled specs,
  written once; a sweep started again with other settings is refused, so shards and restarts share one plan;
- ``records/<index>.json``: one record per finished model (spec, complexity, errors, epochs, steps, seconds),
  written to a temporary name and renamed, so a reader never sees half a record and shards never clobber each
  other (each model index belongs to exactly one shard: index % n == i);
- ``runs/<index>/``: the model's training run (checkpoints: an interrupted model resumes where it stopped).

A finished model (its record exists) is never trained again. `load_records(out)` reads every record.
"""

from __future__ import annotations

import json
import os
import socket
import time

from regnet_tf.design import spaces
from regnet_tf.train import recipe as recipe_lib
from regnet_tf.zoo import complexity, spec_kinds

PLAN = "plan.json"
RECORDS = "records"
RUNS = "runs"


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def parse_shard(text: str):
    """"i/n" -> (i, n) with 0 <= i < n."""
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--shard must be i/n (e.g. 0/4: the first of 4 hosts); got {text!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"--shard i/n needs 0 <= i < n; got {text!r}")
    return i, n


def spec_to_dict(spec) -> dict:
    """A spec as plain data: {"kind": ..., field: value, ...} (lists for tuples)."""
    import dataclasses

    fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
    return {"kind": spec.kind, **{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}}


def spec_from_dict(d: dict):
    d = dict(d)
    return spec_kinds()[d.pop("kind")](**d)


def make_plan(space, regime, samples: int, seed: int = 0, resolution: int = 224, recipe: str = "",
              overrides=(), hparams=None) -> dict:
    """The sweep: ``samples`` specs of ``space`` (a name or a space object) in the flop ``regime`` (`spaces.sample`,
    deterministic in ``seed``), with the recipe and overrides every model trains with. ``hparams``: one dict per
    model ({"lr": ..., "wd": ...}, `regnet_tf.design.studies.sample_hparams`) that model trains with and records;
    a model with a "resolution" of its own is sampled in the regime at that resolution (and trains at it, see
    `model_recipe`)."""
    _check_hparams(hparams, samples)
    own = [int(h.get("resolution", resolution)) for h in hparams] if hparams else [resolution] * samples
    specs = [None] * samples
    for r in sorted(set(own)):  # each resolution's models drawn from a stream of their own
        at = [k for k, v in enumerate(own) if v == r]
        drawn = spaces.sample(space, len(at), regime=regime, seed=seed if r == resolution else seed * 10007 + r,
                              resolution=r)
        for k, spec in zip(at, drawn):
            specs[k] = spec
    plan = {"space": spaces.get_space(space).name, "regime": regime if isinstance(regime, str) else list(regime),
            "samples": samples, "seed": seed, "resolution": resolution, "recipe": recipe,
            "overrides": list(overrides), "specs": [spec_to_dict(s) for s in specs]}
    if hparams is not None:
        plan["hparams"] = [dict(h) for h in hparams]
    return plan


def model_plan(model: str, samples: int, recipe: str = "", overrides=(), hparams=None) -> dict:
    """A sweep of one registered ``model`` trained ``samples`` times, each with its own ``hparams`` (Figure 22:
    lr and wd per run), at the model's resolution; ``space`` is the model's name and there is no regime."""
    from regnet_tf.zoo import default_resolution, get_spec

    _check_hparams(hparams, samples)
    plan = {"space": model, "model": model, "regime": None, "samples": samples, "seed": 0,
            "resolution": default_resolution(model), "recipe": recipe, "overrides": list(overrides),
            "specs": [spec_to_dict(get_spec(model))] * samples}
    if hparams is not None:
        plan["hparams"] = [dict(h) for h in hparams]
    return plan


def _check_hparams(hparams, samples):
    if hparams is not None and len(hparams) != samples:
        raise ValueError(f"hparams needs one dict per model: {len(hparams)} for {samples} models")
    unknown = sorted({k for h in hparams or () for k in h} - set(HPARAM_KEYS) - {"resolution"})
    if unknown:
        raise ValueError(f"unknown sampled hyper-parameter {unknown[0]!r}; valid: {', '.join(HPARAM_KEYS)}, "
                         "resolution")


HPARAM_KEYS = {"lr": "schedule.base_lr", "wd": "optimizer.weight_decay"}  # a sampled value -> the recipe key


def model_resolution(plan: dict, index: int) -> int:
    """The resolution model ``index``'s flops are counted at: its own sampled one, or the plan's."""
    sampled = plan["hparams"][index] if plan.get("hparams") else {}
    return int(sampled.get("resolution", plan["resolution"]))


def _read_json(path):
    with _gfile().GFile(path, "r") as f:
        return json.loads(f.read())


def _write_json_atomic(path, data):
    gfile = _gfile()
    tmp = f"{path}.tmp-{socket.gethostname()}-{os.getpid()}"
    with gfile.GFile(tmp, "w") as f:
        f.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
    gfile.rename(tmp, path, overwrite=True)


def open_sweep(out: str, plan: dict) -> dict:
    """Writes ``out/plan.json`` for a new sweep, or checks that an existing one is the same sweep; returns it."""
    gfile = _gfile()
    path = os.path.join(out, PLAN)
    gfile.makedirs(os.path.join(out, RECORDS))
    if gfile.exists(path):
        old = _read_json(path)
        keys = ("space", "regime", "samples", "seed", "resolution", "recipe", "overrides", "hparams")
        # a regime is its bounds, however written ("400MF", "360MF-400MF", [360e6, 400e6]: launch/search.py's)
        same = {"regime": lambda a, b: spaces.parse_regime(a) == spaces.parse_regime(b)}
        changed = {k: (old.get(k), plan.get(k)) for k in keys
                   if not same.get(k, lambda a, b: a == b)(old.get(k), plan.get(k))}
        if changed:
            raise ValueError(f"{out} holds another sweep (differs in {changed}); use another --out or the same "
                             "settings to resume it")
        return old
    _write_json_atomic(path, plan)
    return plan


def record_path(out: str, index: int) -> str:
    return os.path.join(out, RECORDS, f"{index:06d}.json")


def pending(out: str, plan: dict, shard=(0, 1)):
    """Indices of this shard's models without a record."""
    i, n = shard
    return [k for k in range(len(plan["specs"])) if k % n == i and not _gfile().exists(record_path(out, k))]


def load_records(out: str):
    """Every finished model's record of a sweep directory, by index."""
    gfile = _gfile()
    pattern = os.path.join(out, RECORDS, "*.json")
    return sorted((_read_json(p) for p in gfile.glob(pattern)), key=lambda r: r["index"])


def model_recipe(plan: dict, index: int):
    """The recipe of model ``index``: the plan's recipe with the sampled spec as its model and the overrides."""
    raw = recipe_lib.read_raw(plan["recipe"])
    spec = dict(plan["specs"][index])
    raw["model"] = {**{k: v for k, v in (raw.get("model") or {}).items() if k not in ("name", "kind", "spec")},
                    "kind": spec.pop("kind"), "spec": spec}
    sampled = plan["hparams"][index] if plan.get("hparams") else {}
    per_model = [f"{HPARAM_KEYS[k]}={v}" for k, v in sampled.items() if k in HPARAM_KEYS]
    raw = recipe_lib.apply_overrides(raw, list(plan["overrides"]) + per_model)
    if "resolution" in sampled:  # trains and evaluates at its resolution, relative to the sweep's (trials: smaller)
        data = raw.setdefault("data", {})
        base = data.get("image_size", recipe_lib.DataConfig.image_size)  # raw is merged: unset means the default
        scale = model_resolution(plan, index) / plan["resolution"]
        data["image_size"] = max(8, round(base * scale))
        if data.get("eval_short_side"):
            data["eval_short_side"] = max(data["image_size"], round(data["eval_short_side"] * scale))
    return recipe_lib.from_dict(raw, name=f"{plan['space']}_{index:06d}")


def train_one(out: str, plan: dict, index: int, log=print) -> dict:
    """Trains model ``index`` (resuming its run) and writes its record; returns the record."""
    import keras

    from regnet_tf.train.trainer import Trainer  # imports TensorFlow: only when a model trains

    recipe = model_recipe(plan, index)
    spec = spec_from_dict(plan["specs"][index])
    start = time.time()
    keras.backend.clear_session()
    trainer = Trainer(recipe, os.path.join(out, RUNS, f"{index:06d}"), log=log)
    metrics = trainer.train(export=False)
    record = {"index": index, "space": plan["space"], "spec": plan["specs"][index],
              "complexity": complexity(spec, model_resolution(plan, index)), "top1": metrics["top1"],
              "top5": metrics["top5"],
              "error": 100.0 - metrics["top1"], "top5_error": 100.0 - metrics["top5"],
              "examples": metrics["examples"], "epochs": trainer.total_steps / trainer.steps_per_epoch,
              "steps": trainer.total_steps, "seconds": round(time.time() - start, 1), "host": socket.gethostname()}
    if plan.get("hparams"):
        record["hparams"] = plan["hparams"][index]
    _write_json_atomic(record_path(out, index), record)
    return record


def run_sweep(out: str, plan: dict, shard=(0, 1), log=print):
    """Trains this shard's unfinished models one after the other, with a progress bar over models; returns every
    finished record of the sweep (all shards)."""
    import keras

    plan = open_sweep(out, plan)
    todo = pending(out, plan, shard)
    what = f"{plan['space']} {plan['regime']}" if plan.get("regime") else f"{plan['space']} (a fixed model)"
    log(f"sweep {out}: {what}, {len(plan['specs'])} models; shard {shard[0]}/{shard[1]}: {len(todo)} to train")
    bar = keras.utils.Progbar(len(todo), unit_name="model")
    for index in todo:
        r = train_one(out, plan, index, log=lambda message: None)
        bar.add(1, values=[("error", r["error"])])
    return load_records(out)


def best(records):
    """The record with the lowest error (None for no records)."""
    return min(records, key=lambda r: r["error"]) if records else None
