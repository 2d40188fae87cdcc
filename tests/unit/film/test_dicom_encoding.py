"""The frame and preview encoders of ``bianjie.film.dicom``."""

from __future__ import annotations

import gzip
import io
import zlib

import numpy as np
from bianjie.film import dicom
from PIL import Image


def _ct_frame() -> np.ndarray:
    rng = np.random.default_rng(7)
    return (rng.normal(1000, 300, (512, 512)).clip(0, 4095)).astype("<u2")


def test_frames_are_standard_gzip_members_with_a_fixed_header() -> None:
    raw = _ct_frame().tobytes()
    body = dicom.gzip_member(raw)
    assert gzip.decompress(body) == raw
    assert zlib.decompress(body, 16 + zlib.MAX_WBITS) == raw  # what a browser's inflater does
    assert body[4:8] == b"\0\0\0\0"  # MTIME zero: the same pixels always give the same object
    assert dicom.gzip_member(raw) == body
    assert len(body) < len(raw) * 0.9


def test_halved_averages_2x2_blocks_and_drops_an_odd_edge() -> None:
    frame = np.arange(5 * 7, dtype=np.int16).reshape(5, 7) - 10
    out = dicom.halved(frame)
    assert out.shape == (2, 3)
    block = frame[2:4, 4:6].astype(np.int32)
    assert out[1, 2] == block.sum() >> 2


def test_grey_preview_is_at_most_256_px_and_keeps_the_default_window() -> None:
    ds = _dataset()
    derived = dicom.derive_dataset(ds)
    preview = Image.open(io.BytesIO(derived.lossy[0]))
    assert preview.size == (256, 256) and preview.mode == "L"
    pixels = np.asarray(preview, dtype=np.int32)
    # left half is air (-1000 HU, black in a 40/400 window), right half soft tissue (40 HU, mid grey)
    assert pixels[:, :120].mean() < 10 and 110 < pixels[:, 136:].mean() < 145


def _dataset():  # type: ignore[no-untyped-def]
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 512
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.WindowCenter, ds.WindowWidth = 40, 400
    frame = np.full((512, 512), 24, dtype="<u2")  # -1000 HU
    frame[:, 256:] = 1064  # 40 HU
    ds.PixelData = frame.tobytes()
    return ds
