"""Writes tests/data/orientations_golden.npz from an independent library (orix).

orix is not a jaxmicro dependency: install it into a throw-away location and run

    pip install --target /tmp/ref_orient orix
    PYTHONPATH=/tmp/ref_orient python scripts/make_orientation_golden.py

Only orix's Euler -> quaternion/matrix conversion (``direction='lab2crystal'``, Bunge, passive)
and its symmetry-reduced angle are used; jaxmicro is not imported. Convention notes:

- orix's quaternion tuple is the conjugate of the Rowenhorst P = -1 tuple for the same matrix
  (shared/papers/README.md), so the stored ``quat`` is ``conj(orix)`` made q0 >= 0.
- orix's ``to_matrix`` of a lab2crystal rotation is the passive sample -> crystal matrix g.
- orix 0.15 ``to_euler`` is wrong at Phi = pi, so Euler angles are only ever an input here.
- The disorientation angle does not depend on the quaternion convention; it is taken from the
  proper point groups O (432) and D6 (622), which generate the same angles as m-3m and 6/mmm.
"""

from pathlib import Path

import numpy as np
import orix
from orix.quaternion import Orientation, Rotation
from orix.quaternion.symmetry import D6, O

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "orientations_golden.npz"


def main() -> None:
    rng = np.random.default_rng(20240607)
    random = rng.uniform([0, 0, 0], [2 * np.pi, np.pi, 2 * np.pi], size=(200, 3))
    edges = np.array(
        [[0.4, 0.0, 1.3], [2.0, 1e-7, 0.5], [1.1, np.pi / 2, 0.0], [3.0, np.pi - 1e-7, 2.0],
         [0.7, np.pi, 0.2], [0.0, 0.0, 0.0], [np.pi, np.pi / 3, np.pi]]
    )  # fmt: skip
    euler = np.concatenate([edges, random])
    rot = Rotation.from_euler(euler, direction="lab2crystal")
    quat = rot.data * np.array([1.0, -1.0, -1.0, -1.0])
    quat = np.where(quat[:, :1] < 0, -quat, quat)
    matrix = rot.to_matrix()

    pair_euler = rng.uniform([0, 0, 0], [2 * np.pi, np.pi, 2 * np.pi], size=(2, 150, 3))
    pair_rot = [Rotation.from_euler(e, direction="lab2crystal") for e in pair_euler]
    pairs = [r.data * np.array([1.0, -1.0, -1.0, -1.0]) for r in pair_rot]
    mis = {}
    for name, group in (("cubic", O), ("hexagonal", D6)):
        a = Orientation(pair_rot[0].data, symmetry=group)
        b = Orientation(pair_rot[1].data, symmetry=group)
        mis[name] = np.array([a[i].angle_with(b[i])[0] for i in range(a.size)]).ravel()

    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT,
        euler=euler,
        quat=quat,
        matrix=matrix,
        pair_a=pairs[0],
        pair_b=pairs[1],
        misorientation_cubic=mis["cubic"],
        misorientation_hexagonal=mis["hexagonal"],
        source=np.array(f"orix {orix.__version__}"),
    )
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes) with orix {orix.__version__}")


if __name__ == "__main__":
    main()
