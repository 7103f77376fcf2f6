"""VTK XML ImageData: well-formed XML, payloads that decode to the arrays, round trips, errors."""

import base64
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro.io import read_vti, write_vti

DATA = Path(__file__).parent / "data"
RNG = np.random.default_rng(0)
VOLUME = RNG.integers(0, 7, size=(3, 4, 5)).astype(np.int32)  # (nz, ny, nx)
VECTORS = RNG.normal(size=(3, 4, 5, 3)).astype(np.float32)


def data_arrays(path):
    root = ET.parse(path).getroot()  # raises if the XML is not well formed
    return root, {a.get("Name"): a for a in root.iter("DataArray")}


def test_xml_structure_and_geometry(tmp_path):
    write_vti(
        tmp_path / "v.vti", {"ids": VOLUME, "v": VECTORS}, spacing=(0.5, 2.0, 3.0), origin=1.0
    )
    root, arrays = data_arrays(tmp_path / "v.vti")
    assert root.tag == "VTKFile" and root.get("type") == "ImageData"
    assert root.get("byte_order") == "LittleEndian" and root.get("header_type") == "UInt64"
    image = root.find("ImageData")
    assert image.get("WholeExtent") == "0 5 0 4 0 3"  # x = last array axis
    assert image.get("Spacing") == "3.0 2.0 0.5" and image.get("Origin") == "1.0 1.0 1.0"
    assert image.find("Piece").get("Extent") == "0 5 0 4 0 3"
    assert root.find("ImageData/Piece/CellData").get("Scalars") == "ids"
    assert (arrays["ids"].get("type"), arrays["ids"].get("NumberOfComponents")) == ("Int32", "1")
    assert (arrays["v"].get("type"), arrays["v"].get("NumberOfComponents")) == ("Float32", "3")
    assert arrays["v"].get("format") == "binary"


@pytest.mark.parametrize("name,values", [("ids", VOLUME), ("v", VECTORS)])
def test_binary_payload_decodes_to_the_array(tmp_path, name, values):
    write_vti(tmp_path / "v.vti", {"ids": VOLUME, "v": VECTORS})
    text = data_arrays(tmp_path / "v.vti")[1][name].text.strip()
    header, payload = base64.b64decode(text[:12]), base64.b64decode(text[12:])  # 8-byte header
    assert np.frombuffer(header, "<u8")[0] == values.nbytes == len(payload)
    decoded = np.frombuffer(payload, values.dtype.newbyteorder("<"))
    np.testing.assert_array_equal(decoded, values.ravel())  # x fastest, components interleaved


def test_compressed_payload_decodes_to_the_array(tmp_path):
    big = RNG.normal(size=(6, 40, 50))  # 96000 bytes: three 32 KiB blocks
    write_vti(tmp_path / "c.vti", {"f": big}, compress=True)
    root, arrays = data_arrays(tmp_path / "c.vti")
    assert root.get("compressor") == "vtkZLibDataCompressor"
    text = arrays["f"].text.strip()
    words = np.frombuffer(base64.b64decode(text[:32]), "<u8")
    n_blocks = int(words[0])
    assert (n_blocks, words[1], words[2]) == (3, 32768, big.nbytes - 2 * 32768)
    n_header = 4 * -(-(3 + n_blocks) * 8 // 3)
    sizes = np.frombuffer(base64.b64decode(text[:n_header]), "<u8")[3:]
    payload = base64.b64decode(text[n_header:])
    assert len(payload) == sizes.sum()
    ends = np.cumsum(sizes).tolist()
    raw = b"".join(
        zlib.decompress(payload[a:b]) for a, b in zip([0, *ends[:-1]], ends, strict=True)
    )
    np.testing.assert_array_equal(np.frombuffer(raw, "<f8"), big.ravel())


@pytest.mark.parametrize(
    "encoding,compress", [("binary", False), ("binary", True), ("ascii", False)]
)
def test_round_trip_every_encoding(tmp_path, encoding, compress):
    fields = {
        "ids": VOLUME,
        "v": VECTORS,
        "f64": RNG.normal(size=(3, 4, 5)),
        "u8": RNG.integers(0, 255, size=(3, 4, 5)).astype(np.uint8),
        "i64": RNG.integers(-(2**40), 2**40, size=(3, 4, 5)),
        "q": jnp.asarray(RNG.normal(size=(3, 4, 5, 4)).astype(np.float32)),
    }
    spacing, origin = (0.1, 0.2, 0.3), (-1.0, 0.0, 2.5)
    write_vti(
        tmp_path / "r.vti",
        fields,
        spacing=spacing,
        origin=origin,
        encoding=encoding,
        compress=compress,
    )
    back = read_vti(tmp_path / "r.vti")
    assert back.spacing == spacing and back.origin == origin
    assert list(back.fields) == list(fields)
    for name, values in fields.items():
        values = np.asarray(values)
        assert back.fields[name].dtype == values.dtype
        np.testing.assert_array_equal(back.fields[name], values)


def test_two_dimensional_image(tmp_path):
    image = RNG.random((4, 6))
    rgb = RNG.random((4, 6, 3))
    write_vti(tmp_path / "i.vti", {"img": image, "rgb": rgb}, spacing=(0.5, 0.25))
    root, _ = data_arrays(tmp_path / "i.vti")
    assert root.find("ImageData").get("WholeExtent") == "0 6 0 4 0 0"
    back = read_vti(tmp_path / "i.vti")
    assert back.spacing == (0.5, 0.25) and back.fields["img"].shape == (4, 6)
    np.testing.assert_array_equal(back.fields["rgb"], rgb)


def test_vector_only_fields_need_ndim(tmp_path):
    rgb = RNG.random((4, 6, 3))
    write_vti(tmp_path / "a.vti", {"rgb": rgb}, ndim=2)
    assert read_vti(tmp_path / "a.vti").fields["rgb"].shape == (4, 6, 3)
    write_vti(tmp_path / "b.vti", {"rgb": rgb})  # read as a 3-D scalar volume, as documented
    assert read_vti(tmp_path / "b.vti").fields["rgb"].shape == (4, 6, 3)


def test_bool_is_written_as_uint8(tmp_path):
    mask = VOLUME > 3
    write_vti(tmp_path / "m.vti", {"mask": mask})
    back = read_vti(tmp_path / "m.vti").fields["mask"]
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, mask)


def handmade(tmp_path, text, header_type="UInt32"):
    path = tmp_path / "h.vti"
    path.write_text(
        f'<?xml version="1.0"?><VTKFile type="ImageData" version="0.1" byte_order="LittleEndian"'
        f' header_type="{header_type}"><ImageData WholeExtent="0 3 0 1 0 1" Origin="0 0 0"'
        f' Spacing="1 1 1"><Piece Extent="0 3 0 1 0 1"><CellData>{text}</CellData></Piece>'
        "</ImageData></VTKFile>"
    )
    return path


def test_reads_uint32_headers_encoded_with_the_data(tmp_path):
    values = np.array([7, -1, 3], "<i2")
    joint = base64.b64encode(np.uint32(values.nbytes).tobytes() + values.tobytes()).decode()
    separate = (
        base64.b64encode(np.uint32(values.nbytes).tobytes()) + base64.b64encode(values.tobytes())
    ).decode()
    for text in (joint, separate):
        array = f'<DataArray type="Int16" Name="a" format="binary">{text}</DataArray>'
        np.testing.assert_array_equal(
            read_vti(handmade(tmp_path, array)).fields["a"], [[[7, -1, 3]]]
        )


def test_reader_errors(tmp_path):
    array = '<DataArray type="Int16" Name="a" format="appended" offset="0"/>'
    with pytest.raises(ValueError, match="appended"):
        read_vti(handmade(tmp_path, array))
    array = '<DataArray type="Int16" Name="a" format="ascii">1 2</DataArray>'
    with pytest.raises(ValueError, match="expected 3 values, got 2"):
        read_vti(handmade(tmp_path, array))
    (tmp_path / "p.vtp").write_text('<VTKFile type="PolyData"></VTKFile>')
    with pytest.raises(ValueError, match="ImageData"):
        read_vti(tmp_path / "p.vtp")


def test_writer_validation(tmp_path):
    path = tmp_path / "x.vti"
    with pytest.raises(ValueError, match="non-empty"):
        write_vti(path, {})
    with pytest.raises(ValueError, match=r"fields\['b'\]"):
        write_vti(path, {"a": VOLUME, "b": VOLUME[:, :2]})
    with pytest.raises(ValueError, match="unsupported dtype"):
        write_vti(path, {"a": VOLUME.astype(np.complex64)})
    with pytest.raises(ValueError, match="spacing"):
        write_vti(path, {"a": VOLUME}, spacing=(1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match="spacing"):
        write_vti(path, {"a": VOLUME}, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="ndim"):
        write_vti(path, {"a": VOLUME[..., None, None]})
    with pytest.raises(ValueError, match="encoding"):
        write_vti(path, {"a": VOLUME}, encoding="raw")


@pytest.mark.parametrize("name", ["io_vtk_binary.vti", "io_vtk_zlib.vti", "io_vtk_ascii.vti"])
def test_reads_files_written_by_vtk(name):
    """Files from VTK 9.7.2's vtkXMLImageDataWriter (tests/data/io_make_vtk_reference.py)."""
    back = read_vti(DATA / name)
    k = np.arange(24)
    assert back.spacing == (2.0, 0.25, 0.5) and back.origin == (3.0, 2.0, 1.0)
    assert back.fields["ids"].dtype == np.int32
    np.testing.assert_array_equal(back.fields["ids"], k.reshape(2, 3, 4))
    vec = np.stack([k, k / 7, -k], axis=-1).reshape(2, 3, 4, 3)
    np.testing.assert_array_equal(back.fields["vec"], vec)
