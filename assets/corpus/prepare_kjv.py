"""Prepare the King James Bible corpus from Debian's `bible-kjv` package, offline.

Run: python assets/corpus/prepare_kjv.py  (needs `apt-get install bible-kjv bible-kjv-text`)
Writes assets/corpus/kjv.txt.gz: one chapter per block, a heading line ("Genesis 1") followed by
one verse per line without verse numbers, chapters separated by a blank line.
The KJV text is in the public domain (see README.md beside this file).
"""
from __future__ import annotations

import gzip
import re
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSE = re.compile(r"^\s+\d+\s+(.*)$")


def chapters(raw: str) -> list[tuple[str, list[str]]]:
    """Split `bible -l0` output into (heading, verses) pairs."""
    result: list[tuple[str, list[str]]] = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        verse = VERSE.match(line)
        if verse:
            result[-1][1].append(verse.group(1).strip())
        else:
            result.append((line.strip(), []))
    return result


def main() -> None:
    raw = subprocess.run(["bible", "-l0", "Ge1:1-Re22:21"], check=True, capture_output=True, text=True).stdout
    parsed = chapters(raw)
    text = "\n\n".join(heading + "\n" + "\n".join(verses) for heading, verses in parsed) + "\n"
    out = HERE / "kjv.txt.gz"
    with gzip.GzipFile(out, "wb", mtime=0) as fh:
        fh.write(text.encode("utf-8"))
    print(f"{len(parsed)} chapters, {len(text):,} characters -> {out}")


if __name__ == "__main__":
    main()
