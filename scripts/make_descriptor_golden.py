"""Writes tests/data/descriptors_golden.npz from independent libraries (PyMKS, PoreSpy).

Run once, with the reference libraries installed outside the project (they are not
dependencies of jaxmicro and must not become CI dependencies)::

    pip install --target /tmp/ref porespy pymks
    pip install --target /tmp/ref_pa --no-deps pyarrow   # dask.dataframe, imported by PyMKS
    PYTHONPATH=/tmp/ref:/tmp/ref_pa python scripts/make_descriptor_golden.py

Contents (inputs and the reference outputs, float64):

- ``two_point/*``: PyMKS ``two_point_stats`` (0.4.1) on a 2D two-channel continuous field and a
  3D binary field, periodic and non-periodic, with and without a confidence mask, cropped with
  ``cutoff`` = our ``max_lag``.
- ``chords/*``: chord lengths from PoreSpy ``filters.apply_chords(spacing=0, trim_edges=False)``
  (3.2.0; one label per chord, voxels counted per label), histogrammed by length, per axis,
  for a 2D and a 3D binary image. The non-periodic lineal path follows from them exactly:
  ``L(z) = sum_l count[l] * max(l - z, 0) / #sites where a segment of length z fits``.
"""

from __future__ import annotations

import pathlib
import warnings

import numpy as np
import porespy
import pymks

OUT = pathlib.Path(__file__).resolve().parents[1] / "tests" / "data" / "descriptors_golden.npz"
CUTOFF = 3


def pymks_two_point(field, mask, periodic):
    """(C, C, *window) cross-correlations of a channels-last field with PyMKS."""
    c = field.shape[-1]
    out = np.zeros((c, c) + (2 * CUTOFF + 1,) * (field.ndim - 1))
    for a in range(c):
        for b in range(c):
            out[a, b] = pymks.two_point_stats(
                field[None, ..., a],
                field[None, ..., b],
                periodic_boundary=periodic,
                cutoff=CUTOFF,
                mask=None if mask is None else mask[None],
            )[0]
    return out


def porespy_chord_counts(image, axis):
    """Number of chords of each length 0..n along ``axis`` (index 0 unused)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        chords = porespy.filters.apply_chords(image, spacing=0, axis=axis, trim_edges=False)
    # Each chord carries its own label (spacing=0). metrics.chord_counts would relabel by
    # connectivity and merge chords on neighbouring lines, so count voxels per label instead.
    lengths = np.bincount(chords.ravel())[1:]
    return np.bincount(lengths, minlength=image.shape[axis] + 1).astype(np.float64)


def main() -> None:
    rng = np.random.default_rng(20240603)
    data = {}
    field2 = rng.normal(size=(9, 11, 2))
    field2[..., 1] += 0.5 * np.roll(field2[..., 0], 2, axis=1)  # a non-trivial cross term
    field3 = (rng.uniform(size=(7, 8, 9, 1)) < 0.45).astype(np.float64)
    data["two_point/field2"] = field2
    data["two_point/field3"] = field3
    data["two_point/mask2"] = rng.uniform(size=field2.shape[:-1])
    data["two_point/cutoff"] = np.array(CUTOFF)
    for periodic in (True, False):
        tag = "periodic" if periodic else "nonperiodic"
        data[f"two_point/field2_{tag}"] = pymks_two_point(field2, None, periodic)
        data[f"two_point/field2_mask_{tag}"] = pymks_two_point(
            field2, data["two_point/mask2"], periodic
        )
        data[f"two_point/field3_{tag}"] = pymks_two_point(field3, None, periodic)

    image2 = rng.uniform(size=(10, 13)) < 0.6
    image3 = rng.uniform(size=(6, 7, 8)) < 0.6
    data["chords/image2"] = image2.astype(np.float64)
    data["chords/image3"] = image3.astype(np.float64)
    for name, image in (("image2", image2), ("image3", image3)):
        for axis in range(image.ndim):
            data[f"chords/{name}_axis{axis}"] = porespy_chord_counts(image, axis)

    data["versions"] = np.array([f"pymks {pymks.__version__}", f"porespy {porespy.__version__}"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **data)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(data)} arrays)")


if __name__ == "__main__":
    main()
