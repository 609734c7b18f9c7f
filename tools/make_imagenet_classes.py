"""Writes regnet_tf/imagenet_classes.txt: the ImageNet-1k class names in class-index order, one
"synset_id<TAB>name" line per class, from timm's package data (timm/data/_info/imagenet_synsets.txt gives the
1000 synsets in index order; imagenet_synset_to_lemma.txt their WordNet lemmas, e.g. "tench, Tinca tinca").

    pip install timm && python tools/make_imagenet_classes.py

The order is checked: the standard index sorts the synset ids (0 = n01440764 tench, 1 = n01443537 goldfish,
207 = n02099601 golden retriever, 999 = n15075141 toilet tissue).
"""

import os

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "regnet_tf", "imagenet_classes.txt")
ANCHORS = {0: ("n01440764", "tench"), 1: ("n01443537", "goldfish"), 207: ("n02099601", "golden retriever"),
           999: ("n15075141", "toilet tissue")}


def read_timm_info(name):
    import importlib.resources

    return importlib.resources.files("timm.data").joinpath("_info", name).read_text(encoding="utf-8")


def main():
    synsets = read_timm_info("imagenet_synsets.txt").split()
    lemmas = dict(line.split("\t", 1) for line in read_timm_info("imagenet_synset_to_lemma.txt").splitlines() if line)
    assert len(synsets) == len(set(synsets)) == 1000, len(synsets)
    assert synsets == sorted(synsets), "timm's synset list is not in the standard (sorted) class-index order"
    names = [lemmas[s].strip() for s in synsets]
    for i, (synset, name) in ANCHORS.items():
        assert synsets[i] == synset and names[i].split(",")[0] == name, (i, synsets[i], names[i])
    assert not any("\t" in n or "\n" in n for n in names)
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(f"{s}\t{n}\n" for s, n in zip(synsets, names))
    print(f"wrote {OUT} ({len(synsets)} classes)")


if __name__ == "__main__":
    main()
