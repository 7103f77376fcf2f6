"""Set-level sample quality on feature vectors: Fréchet distance, k-NN precision/recall, PCA,
and the nearest-training-sample check for data copying with its Mann-Whitney statistic.

Features are ``(n, F)`` arrays (one row per sample): PCA coefficients of 2-point statistics or
VGG-19 embeddings. All functions are pure and jittable.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from .._validate import as_float_array, check_finite, check_ndim


def _features(x, name: str, min_rows: int = 1) -> jax.Array:
    check_ndim(x, name, 2, "(n_samples, n_features)")
    x = as_float_array(x, name)
    check_finite(x, name)
    if x.shape[0] < min_rows:
        raise ValueError(f"{name}: expected at least {min_rows} samples, got {x.shape[0]}")
    return x


def _sqrt_psd(c: jax.Array) -> jax.Array:
    w, v = jnp.linalg.eigh(c)
    return (v * jnp.sqrt(jnp.clip(w, 0, None))) @ v.T


@jax.jit
def _frechet(a, b):
    mu_a, mu_b = jnp.mean(a, axis=0), jnp.mean(b, axis=0)
    c_a, c_b = jnp.cov(a, rowvar=False), jnp.cov(b, rowvar=False)
    c_a, c_b = jnp.atleast_2d(c_a), jnp.atleast_2d(c_b)
    root_a = _sqrt_psd(c_a)
    # tr sqrt(C_a C_b) = tr sqrt(C_a^1/2 C_b C_a^1/2), whose argument is symmetric PSD
    middle = root_a @ c_b @ root_a
    cross = jnp.sum(jnp.sqrt(jnp.clip(jnp.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
    return jnp.sum((mu_a - mu_b) ** 2) + jnp.trace(c_a) + jnp.trace(c_b) - 2 * cross


def frechet_distance(features_a, features_b) -> jax.Array:
    """Fréchet distance between Gaussians fitted to two feature sets (FID without Inception).

    ``|mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2))`` with unbiased covariances
    (``ddof = 1``). The matrix square root is taken as ``sqrt(C_a^1/2 C_b C_a^1/2)`` through
    symmetric eigendecompositions (negative eigenvalues from round-off clipped to 0), so it is
    real and stable for singular covariances (fewer samples than features).

    Args:
        features_a, features_b: ``(n_a, F)`` and ``(n_b, F)``, at least 2 rows each.

    Returns:
        Scalar >= 0 (up to round-off), squared feature units.

    References:
        Lee & Yun (ddpm-ddim-mcr) §2.3, eq. 18; Heusel et al., NeurIPS 2017.
    """
    a = _features(features_a, "features_a", 2)
    b = _features(features_b, "features_b", 2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_b: expected {a.shape[1]} features, got {b.shape[1]}")
    dtype = jnp.result_type(a.dtype, b.dtype)
    return _frechet(a.astype(dtype), b.astype(dtype))


def _sq_distances(x: jax.Array, y: jax.Array) -> jax.Array:
    """Squared Euclidean distances ``(n_x, n_y)`` by the expansion (one matmul)."""
    d2 = jnp.sum(x**2, 1)[:, None] + jnp.sum(y**2, 1)[None, :] - 2 * x @ y.T
    return jnp.clip(d2, 0, None)


@partial(jax.jit, static_argnames=("k",))
def _precision_recall(a, b, *, k):
    def radii(x):
        # column 0 of the sorted row is the point itself
        return jnp.sort(_sq_distances(x, x), axis=1)[:, k]

    cross = _sq_distances(b, a)
    precision = jnp.mean(jnp.any(cross <= radii(a)[None, :], axis=1))
    recall = jnp.mean(jnp.any(cross.T <= radii(b)[None, :], axis=1))
    return precision.astype(a.dtype), recall.astype(a.dtype)


def precision_recall(features_a, features_b, *, k: int = 3) -> tuple[jax.Array, jax.Array]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of ``b`` against reference ``a``.

    Each set's manifold is the union of balls around its points with radius the distance to
    the point's ``k``-th nearest neighbour in the same set. Precision is the fraction of ``b``
    inside ``a``'s manifold (fidelity); recall the fraction of ``a`` inside ``b``'s (diversity).

    Args:
        features_a: reference (real) features ``(n_a, F)``, ``n_a > k``.
        features_b: generated features ``(n_b, F)``, ``n_b > k``.
        k: neighbour rank defining the radii (the paper uses 3).

    Returns:
        ``(precision, recall)``, scalars in [0, 1]. Memory ``O((n_a + n_b)^2)``.

    References:
        Lee & Yun (ddpm-ddim-mcr) §2.3, eqs. 19-20; Kynkäänniemi et al., NeurIPS 2019.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k: expected a positive int, got {k!r}")
    a = _features(features_a, "features_a", k + 1)
    b = _features(features_b, "features_b", k + 1)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_b: expected {a.shape[1]} features, got {b.shape[1]}")
    dtype = jnp.result_type(a.dtype, b.dtype)
    return _precision_recall(a.astype(dtype), b.astype(dtype), k=k)


@jax.jit
def _nearest(generated, training):
    mse = _sq_distances(generated, training) / generated.shape[1]
    return jnp.min(mse, axis=1), jnp.argmin(mse, axis=1)


def nearest_training_mse(generated, training) -> tuple[jax.Array, jax.Array]:
    """Pixel MSE from each generated sample to its nearest training sample (data copying).

    ``eps_pixel = (1 / nm) sum_ij (Y_ij - Yhat_ij)^2`` minimised over the training set; values
    near 0 flag copies.

    Args:
        generated: ``(n_g, *sample_shape)``.
        training: ``(n_t, *sample_shape)``, the same sample shape.

    Returns:
        ``(mse, index)``: ``(n_g,)`` smallest MSE and ``(n_g,)`` int index of that training
        sample.

    References:
        Lee & Yun (ddpm-ddim-mcr) §2.3 eq. 24 and §3.1.3.
    """
    g = as_float_array(generated, "generated")
    t = as_float_array(training, "training")
    if g.ndim < 2 or g.shape[1:] != t.shape[1:]:
        raise ValueError(
            f"training: expected samples of shape {g.shape[1:]} like generated, got {t.shape[1:]}"
        )
    dtype = jnp.result_type(g.dtype, t.dtype)
    return _nearest(
        g.reshape(g.shape[0], -1).astype(dtype), t.reshape(t.shape[0], -1).astype(dtype)
    )


@jax.jit
def _copying_z(g, h):
    m, n = g.shape[0], h.shape[0]
    pooled = jnp.sort(jnp.concatenate([g, h]))

    def below_and_tied(x):  # per value of x: pooled values below it, and equal to it
        left = jnp.searchsorted(pooled, x)
        tied = jnp.searchsorted(pooled, x, side="right") - left
        return left.astype(g.dtype), tied.astype(g.dtype)

    # U from the rank sum of g (average ranks over ties): O(N log N), no m x n comparison
    left, tied = below_and_tied(g)
    u = jnp.sum(left + (tied + 1) / 2) - m * (m + 1) / 2
    # sum over groups of tied values of t^3 - t, as a sum over values of t^2 - 1
    ties = jnp.sum(below_and_tied(pooled)[1] ** 2 - 1.0)
    total = m + n
    var = m * n / 12.0 * ((total + 1) - ties / (total * (total - 1)))
    return (u - m * n / 2.0) / jnp.sqrt(var)


def copying_z(generated_distances, held_out_distances) -> jax.Array:
    """Data-copying statistic: the Mann-Whitney Z of the generated samples' distances to their
    nearest training sample against the same distances of held-out samples.

    ``U = #{(i, j): g_i > h_j} + #{g_i = h_j} / 2`` over the ``m`` generated and ``n`` held-out
    distances, ``Z = (U - mn/2) / sigma_U`` with the tie-corrected variance
    ``sigma_U^2 = mn/12 ((N + 1) - sum_ties (t^3 - t) / (N (N - 1)))``, ``N = m + n``. Under the
    null hypothesis (the samples are as far from the training set as new images of the data
    distribution are) ``Z`` is about standard normal. ``Z << 0`` means the samples sit closer to
    the training set than new images do (copying); ``Z >> 0``, farther (the samples differ
    from the data). This is Meehan et al.'s ``Z_U`` for one cell (no partition of the space);
    Lee & Yun's check (eq. 24) compares the distances by eye.

    Args:
        generated_distances: ``(m,)``, e.g. ``nearest_training_mse(generated, train)[0]``.
        held_out_distances: ``(n,)``, the same for held-out samples.

    Returns:
        Scalar ``Z``.

    References:
        Meehan, Chaudhuri & Dasgupta, AISTATS 2020 (Lee & Yun's ref. [60]), the ``Z_U``
        statistic; Lee & Yun §2.3, eq. 24.
    """
    g = as_float_array(generated_distances, "generated_distances")
    h = as_float_array(held_out_distances, "held_out_distances")
    for x, name in ((g, "generated_distances"), (h, "held_out_distances")):
        check_ndim(x, name, 1, "(n_samples,)")
        check_finite(x, name)
        if x.shape[0] < 2:
            raise ValueError(f"{name}: expected at least 2 distances, got {x.shape[0]}")
    dtype = jnp.result_type(g.dtype, h.dtype)
    return _copying_z(g.astype(dtype), h.astype(dtype))


@partial(jax.jit, static_argnames=("n_components",))
def _pca(x, *, n_components):
    mean = jnp.mean(x, axis=0)
    _, _, vt = jnp.linalg.svd(x - mean, full_matrices=False)
    # fix each component's sign (largest |entry| positive) so the basis is deterministic
    pivot = jnp.take_along_axis(vt, jnp.argmax(jnp.abs(vt), axis=1)[:, None], axis=1)
    return mean, (vt * jnp.sign(pivot))[:n_components]


def principal_components(x, *, n_components: int) -> tuple[jax.Array, jax.Array]:
    """Mean and leading principal axes of a feature set; project with ``(y - mean) @ basis.T``.

    Args:
        x: ``(n, F)`` features (fit on the reference set).
        n_components: number of axes kept, ``<= min(n, F)``.

    Returns:
        ``(mean (F,), basis (n_components, F))`` with orthonormal rows, by decreasing variance.
    """
    x = _features(x, "x", 1)
    if not isinstance(n_components, int) or not 1 <= n_components <= min(x.shape):
        raise ValueError(
            f"n_components: expected an int in [1, {min(x.shape)}] (min of x's shape), "
            f"got {n_components!r}"
        )
    return _pca(x, n_components=n_components)
