"""Regenerates the "All recipes" section of docs/RECIPES.md from the recipe files (`recipe.load`), so the tables
cannot drift from the recipes: `python tools/make_recipes_doc.py` (tests/test_recipes.py checks it is current).
Grids get one line each (their pattern and ranges), not a row per point."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(HERE, "docs", "RECIPES.md")
START, END = "## All recipes", "<!-- end of the generated recipe tables -->"
FAMILIES = [  # heading, the recipes directory
    ("ResNet-RS (Table 8 / Table 7)", "resnet_rs"),
    ("Additive study (Table 1)", "rs_additive"),
    ("Weight decay (Table 2, minival)", "rs_weight_decay"),
    ("RegNet (pycls zoo, design space, section 4)", "regnet"),
    ("RegNet paper baselines (Tables 3 and 4)", "regnet_baselines"),
    ("Fast scaling (Tables 5 / 6, searches)", "fast_scaling"),
    ("EfficientNet-RS", "efficientnet_rs"),
    ("Fine-tuning and transfer (docs/TRANSFER.md; Revisiting ResNets section 7.4)", "finetune"),
]
COLUMNS = ("recipe", "model", "res", "epochs", "batch", "peak lr", "opt", "wd", "LS", "RA (n, m)", "AA / mixup",
           "SD", "dropout", "average", "paper top-1")


def _num(x):
    return f"{x:g}"


def row(r):
    spec, d, o = r.spec(), r.data, r.optimizer
    model = r.model.name or (f"{r.model.scale['base']} x{_num(r.model.scale['factor'])}" if r.model.scale
                             else f"{r.model.kind} spec")
    for key, mark in (("se_ratio", "+SE"), ("resnetd_shortcut", "+D")):
        if r.model.spec.get(key):
            model += f" {mark}"
    if r.finetune.weights:
        model += f" from `{r.finetune.weights}`"
    average = "-"
    if r.ema.decay:
        average = f"EMA {_num(r.ema.decay)}" + (" (BN mom. 0)" if r.model.spec.get("bn_momentum") == 0 else "")
    elif r.swa.enabled:
        average = f"SWA from {r.swa.start:.0%}, every {_num(r.swa.every_epochs)} ep."
    if r.train.keep_best:
        average += "; best on minival" if d.minival_shards else "; best"
    lr = f"{r.peak_lr():.4g} {r.schedule.name}"
    if r.schedule.name == "step":
        lr += f" {list(r.schedule.boundaries)}"
    top1 = "" if r.paper_top1 is None else f"{r.paper_top1:.1f}"
    if r.zoo_top1 is not None and r.zoo_top1 != r.paper_top1:
        top1 += f" (zoo {r.zoo_top1:.1f})"
    cells = [f"`{r.name}`", model, d.image_size, _num(r.train.epochs), r.train.global_batch_size, lr,
             o.name + (" Nesterov" if o.nesterov and o.name == "sgd" else ""),
             _num(o.weight_decay) + (" all" if o.decay_all else ""), _num(r.regularization.label_smoothing),
             f"{d.randaug_layers}, {_num(d.randaug_magnitude)}" if d.randaug_layers else "-",
             f"{d.autoaugment or '-'} / {_num(d.mixup_alpha) if d.mixup_alpha else '-'}",
             _num(getattr(spec, "drop_path_rate", 0.0)), _num(getattr(spec, "dropout", 0.0)), average, top1]
    return "| " + " | ".join(str(c) for c in cells) + " |"


def section():
    from regnet_tf.train import recipe, recipe_files

    index = recipe_files.recipe_index()
    lines = [START, "", "Generated from the files by `python tools/make_recipes_doc.py` (`recipe.load`; a test checks the",
             "tables are current). SD = stochastic depth / drop connect, LS = label smoothing, RA = RandAugment (layers,",
             "magnitude), AA = AutoAugment, \"(BN mom. 0)\" = EMA with BN momentum 0, wd \"all\" = also BN and biases,",
             "opt = optimizer, paper top-1 \"(zoo x)\" = the released model's top-1 where it differs. \"+SE\" / \"+D\" =",
             "`model.spec` adds squeeze-excitation / ResNet-D. A scaled model is `base xfactor` (`model.scale`); \"from",
             "`weights`\" = fine-tuned from those weights (`finetune.weights`).", ""]
    for heading, folder in FAMILIES:
        names = [n for n in recipe.list_recipes() if os.path.basename(os.path.dirname(index[n])) == folder]
        lines += [f"#### {heading}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += [row(recipe.load(n)) for n in names] + [""]
    lines += ["#### Grids", "", "| pattern | ranges | recipes | example |", "|---|---|---|---|"]
    for g in recipe.list_grids():
        ranges = "; ".join(f"{a}: {', '.join(g.axes[a])}" for a in g.order)
        lines.append(f"| `{g.pattern}` | {ranges} | {len(g.names())} | `{g.names()[len(g.names()) // 2]}` |")
    return "\n".join(lines + ["", END])


def render(text):
    """`text` (docs/RECIPES.md) with its generated section replaced."""
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return head + section() + tail


def main():
    sys.path.insert(0, HERE)
    with open(DOC, encoding="utf-8") as f:
        text = render(f.read())  # before opening the file for writing: a failure leaves it as it was
    with open(DOC, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
