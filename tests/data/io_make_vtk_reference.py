"""Writes io_vtk_*.vti with VTK's own writer (run once; VTK is not a jaxmicro dependency).

    pip install --target /tmp/ref --no-deps vtk
    PYTHONPATH=/tmp/ref python tests/data/io_make_vtk_reference.py

Grid: 4 x 3 x 2 cells (x, y, z), spacing (0.5, 0.25, 2.0), origin (1, 2, 3). Cell arrays:
``ids`` = 0..23 (Int32, x fastest) and ``vec`` (Float64, 3 components) = (k, k / 7, -k) for cell
k. Files: uncompressed binary with UInt32 headers (VTK's default), zlib-compressed binary with
UInt64 headers, ascii. tests/test_io_vtk.py checks that read_vti recovers these values.
"""

from pathlib import Path

import numpy as np
import vtk
from vtkmodules.util.numpy_support import numpy_to_vtk

k = np.arange(24)
image = vtk.vtkImageData()
image.SetDimensions(5, 4, 3)  # points = cells + 1
image.SetSpacing(0.5, 0.25, 2.0)
image.SetOrigin(1.0, 2.0, 3.0)
ids = numpy_to_vtk(k.astype(np.int32), deep=True)
ids.SetName("ids")
vec = numpy_to_vtk(np.stack([k, k / 7, -k], axis=-1).astype(np.float64), deep=True)
vec.SetName("vec")
image.GetCellData().AddArray(ids)
image.GetCellData().AddArray(vec)

here = Path(__file__).parent
for name, setup in {
    "io_vtk_binary.vti": lambda w: (w.SetDataModeToBinary(), w.SetCompressorTypeToNone()),
    "io_vtk_zlib.vti": lambda w: (w.SetDataModeToBinary(), w.SetHeaderTypeToUInt64()),
    "io_vtk_ascii.vti": lambda w: w.SetDataModeToAscii(),
}.items():
    writer = vtk.vtkXMLImageDataWriter()
    writer.SetFileName(str(here / name))
    writer.SetInputData(image)
    setup(writer)
    writer.Write()
