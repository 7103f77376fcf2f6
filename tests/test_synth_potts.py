"""Tests of Potts grain growth (jaxmicro.synth.potts) and the melt-pool mobility."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro import synth
from jaxmicro.data import mean_intercept_lengths

potts = jax.jit(synth.potts, static_argnames=("proposal",))


def _energy_reference(ids):
    """Direct sum over sites and all 3^d - 1 offsets, halved."""
    ids = np.asarray(ids)
    total = 0
    for site in itertools.product(*map(range, ids.shape)):
        for o in synth.neighbour_offsets(ids.ndim):
            other = tuple((s + d) % n for s, d, n in zip(site, o, ids.shape, strict=True))
            total += ids[site] != ids[other]
    return total / 2


@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 5)])
def test_energy_matches_direct_sum(shape):
    ids = jax.random.randint(jax.random.key(0), shape, 0, 3)
    assert int(synth.potts_energy(ids)) == _energy_reference(ids)


def _numpy_potts(key, ids, sweeps, kT):
    """Reference: the same Metropolis updates on the full grid with np.roll, same random draws."""
    ids = np.array(ids)
    d = ids.ndim
    moduli = synth.sublattice_moduli(ids.shape)
    cells = tuple(n // m for n, m in zip(ids.shape, moduli, strict=True))
    offsets = synth.neighbour_offsets(d)
    coords = np.meshgrid(*[np.arange(n) for n in ids.shape], indexing="ij")
    for t in range(sweeps):
        step_key = jax.random.fold_in(key, t)
        for i, site in enumerate(itertools.product(*map(range, moduli))):
            # one 32-bit word per site: bits * n = pick * 2^32 + rest, u from the top of rest
            bits = jax.random.bits(jax.random.fold_in(step_key, i), cells, jnp.uint32)
            wide = np.asarray(bits, np.uint64) * len(offsets)
            pick = (wide >> 32).astype(np.int64)
            u = (((wide & 0xFFFFFFFF) >> 8).astype(np.float64) + 0.5) * 2.0**-24
            mask = np.all(
                [c % m == a for c, m, a in zip(coords, moduli, site, strict=True)], axis=0
            )
            nbrs = [np.roll(ids, tuple(-x for x in o), axis=tuple(range(d))) for o in offsets]
            old = ids[mask]
            nb = np.stack([n[mask] for n in nbrs])
            new = nb[pick.ravel(), np.arange(old.size)]
            delta = np.sum(nb == old, 0) - np.sum(nb == new, 0)
            p = np.where(delta <= 0, 1.0, np.exp(-np.maximum(delta, 0) / kT)).astype(np.float32)
            ids[mask] = np.where(u.ravel() < p, new, old)
    return ids


@pytest.mark.parametrize("shape", [(6, 9), (4, 3, 4)])
def test_matches_numpy_reference_with_same_draws(shape):
    # (6, 9): moduli (2, 3); (4, 3, 4): moduli (2, 3, 2); both orders of the sites flattened in C
    # order, so the i-th sublattice of both implementations is the same.
    key = jax.random.key(11)
    ids = jax.random.randint(jax.random.key(1), shape, 0, 4)
    got = potts(key, ids, 3, kT=0.7)
    np.testing.assert_array_equal(np.asarray(got), _numpy_potts(key, ids, 3, 0.7))


def test_zero_temperature_never_raises_energy():
    ids = jax.random.randint(jax.random.key(2), (8, 8, 8), 0, 6)
    energies = [int(synth.potts_energy(ids))]
    for t in range(4):
        ids = potts(jax.random.key(3), ids, 1, kT=0.0, first_sweep=t)
        energies.append(int(synth.potts_energy(ids)))
    assert all(b <= a for a, b in zip(energies[:-1], energies[1:], strict=True))
    assert energies[-1] < energies[0]


def test_grains_coarsen_at_finite_temperature():
    ids = jnp.arange(32 * 32, dtype=jnp.int32).reshape(32, 32)
    early = potts(jax.random.key(4), ids, 10, kT=0.5)
    late = potts(jax.random.key(4), ids, 40, kT=0.5)
    n_early, n_late = np.unique(early).size, np.unique(late).size
    assert n_late < n_early < 32 * 32 / 4
    assert int(synth.potts_energy(late)) < int(synth.potts_energy(early))


def test_split_run_equals_one_run_and_mobility_forms_agree():
    ids = jax.random.randint(jax.random.key(5), (6, 9), 0, 5)
    key = jax.random.key(6)
    whole = potts(key, ids, 5, kT=0.5)
    split = potts(key, potts(key, ids, 3, kT=0.5), 2, kT=0.5, first_sweep=3)
    np.testing.assert_array_equal(whole, split)
    m = jax.random.uniform(jax.random.key(7), (6, 9))
    as_array = synth.potts(key, ids, 3, mobility=m)
    as_function = synth.potts(key, ids, 3, mobility=lambda t: m)
    np.testing.assert_array_equal(as_array, as_function)
    frozen = synth.potts(key, ids, 3, mobility=jnp.zeros((6, 9)))
    np.testing.assert_array_equal(frozen, ids)


def test_detailed_balance_stationary_distribution():
    # 2 x 2 periodic lattice, two spins, uniform proposals: the chain must sample the Boltzmann
    # distribution of the pair energy. Compare the empirical distribution of 20,000 independent
    # chains after 30 sweeps with the exact enumeration (total variation).
    kT, chains = 4.0, 20000
    states = np.array(list(itertools.product((0, 1), repeat=4))).reshape(-1, 2, 2)
    energy = np.array([_energy_reference(s) for s in states])
    exact = np.exp(-energy / kT)
    exact /= exact.sum()

    def run(key):
        k_start, k_run = jax.random.split(key)
        start = jax.random.randint(k_start, (2, 2), 0, 2)
        return synth.potts(k_run, start, 30, kT=kT, proposal="uniform", n_states=2)

    keys = jax.random.split(jax.random.key(8), chains)
    final = np.asarray(jax.jit(jax.vmap(run))(keys)).reshape(chains, 4)
    codes = final @ (2 ** np.arange(3, -1, -1))
    empirical = np.bincount(codes, minlength=16) / chains
    assert 0.5 * np.abs(empirical - exact).sum() < 0.03
    assert len(set(energy)) > 1  # the test distinguishes energies


def test_validation_errors():
    with pytest.raises(ValueError, match="ids"):
        synth.potts(jax.random.key(0), jnp.zeros((4, 4)), 1)
    with pytest.raises(ValueError, match="ids"):
        synth.potts(jax.random.key(0), jnp.zeros((4, 1), jnp.int32), 1)
    with pytest.raises(ValueError, match="proposal"):
        synth.potts(jax.random.key(0), jnp.zeros((4, 4), jnp.int32), 1, proposal="other")
    with pytest.raises(ValueError, match="mobility"):
        synth.potts(jax.random.key(0), jnp.zeros((4, 4), jnp.int32), 1, mobility=jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="mobility"):
        synth.potts(
            jax.random.key(0), jnp.zeros((4, 4), jnp.int32), 1, mobility=2 * jnp.ones((4, 4))
        )


def test_sublattices_are_conflict_free():
    for shape in [(4, 6), (9, 10), (5, 7, 4)]:
        moduli = synth.sublattice_moduli(shape)
        assert all(n % m == 0 and m >= 2 for n, m in zip(shape, moduli, strict=True))
        for o in synth.neighbour_offsets(len(shape)):
            # A neighbour is never in the same sublattice (some axis offset is not 0 mod m).
            assert any(x % m != 0 for x, m in zip(o, moduli, strict=True))


def test_melt_pool_mobility_geometry():
    shape = (40, 30)
    scan = synth.RasterScan(speed=2.0, layer=5.0, pool=(6.0, 6.0), haz=4.0)
    # Mid first line: centre at x = 14, on top of layer 0 (z = 5).
    t = 10
    centre = np.asarray(synth.pool_centre(shape, t, scan))
    np.testing.assert_allclose(centre, [2.0 * t - 6.0, 5.0])
    m = np.asarray(synth.melt_pool_mobility(shape, t, scan))
    x, z = np.meshgrid(np.arange(40) + 0.5, np.arange(30) + 0.5, indexing="ij")
    r = np.hypot(x - centre[0], z - centre[1])
    # Spherical pool: M = 1 inside, 1 - (r - R) / haz in the heat-affected zone, 0 beyond/above.
    expected = np.clip(1.0 - np.maximum(r - 6.0, 0.0) / 4.0, 0.0, 1.0) * (z <= centre[1])
    np.testing.assert_allclose(m, expected, atol=1e-5)
    # The scan ends after the last layer's line has passed the box.
    end = synth.scan_sweeps(shape, scan)
    assert np.asarray(synth.pool_centre(shape, end, scan))[1] > shape[1]
    assert np.asarray(synth.pool_centre(shape, end - 1, scan))[1] <= shape[1] + scan.layer


def test_melt_pool_grains_elongate_along_build_direction():
    shape = (64, 32)
    scan = synth.RasterScan(speed=1.0, layer=4.0, pool=(8.0, 6.0), haz=4.0)
    ids = jnp.arange(64 * 32, dtype=jnp.int32).reshape(shape)

    @jax.jit
    def am(key, ids):
        def mobility(t):
            return synth.melt_pool_mobility(shape, t, scan)

        return synth.potts(key, ids, synth.scan_sweeps(shape, scan), mobility=mobility)

    scan_axis, build_axis = mean_intercept_lengths(am(jax.random.key(1), ids))
    assert build_axis > 1.3 * scan_axis


def test_index_and_uniform_from_one_word_match_64_bit_arithmetic():
    from jaxmicro.synth._potts import _index_and_uniform

    bits = jax.random.bits(jax.random.key(3), (200_000,), jnp.uint32)
    index, u = _index_and_uniform(bits, 26)
    wide = np.asarray(bits, np.uint64) * 26
    np.testing.assert_array_equal(np.asarray(index), (wide >> 32).astype(np.int64))
    expected_u = ((wide & 0xFFFFFFFF) >> 8).astype(np.float64) * 2.0**-24 + 2.0**-25
    np.testing.assert_allclose(np.asarray(u, np.float64), expected_u, rtol=1e-7)
    assert 0.0 < float(u.min()) and float(u.max()) < 1.0
    # given the index, u is still uniform: its mean per index is 1/2 within 4 standard errors
    idx, uu = np.asarray(index), np.asarray(u, np.float64)
    for j in range(26):
        sel = uu[idx == j]
        assert abs(sel.mean() - 0.5) < 4 * np.sqrt(1 / 12 / sel.size)
