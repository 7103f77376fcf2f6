"""The training materials of Lee & Yun, Appendix A, made by our own code, and their grain sizes.

- ``alloy``: grain-boundary images of a power-weighted (Laguerre) Voronoi tessellation of seed
  circles in five grain-size classes (:func:`class_probabilities`, eqs. 25-26;
  :func:`alloy_image`), following MicroStructPy's recipe that the paper used: a grain list drawn
  with the class probabilities until the circles fill the domain, seeds placed largest first
  with a tolerated overlap, then the tessellation weighted by the circles' radii.
- ``fiber``: ``jaxmicro.data.make_dataset('rsa', ...)`` (RSA disks, ``jaxmicro.synth.rsa_disks``).
- ``mcr``: one thresholded anisotropic Gaussian exemplar (:func:`anisotropic_exemplar`) and its
  S2 reconstructions (:func:`reconstructions`), in batched ``vmap`` ensembles of
  ``jaxmicro.reconstruct.reconstruct_ensemble`` (the paper used MCRpy with S2 for carbonate,
  ceramics and PMMA).

Every image is ``(H, W)`` int8, 1 on the phase of interest (white: grain boundaries, fibres,
phase 1 of the exemplar), periodic.
"""

from __future__ import annotations

import math

import numpy as np


def class_probabilities(size_ratios, fractions) -> np.ndarray:
    """Probability that a grain belongs to each size class (Lee & Yun eqs. 25-26).

    ``n_i = V_f,i / E[V_i]`` grains per unit area, with ``E[V_i]`` proportional to the square of
    the class's effective size (2-D grains), and ``p_i = n_i / sum_j n_j``.

    Args:
        size_ratios: ``(K,)`` effective diameters of the classes (any common unit).
        fractions: ``(K,)`` area fractions of the classes (normalized here).

    Returns:
        ``(K,)`` probabilities.

    References:
        Lee & Yun (ddpm-ddim-mcr), Appendix A, eqs. 25-26.
    """
    d = np.asarray(size_ratios, np.float64)
    f = np.asarray(fractions, np.float64)
    if d.shape != f.shape or d.ndim != 1 or np.any(d <= 0) or np.any(f < 0) or f.sum() <= 0:
        raise ValueError(
            f"size_ratios, fractions: expected two (K,) arrays, positive sizes and non-negative "
            f"fractions, got {d} and {f}"
        )
    n = (f / f.sum()) / d**2
    return n / n.sum()


def _wrap(delta: np.ndarray, size: int) -> np.ndarray:
    return delta - size * np.round(delta / size)


def alloy_grains(
    rng: np.random.Generator,
    size: int,
    diameter: float,
    size_ratios,
    fractions,
    overlap: float,
    tries: int = 256,
):
    """Seed circles of one alloy image: ``(centres (n, 2), radii (n,), classes (n,))``.

    Grains are drawn with :func:`class_probabilities` until the circles' total area reaches the
    domain's, then placed largest first at uniform random positions (periodic), each at the first
    of ``tries`` candidates whose overlap with every placed circle is at most ``overlap`` times
    the sum of the two radii (or at the candidate of least overlap when none is).
    """
    radii_k = 0.5 * diameter * np.asarray(size_ratios, np.float64)
    p = class_probabilities(size_ratios, fractions)
    area, classes = 0.0, []
    while area < size * size:
        k = int(rng.choice(len(p), p=p))
        classes.append(k)
        area += math.pi * radii_k[k] ** 2
    classes = np.asarray(sorted(classes, key=lambda k: -radii_k[k]), np.int64)
    radii = radii_k[classes]
    centres = np.zeros((len(classes), 2))
    for i, r in enumerate(radii):
        candidates = rng.uniform(0, size, (tries, 2))
        if i:
            d = np.linalg.norm(_wrap(candidates[:, None] - centres[None, :i], size), axis=-1)
            # overlap depth relative to the sum of radii; the worst neighbour counts
            worst = np.max(1.0 - d / (r + radii[None, :i]), axis=1)
            ok = np.flatnonzero(worst <= overlap)
            centres[i] = candidates[ok[0] if ok.size else int(np.argmin(worst))]
        else:
            centres[i] = candidates[0]
    return centres, radii, classes


def laguerre_labels(centres, radii, size: int) -> np.ndarray:
    """Power-diagram labels ``(size, size)``: pixel -> argmin ``|x - c_i|^2 - r_i^2`` (periodic)."""
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), -1) + 0.5
    d = _wrap(grid[:, :, None, :] - centres[None, None], size)
    return np.argmin(np.sum(d * d, axis=-1) - radii**2, axis=-1).astype(np.int32)


def boundaries(labels: np.ndarray) -> np.ndarray:
    """1 where the next pixel along axis 0 or 1 (periodic) has another label: 1-pixel lines."""
    return (
        (labels != np.roll(labels, -1, axis=0)) | (labels != np.roll(labels, -1, axis=1))
    ).astype(np.int8)


def alloy_image(
    seed, index: int, size: int, diameter: float, size_ratios, fractions, overlap: float
):
    """One alloy image ``(size, size)`` int8 (1 on grain boundaries) and its grain classes.

    Image ``index`` of ``seed`` uses ``numpy.random.default_rng([seed, index])``.

    Returns:
        ``(image, labels, classes)``: the boundary image, the grain labels of the tessellation
        and the class of each seed circle.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    centres, radii, classes = alloy_grains(rng, size, diameter, size_ratios, fractions, overlap)
    labels = laguerre_labels(centres, radii, size)
    return boundaries(labels), labels, classes


def grain_diameters(image: np.ndarray) -> np.ndarray:
    """Equivalent diameters ``sqrt(4 A / pi)`` (pixels) of the grains of a boundary image.

    Grains are the 4-connected components of the non-boundary pixels (``image <= 0``), joined
    across the periodic edges; the boundary pixels are not counted in ``A``.
    """
    from scipy import ndimage

    interior = np.asarray(image) <= 0
    labels, n = ndimage.label(interior)
    if n == 0:
        return np.zeros(0)
    parent = np.arange(n + 1)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in ((labels[0, :], labels[-1, :]), (labels[:, 0], labels[:, -1])):
        for u, v in zip(a, b, strict=True):
            if u and v:
                ru, rv = find(u), find(v)
                if ru != rv:
                    parent[max(ru, rv)] = min(ru, rv)
    roots = np.array([find(i) for i in range(n + 1)])
    areas = np.bincount(roots[labels[interior]], minlength=n + 1)
    areas = areas[areas > 0]
    return np.sqrt(4.0 * areas / np.pi)


def anisotropic_exemplar(key, size: int, lengths, fraction: float) -> np.ndarray:
    """A thresholded anisotropic Gaussian field ``(size, size)`` int8, exactly ``fraction`` of 1.

    White noise filtered by a Gaussian of correlation lengths ``lengths`` (pixels, axes 0 and 1)
    in Fourier space (periodic), thresholded at its own ``1 - fraction`` quantile.

    References:
        Torquato, Random Heterogeneous Materials (2002), §8.3 (level-cut Gaussian fields).
    """
    import jax
    import jax.numpy as jnp

    k = jnp.meshgrid(*(2 * jnp.pi * jnp.fft.fftfreq(size) for _ in range(2)), indexing="ij")
    filt = jnp.exp(-0.25 * ((lengths[0] * k[0]) ** 2 + (lengths[1] * k[1]) ** 2))
    field = jnp.fft.ifft2(jnp.fft.fft2(jax.random.normal(key, (size, size))) * filt).real
    return np.asarray(field > jnp.quantile(field, 1.0 - fraction), np.int8)


def reconstructions(
    key,
    exemplar: np.ndarray,
    num_samples: int,
    *,
    max_lag: int,
    levels: int,
    max_iter: int,
    batch_size: int,
    progress: bool = True,
) -> np.ndarray:
    """``num_samples`` S2 reconstructions ``(num_samples, H, W)`` int8 of an exemplar,
    ``batch_size`` per ``vmap``.

    The target is the exemplar's periodic two-point function (phase 1, lags up to ``max_lag``);
    each reconstruction starts from its own key (``fold_in(key, i)`` for image ``i``; another
    ``batch_size`` changes the images only through rounding in the batched kernels, which the
    optimizer amplifies), runs L-BFGS-B with ``levels`` multigrid levels and is
    thresholded at 1/2. The last batch is padded with extra keys, which are dropped.

    References:
        Lee & Yun (ddpm-ddim-mcr), Appendix A (S2 reconstructions with MCRpy); Seibert et al.,
        MCRpy (2022).
    """
    import jax

    from jaxmicro import reconstruct as rc

    spec = rc.Spec((rc.descriptor("two_point", max_lag=int(max_lag)),), levels=int(levels))
    shape = tuple(exemplar.shape)
    target = rc.characterize(np.asarray(exemplar, np.float32)[..., None], spec)

    @jax.jit
    def ensemble(keys):
        results, _ = rc.reconstruct_ensemble(
            keys, target, shape, spec, max_iter=int(max_iter), channels=1
        )
        return results.field[..., 0] > 0.5

    out = []
    from tqdm.auto import tqdm

    chunks = range(0, num_samples, batch_size)
    for start in tqdm(chunks, desc="mcr reconstructions", disable=not progress):
        index = np.arange(start, start + batch_size)
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(index)
        out.append(np.asarray(ensemble(keys), np.int8))
    return np.concatenate(out)[:num_samples]
