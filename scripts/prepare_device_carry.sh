#!/usr/bin/env bash
# Prepares what scripts/gpu_acceptance.sh needs on a GPU machine whose image has PyTorch but not MONAI: the missing
# wheels in .whl/ (for its Python 3.12) and DSB2018 in the flat layout in .device/dsb_flat (about 20 MB). Both
# folders are git-ignored through .git/info/exclude; name them in the device tool's carry.
#
#   bash scripts/prepare_device_carry.sh $MEDKIT_REAL_DATA/dsb2018_nuclei
set -euo pipefail
DSB=${1:?usage: prepare_device_carry.sh <DSB2018 folder>}
PY=${PYTHON:-.venv/bin/python}
for path in /.whl/ /.device/; do grep -qxF "$path" .git/info/exclude || echo "$path" >> .git/info/exclude; done
mkdir -p .whl
for wheel in monai==1.6.1 pytorch-ignite==0.5.5 nibabel fire termcolor; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d .whl "$wheel"
done
$PY scripts/dsb_to_flat.py "$DSB" .device/dsb_flat
du -sh .whl .device
