"""The transfer study of docs/TRANSFER.md: does fine-tuning a trained network beat training from scratch here?

    python tools/transfer_demo.py --out /tmp/transfer [--seeds 0 1 2]

1. Two image folders of demo images (`regnet_tf.data.demo.write_folder`): a source task of 5 shape classes (disk,
   square, triangle, ring, cross; 1,000 training + 100 validation images each) and a target task of the 5 other
   classes (ellipse, stripes, checkerboard, dots, grid) with few training images (30 each) and 100 validation each.
2. Pre-training: `launch/train.py --recipe demo --data_dir <shapes>` (the quick start's network and recipe).
3. Per seed, the same `finetune_demo` run on the target folder: from the pre-trained run (`--weights`); from random
   initialization (`--weights ""`, no frozen phase: `finetune.freeze_epochs=0`) with everything else equal; and from
   random initialization at 10x the learning rate (the demo recipe's from-scratch lr, in case the fine-tuning lr is
   what holds the scratch run back).
4. The validation top-1 after every epoch from each run's metrics.jsonl: a table (mean and per seed) and the plot
   docs/images/transfer_demo.png (`--plot`).

Every step is a command a user could type; the runs stay in --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = ("disk", "square", "triangle", "ring", "cross")
TEXTURES = ("ellipse", "stripes", "checkerboard", "dots", "grid")


def train(args, log):
    cmd = [sys.executable, os.path.join(ROOT, "launch", "train.py"), *args, "--export=false"]
    print("$", " ".join(cmd), flush=True)
    with open(log, "w", encoding="utf-8") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


def curve(model_dir, final=False):
    """[(epoch, validation top-1)] of a run's evaluations during training; `final`: its final evaluation's top-1."""
    out = []
    with open(os.path.join(model_dir, "metrics.jsonl"), encoding="utf-8") as f:
        for line in f:
            m = json.loads(line)
            if m.get("split") == "validation" and ("epoch" in m or final):
                out.append((m.get("epoch"), m["top1"]))
    return out[-1][1] if final else out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--pretrain_epochs", type=float, default=12)
    p.add_argument("--epochs", type=float, default=20)
    p.add_argument("--per_class", type=int, default=30)
    p.add_argument("--plot", default=os.path.join(ROOT, "docs", "images", "transfer_demo.png"))
    a = p.parse_args()
    from regnet_tf.data import demo

    shapes, textures = os.path.join(a.out, "shapes"), os.path.join(a.out, "textures")
    if not os.path.isdir(shapes):
        demo.write_folder(shapes, SHAPES, per_class=1000, validation_per_class=100, seed=1)
    if not os.path.isdir(textures):
        demo.write_folder(textures, TEXTURES, per_class=a.per_class, validation_per_class=100, seed=2)
    pre = os.path.join(a.out, "pretrain")
    train(["--recipe", "demo", "--data_dir", shapes, "--model_dir", pre, "--epochs", str(a.pretrain_epochs)],
          os.path.join(a.out, "pretrain.log"))
    pre_top1 = curve(pre, final=True)
    common = ["--recipe", "finetune_demo", "--data_dir", textures, "--epochs", str(a.epochs),
              "--set", "train.global_batch_size=32", "--set", "train.keep_best=false"]
    results = {"pretrain_top1": pre_top1, "runs": {}}  # a run done before is only evaluated again
    for seed in a.seeds:
        for kind, extra in (("fine-tuned", ["--weights", pre]),
                            ("scratch", ["--weights", "", "--set", "finetune.freeze_epochs=0"]),
                            ("scratch, lr x10", ["--weights", "", "--set", "finetune.freeze_epochs=0", "--set",
                                                 "schedule.base_lr=0.1"])):
            d = os.path.join(a.out, f"{kind.replace(', lr x10', '_lr10')}_seed{seed}")
            train(common + extra + ["--model_dir", d, "--set", f"runtime.seed={seed}", "--set", f"data.seed={seed}"],
                  d + ".log")
            results["runs"][f"{kind}/{seed}"] = curve(d)
    with open(os.path.join(a.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    report(results, a.plot)


def report(results, plot):
    import numpy as np

    kinds = ("fine-tuned", "scratch", "scratch, lr x10")
    curves = {k: [v for key, v in results["runs"].items() if key.startswith(k + "/")] for k in kinds}
    print(f"pre-training on the 5 shape classes: validation top-1 {results['pretrain_top1']:.1f}%")
    print("| run | top-1 after epoch 1 | 5 | 10 | last | best | last, per seed |")
    print("|---|---|---|---|---|---|---|")
    for k in kinds:
        arr = np.array([[t for _, t in c] for c in curves[k]])
        cols = [arr[:, i].mean() for i in (0, 4, 9)] + [arr[:, -1].mean(), arr.max(1).mean()]
        per_seed = ", ".join(f"{x:.1f}" for x in arr[:, -1])
        print(f"| {k} | " + " | ".join(f"{x:.1f}" for x in cols) + f" | {per_seed} |")
    if plot:
        import matplotlib
        from matplotlib.figure import Figure

        matplotlib.use("Agg")
        fig = Figure(figsize=(6, 3.6))
        ax = fig.add_subplot()
        for k, color in zip(kinds, ("tab:blue", "tab:gray", "tab:orange")):
            for i, c in enumerate(curves[k]):
                ax.plot([e for e, _ in c], [t for _, t in c], color=color, alpha=0.8, label=k if i == 0 else None)
        ax.axhline(20, color="k", lw=0.5, ls=":")
        ax.set_xlabel("epoch (150 training images, batch 32)")
        ax.set_ylabel("validation top-1 (%), 500 images")
        ax.set_title("5 new classes (ellipse + 4 textures): fine-tuned from 5 shape classes vs scratch", fontsize=9)
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(plot, dpi=110)
        print(f"wrote {plot}")


if __name__ == "__main__":
    main()
