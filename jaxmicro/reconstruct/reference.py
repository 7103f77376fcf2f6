"""Reference fields for reconstruction: files and arrays read into what ``characterize`` takes.

A reference is a float32 ``(*spatial, C)`` array with 2 or 3 spatial axes of at least
``MIN_SIZE`` voxels, and a representation:

- ``'orientations'``: unit quaternions, C = 4 (scalar first, P = -1), from Bunge Euler angles
  in radians (trailing axis 3) or quaternions (trailing axis 4);
- ``'phases'``: indicators in [0, 1], from integer labels 0..K-1 (the indicators of phases
  1..K-1; two phases give one channel, every phase must be present, K <= ``MAX_PHASES``), from
  floats in [0, 1] (``(H, W)`` or ``(D, H, W)``: one channel; ``(D, H, W, C)``: channels
  last), or from the grey levels of an image (at most 8 distinct levels are phases in order of
  brightness; more are thresholded into two phases by Otsu's method).

Files (:func:`load_reference`): ``.npy`` (NumPy's format only; never pickles), images (``.png``,
``.jpg``, ``.tif``, ``.bmp``), and EBSD maps (``.ang``, ``.ctf`` through ``jaxmicro.io``; the
symmetry of their first phase unless one is given). Every refusal is a ``ValueError`` that names
the argument (``name``, e.g. ``'--reference'``) and the file: unreadable, empty or non-NumPy
``.npy`` files, complex or non-numeric arrays, NaN, wrong trailing axes, non-unit quaternions,
Euler angles beyond radians' range (degrees: in ``.npy`` files and in ``.ang`` files, whose
format stores radians), labels with a single phase, absent phases or too many phases.

:func:`example_reference` is the built-in reference of ``jaxmicro reconstruct --example``.

References:
    Rowenhorst et al., MSMSE 23 (2015) 083501 (Euler angles and quaternions, P = -1); EDAX/TSL
    OIM .ang format (Euler angles in radians, 4 pi marks non-indexed points); Otsu, IEEE SMC 9
    (1979) 62.
"""

from __future__ import annotations

import math
import pathlib

import numpy as np

from jaxmicro.orientations import euler_to_quat

EXAMPLE_SHAPE = (48, 48)
EULER_LIMIT = 2 * math.pi + 1e-3  # larger |angle|: degrees, not radians
MIN_SIZE = 4
MAX_PHASES = 32
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
KINDS = ("auto", "euler", "quaternions", "phases")
_NPY_MAGIC = b"\x93NUMPY"
_ANG_UNINDEXED = 4 * math.pi  # TSL writes (4 pi, 4 pi, 4 pi) for points it could not index


def example_reference():
    """The built-in reference: a periodic 48x48 cubic polycrystal, grains 3x taller than wide.

    Returns:
        (48, 48, 4) unit quaternions of 16 Voronoi grains (regularity 0.5, stretched 3x along
        axis 0) with uniformly random orientations; the same array on every call.
    """
    import jax

    from jaxmicro import synth

    ids = synth.voronoi(jax.random.key(0), EXAMPLE_SHAPE, 16, regularity=0.5, stretch=(3.0, 1.0))
    quats = synth.grain_orientations(jax.random.key(1), 16)
    return quats[ids]


def load_reference(path, kind: str = "auto", symmetry: str | None = None, *, name: str = "path"):
    """Reads a reference file into a field for :func:`jaxmicro.reconstruct.characterize`.

    Args:
        path: ``.npy``, image, ``.ang`` or ``.ctf`` file (see the module docstring).
        kind: ``'auto'`` (decided by dtype and trailing axis), ``'euler'``, ``'quaternions'`` or
            ``'phases'``; EBSD maps are always orientations.
        symmetry: crystal symmetry of orientations (None: the EBSD file's, else ``'cubic'``).
        name: the argument's name in error messages (e.g. ``'--reference'``).

    Returns:
        ``(field, representation, symmetry)``: a float32 (*spatial, C) array (unit quaternions
        with C = 4, or indicators in [0, 1]), ``'orientations'`` or ``'phases'``, and the
        symmetry.

    Raises:
        ValueError: naming ``name`` (or ``symmetry``) for a missing or unreadable file, an
            unknown suffix or symmetry, and every refusal of :func:`reference_field`; for
            ``.ang`` maps, Euler angles beyond 2 pi (degrees where the format stores radians).
    """
    from jaxmicro.orientations import SYMMETRIES

    if kind not in KINDS:
        raise ValueError(f"kind: unknown value {kind!r}; expected one of {KINDS}")
    if symmetry is not None and symmetry not in SYMMETRIES:
        raise ValueError(f"symmetry: unknown value {symmetry!r}; expected one of {SYMMETRIES}")
    path = pathlib.Path(path)
    where = f"{name}: {path}"
    if not path.is_file():
        raise ValueError(f"{where}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".ang", ".ctf"):
        from jaxmicro import io  # SciPy and h5py (~40 MB resident): only for EBSD maps

        ebsd = (io.read_ang if suffix == ".ang" else io.read_ctf)(path)
        if suffix == ".ang":
            _check_ang_radians(np.asarray(ebsd.euler), where)
        if symmetry is None:
            phase = next(iter(ebsd.phases.values()), None)
            symmetry = phase.symmetry if phase is not None and phase.symmetry else None
        array, kind = np.asarray(ebsd.quats), "quaternions"
    elif suffix == ".npy":
        array = _read_npy(path, where)
    elif suffix in IMAGE_SUFFIXES:
        array = _image_labels(path, where)
    else:
        raise ValueError(f"{where}: expected .npy, {'/'.join(IMAGE_SUFFIXES)}, .ang or .ctf")
    field, representation = reference_field(array, kind, name=where)
    return field, representation, symmetry or "cubic"


def reference_field(array, kind: str = "auto", *, name: str = "reference"):
    """An array as a reference field: ``(field, representation)``.

    Args:
        array: NumPy array: Euler angles (*spatial, 3) in radians, quaternions (*spatial, 4),
            integer or boolean phase labels (*spatial), or indicators in [0, 1]: (H, W) or
            (D, H, W) for one channel, (D, H, W, C) channels last.
        kind: ``'auto'``: floats with 2-3 spatial axes and a trailing axis of 3 or 4 are Euler
            angles or quaternions, everything else phases; or ``'euler'``, ``'quaternions'``,
            ``'phases'``.
        name: prefix of error messages (the argument, and the file if any).

    Returns:
        A float32 (*spatial, C) field (unit quaternions with C = 4, renormalized, or indicators)
        and ``'orientations'`` or ``'phases'``.

    Raises:
        ValueError: complex or non-numeric dtype; an empty array or a spatial size below
            ``MIN_SIZE``; NaN or infinite values; wrong trailing axis; Euler angles above
            2 pi in magnitude (degrees?); quaternions off unit norm by more than 1e-3; labels
            below 0, with a single phase, with an absent phase or more than ``MAX_PHASES``;
            indicators outside [0, 1].
    """
    array = np.asarray(array)
    if kind not in KINDS:
        raise ValueError(f"kind: unknown value {kind!r}; expected one of {KINDS}")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(
            f"{name}: complex values ({array.dtype}); a reference is real (take .real or "
            "abs() yourself if that is what you mean)"
        )
    if not (array.dtype == np.bool_ or np.issubdtype(array.dtype, np.number)):
        raise ValueError(f"{name}: dtype {array.dtype} is not numeric")
    if array.size == 0:
        raise ValueError(f"{name}: the array is empty, shape {array.shape}")
    floating = np.issubdtype(array.dtype, np.floating)
    if kind == "auto":
        orientations = floating and array.ndim in (3, 4) and array.shape[-1] in (3, 4)
        kind = ("euler" if array.shape[-1] == 3 else "quaternions") if orientations else "phases"
    if floating and not np.all(np.isfinite(array)):
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name}: contains {bad} NaN or infinite value(s)")
    if kind == "phases":
        field = _phase_field(array, name)
        _check_spatial(field.shape[:-1], name)
        return field, "phases"

    want = 3 if kind == "euler" else 4
    if array.ndim not in (3, 4) or array.shape[-1] != want:
        raise ValueError(
            f"{name}: {kind} need shape (*spatial, {want}) with 2 or 3 spatial axes, got "
            f"{array.shape}"
        )
    _check_spatial(array.shape[:-1], name)
    array = array.astype(np.float64)
    if kind == "euler":
        largest = float(np.abs(array).max())
        if largest > EULER_LIMIT:
            raise ValueError(
                f"{name}: Euler angles must be in radians; values reach {largest:.4g} (degrees?)"
            )
        array = np.asarray(euler_to_quat(array))
    norms = np.linalg.norm(array, axis=-1)
    worst = float(np.max(np.abs(norms - 1.0)))
    if worst > 1e-3:
        raise ValueError(
            f"{name}: quaternions must have unit norm; the worst deviates by {worst:.3g}"
        )
    return (array / norms[..., None]).astype(np.float32), "orientations"


def _check_spatial(spatial: tuple[int, ...], name: str) -> None:
    if len(spatial) not in (2, 3) or min(spatial) < MIN_SIZE:
        raise ValueError(
            f"{name}: expected 2 or 3 spatial axes of at least {MIN_SIZE} voxels, got {spatial}"
        )


def _read_npy(path: pathlib.Path, where: str) -> np.ndarray:
    """NumPy's ``.npy`` format only: the magic string first, then ``np.load`` without pickles."""
    with open(path, "rb") as f:
        head = f.read(len(_NPY_MAGIC))
    if not head:
        raise ValueError(f"{where}: the file is empty (0 bytes)")
    if head != _NPY_MAGIC:
        raise ValueError(f"{where}: not a NumPy .npy file (no NumPy header; save with np.save)")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{where}: not a readable .npy file ({err})") from None


def _check_ang_radians(euler: np.ndarray, where: str) -> None:
    """Refuses ``.ang`` angles beyond 2 pi, ignoring TSL's (4 pi, 4 pi, 4 pi) non-indexed mark."""
    unindexed = np.all(np.abs(euler - _ANG_UNINDEXED) < 1e-3, axis=-1)
    angles = euler[~unindexed]
    if angles.size and float(np.abs(angles).max()) > EULER_LIMIT:
        count = int(np.count_nonzero(np.any(np.abs(angles) > EULER_LIMIT, axis=-1)))
        raise ValueError(
            f"{where}: .ang files store Euler angles in radians, but {count} point(s) reach "
            f"{float(np.abs(angles).max()):.4g} (degrees?); convert the angles to radians first"
        )


def _image_labels(path: pathlib.Path, where: str) -> np.ndarray:
    """Phase labels of an image: <= 8 grey levels in order of brightness, else Otsu's threshold."""
    from skimage import color, filters, io

    try:
        image = np.asarray(io.imread(path))
    except (OSError, ValueError, SyntaxError) as err:
        raise ValueError(f"{where}: not a readable image ({err})") from None
    if image.ndim == 3:
        image = color.rgb2gray(image[..., :3]) if image.shape[-1] in (3, 4) else image[..., 0]
    if image.ndim != 2:
        raise ValueError(f"{where}: expected a 2D image, got shape {image.shape}")
    levels = np.unique(image)
    if levels.size > 8:
        return (image > filters.threshold_otsu(image)).astype(np.int64)
    return np.searchsorted(levels, image)


def _phase_field(array: np.ndarray, name: str) -> np.ndarray:
    """Labels -> indicators of phases 1..K-1; floats in [0, 1] -> one channel or channels last."""
    if array.dtype == np.bool_:
        array = array.astype(np.int64)
    if np.issubdtype(array.dtype, np.integer):
        if array.ndim not in (2, 3):
            raise ValueError(f"{name}: phase labels need 2 or 3 spatial axes, got {array.shape}")
        if array.min() < 0:
            raise ValueError(f"{name}: phase labels must be >= 0, got {array.min()}")
        k = int(array.max()) + 1
        if k < 2:
            raise ValueError(f"{name}: the labels hold a single phase")
        if k > MAX_PHASES:
            raise ValueError(
                f"{name}: labels reach {k - 1}: {k} phases (grain IDs?); at most {MAX_PHASES} "
                "phases are reconstructed as indicators"
            )
        absent = np.setdiff1d(np.arange(k), array)
        if absent.size:
            raise ValueError(
                f"{name}: phase labels must be 0..{k - 1} with every phase present; absent: "
                f"{absent.tolist()} (relabel with np.unique(labels, return_inverse=True))"
            )
        return (array[..., None] == np.arange(1, k)).astype(np.float32)
    field = array[..., None] if array.ndim in (2, 3) else array
    if field.ndim not in (3, 4):
        raise ValueError(
            f"{name}: indicators need 2 or 3 spatial axes: (H, W), (D, H, W) or (D, H, W, C), "
            f"got {array.shape}"
        )
    low, high = float(field.min()), float(field.max())
    if low < 0 or high > 1:
        raise ValueError(
            f"{name}: phase indicators must lie in [0, 1], got [{low:.4g}, {high:.4g}]"
        )
    return field.astype(np.float32)
