"""Segmentation and grain-property timings, and merge rates of continuous-field segmentation.

    python benchmarks/grains.py [--size 64] [--grains 150]

Table 1: median wall time (s, 3 runs after one warm-up that includes compilation) of each
segmentation mode and of grain_properties on a periodic Voronoi volume. Table 2: on 40^3 volumes
with 40 Voronoi grains whose IDs are mapped to U(-1, 1) values plus Gaussian noise, the number
of true grains (of >= 10 voxels) merged into a neighbour and of spurious extra grains, for
statistical region merging and GrainPaint's DBSCAN (eps 1.9, min_samples 15) at two value
scales, over 3 seeds.
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import median_seconds
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from jaxmicro import grains

PALETTE = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1], [0, 0, 0]]
    + [[0.5, 0.5, 0.5], [1, 0.5, 0], [0, 0.5, 1], [0.5, 0, 1], [0.5, 1, 0], [1, 0, 0.5]]
)


def voronoi(rng, shape, n, periodic):
    seeds = rng.uniform(0, 1, (n, len(shape))) * shape
    centres = np.indices(shape).reshape(len(shape), -1).T + 0.5
    box = np.asarray(shape, float) if periodic else None
    return cKDTree(seeds, boxsize=box).query(centres)[1].reshape(shape)


def face_connected(ids):
    out, n = np.zeros(ids.shape, np.int64), 0
    for g in np.unique(ids):
        pieces, k = ndi.label(ids == g)
        out[pieces > 0] = pieces[pieces > 0] + n
        n += k
    return out


def merge_errors(truth, labels, min_size):
    sizes = np.bincount(truth.ravel())
    pairs, counts = np.unique(np.stack([truth.ravel(), labels.ravel()]), axis=1, return_counts=True)
    best_label, best_truth = {}, {}
    for (t, s), c in zip(pairs.T.tolist(), counts.tolist(), strict=True):
        if c > best_label.get(t, (0, 0))[1]:
            best_label[t] = (s, c)
        if c > best_truth.get(s, (0, 0))[1]:
            best_truth[s] = (t, c)
    merged = sum(best_truth[s][0] != t for t, (s, _) in best_label.items() if sizes[t] >= min_size)
    spurious = sum(best_label[t][0] != s for s, (t, _) in best_truth.items())
    return merged, spurious


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--grains", type=int, default=150)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.size,) * 3
    ids = voronoi(rng, shape, args.grains, periodic=True)
    colours = PALETTE[ids % len(PALETTE)]
    q = rng.normal(size=(args.grains, 4))
    quats = (q / np.linalg.norm(q, axis=1, keepdims=True))[ids]
    values = rng.uniform(-1, 1, args.grains)[ids] + rng.normal(0, 0.01, shape)
    rows = [
        ("segment_palette", lambda: grains.segment_palette(colours, PALETTE, periodic=True)),
        (
            "segment_orientations (cubic)",
            lambda: grains.segment_orientations(quats, "cubic", periodic=True),
        ),
        ("segment_continuous regions", lambda: grains.segment_continuous(values, periodic=True)),
        (
            "segment_continuous dbscan",
            lambda: grains.segment_continuous(values, method="dbscan", value_scale=40.0),
        ),
        ("grain_properties", lambda: grains.grain_properties(ids + 1, periodic=True)),
    ]
    print(f"{args.size}^3 periodic Voronoi, {args.grains} grains")
    print(f"| {'operation':32s} | median s |")
    print(f"|{'-' * 34}|----------|")
    for name, fn in rows:
        print(f"| {name:32s} | {median_seconds(fn, repeats=3):8.3f} |")

    print("\n40^3, 40 grains, values U(-1,1) + N(0, sigma^2): merged / spurious grains, 3 seeds")
    print("| sigma | regions (k=4, res=1.5) | dbscan scale 0.4/sigma | dbscan scale 0.8/sigma |")
    print("|---|---|---|---|")
    truth = face_connected(voronoi(np.random.default_rng(1), (40, 40, 40), 40, periodic=False))
    for sigma in (0.0, 0.01, 0.03):
        cells = {"regions": [], "d1": [], "d2": []}
        for seed in range(3):
            r = np.random.default_rng(seed + 10)
            field = r.uniform(-1, 1, truth.max() + 1)[truth] + r.normal(0, sigma, truth.shape)
            cells["regions"].append(grains.segment_continuous(field, min_size=10))
            for key, factor in (("d1", 0.4), ("d2", 0.8)):
                scale = factor / max(sigma, 0.005)
                cells[key].append(
                    grains.segment_continuous(
                        field, method="dbscan", value_scale=scale, min_size=10
                    )
                )
        text = [
            ", ".join("{}/{}".format(*merge_errors(truth, lab, 10)) for lab in cells[key])
            for key in ("regions", "d1", "d2")
        ]
        print(f"| {sigma} | {text[0]} | {text[1]} | {text[2]} |")


if __name__ == "__main__":
    main()
