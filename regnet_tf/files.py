"""Writing a file whole or not at all (`write_atomic`): run records, recipes, splits, extracted weights; CSV tables
(`write_csv`). A leaf: it imports nothing of regnet_tf and no TensorFlow."""

from __future__ import annotations

import os


def write_atomic(path, data) -> str:
    """Writes `data` (str: UTF-8 text; bytes) to `path` through a temporary file in the same directory and a rename,
    so a reader or a crash sees the old file or the new one, never a part of it. Returns `path`."""
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") if isinstance(data, str) else open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_csv(rows, path, columns) -> str:
    """Dict rows as a CSV file with the header ``columns`` (keys not in it are left out, None is an empty cell),
    written atomically. Returns `path`."""
    import csv
    import io

    text = io.StringIO()
    writer = csv.DictWriter(text, list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if row.get(k) is None else row[k] for k in columns} for row in rows)
    return write_atomic(path, text.getvalue())
