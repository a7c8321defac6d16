#!/usr/bin/env bash
# Run here, where PyPI is reachable: packs the Python packages a bare CUDA machine lacks (wheels.txt, for
# CPython 3.12 on x86-64) into .gpu/site.tar.xz, small enough to travel with the repository (xz of the unpacked
# files: about 6 MB instead of 16 MB of wheels). Then run scripts/gpu/bench.sh there with .gpu carried.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
grep -v '^#' scripts/gpu/wheels.txt | xargs python3 -m pip download -q --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$work/wheels"
mkdir -p "$work/site" .gpu
for wheel in "$work"/wheels/*.whl; do python3 -m zipfile -e "$wheel" "$work/site"; done
tar -C "$work" -cJf .gpu/site.tar.xz site
echo "wrote .gpu/site.tar.xz ($(du -h .gpu/site.tar.xz | cut -f1))"
