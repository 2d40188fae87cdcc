"""Realistic DICOM test series (CT, MR, multi-frame ultrasound) and pydicom's bundled test files.

The CT is what a scanner writes for a chest study: 512x512, 12 bits stored in 16 with a -1024
rescale intercept (Hounsfield units), axial slices with proper ImagePositionPatient /
ImageOrientationPatient / PixelSpacing / SliceThickness, and a soft-tissue default window. The body is
a synthetic phantom (skin, fat, muscle, lungs, spine, ribs, heart) whose shape changes along z, so
scrolling and windowing show something a reader recognises. Patient identity is synthetic.

``pydicom_test_files()`` lists pydicom's bundled files that carry pixel data, one per transfer syntax
pydicom can decode with the imaging layer's plugins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)

UID_ROOT = "1.2.826.0.1.3680043.10.1447."  # a test root; real deployments see the modality's own UIDs


@dataclass
class Patient:
    name: str = "Zhang^San=张^三"
    mrn: str = "MRN20260001"
    id_card: str = "310101198001010011"
    sex: str = "M"
    birth_date: str = "19800101"


@dataclass
class StudySpec:
    patient: Patient = field(default_factory=Patient)
    hospital: str = "demo-hospital"
    institution: str = "上海市演示医院"
    accession: str = "ACC0001"
    description: str = "胸部CT平扫"
    date: dt.date = field(default_factory=lambda: dt.date(2026, 3, 14))
    study_uid: str = field(default_factory=lambda: generate_uid(UID_ROOT))


def _base(spec: StudySpec, sop_class: str, modality: str, series_uid: str, series_number: int, desc: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid(UID_ROOT)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID_ROOT + "1"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyDate = spec.date.strftime("%Y%m%d")
    ds.SeriesDate = ds.StudyDate
    ds.StudyTime = "093015"
    ds.AccessionNumber = spec.accession
    ds.Modality = modality
    ds.Manufacturer = "bianjie testdata"
    ds.InstitutionName = spec.institution
    ds.StudyDescription = spec.description
    ds.SeriesDescription = desc
    ds.PatientName = spec.patient.name
    ds.PatientID = spec.patient.mrn
    ds.IssuerOfPatientID = spec.hospital
    other = Dataset()
    other.PatientID = spec.patient.id_card
    other.IssuerOfPatientID = "CN-ID"  # 居民身份证
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.PatientBirthDate = spec.patient.birth_date
    ds.PatientSex = spec.patient.sex
    ds.StudyInstanceUID = spec.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.FrameOfReferenceUID = generate_uid(UID_ROOT)
    return ds


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def chest_slice(z: float, size: int = 512, rng: np.random.Generator | None = None) -> np.ndarray:
    """Hounsfield units of one axial slice; z in [0, 1] runs from the lung apices to the diaphragm."""
    rng = rng or np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    s = size / 512
    hu = np.full((size, size), -1000.0, dtype=np.float32)  # air
    body = _ellipse(yy, xx, 256 * s, 256 * s, (170 - 20 * abs(z - 0.5)) * s, 230 * s)
    hu[body] = -100  # fat
    hu[_ellipse(yy, xx, 256 * s, 256 * s, 155 * s, 212 * s)] = 45  # muscle wall
    lung_r = (110 + 40 * np.sin(np.pi * min(max(z, 0.05), 0.95))) * s
    for cx in (170 * s, 342 * s):
        hu[_ellipse(yy, xx, 245 * s, cx, lung_r, 70 * s)] = -850
    vessels = rng.random((size, size)) < 0.002
    hu[vessels & (hu < -500)] = -300
    heart = _ellipse(yy, xx, 270 * s, 290 * s, (75 + 25 * z) * s, (85 + 20 * z) * s)
    hu[heart] = 40
    hu[_ellipse(yy, xx, 245 * s, 262 * s, 18 * s, 18 * s)] = 180  # aorta with contrast
    hu[_ellipse(yy, xx, 380 * s, 256 * s, 24 * s, 22 * s)] = 700  # vertebral body
    hu[_ellipse(yy, xx, 380 * s, 256 * s, 13 * s, 11 * s)] = 250  # cancellous bone
    hu[_ellipse(yy, xx, 80 * s, 256 * s, 10 * s, 30 * s)] = 650  # sternum
    ring = _ellipse(yy, xx, 256 * s, 256 * s, 152 * s, 206 * s) & ~_ellipse(yy, xx, 256 * s, 256 * s, 144 * s, 198 * s)
    angle = np.arctan2(yy - 256 * s, xx - 256 * s)
    ribs = ring & (np.cos(angle * 9 + z * 6) > 0.55)
    hu[ribs] = 800
    hu += rng.normal(0, 12, hu.shape).astype(np.float32)  # quantum noise
    return hu


def ct_series(spec: StudySpec, slices: int = 100, size: int = 512, thickness: float = 2.5) -> Iterator[Dataset]:
    series_uid = generate_uid(UID_ROOT)
    spacing = 350.0 / size
    rng = np.random.default_rng(7)
    for i in range(slices):
        ds = _base(spec, CTImageStorage, "CT", series_uid, 2, "胸部 平扫 2.5mm")
        z = i / max(slices - 1, 1)
        hu = chest_slice(z, size, rng)
        stored = np.clip(np.round(hu + 1024), 0, 4095).astype(np.uint16)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = [-175.0, -175.0, round(-i * thickness, 2)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = round(-i * thickness, 2)
        ds.SliceThickness = thickness
        ds.PixelSpacing = [round(spacing, 6), round(spacing, 6)]
        ds.KVP = 120
        ds.BodyPartExamined = "CHEST"
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenter = [40, -600]
        ds.WindowWidth = [400, 1500]
        ds.WindowCenterWidthExplanation = ["SOFT TISSUE", "LUNG"]
        _pixels(ds, stored, bits_stored=12, signed=False)
        yield ds


def mr_series(spec: StudySpec, slices: int = 20, size: int = 256) -> Iterator[Dataset]:
    series_uid = generate_uid(UID_ROOT)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = size / 2
    rng = np.random.default_rng(11)
    for i in range(slices):
        ds = _base(spec, MRImageStorage, "MR", series_uid, 3, "头颅 T2 轴位")
        z = i / max(slices - 1, 1)
        r = size * (0.30 + 0.12 * np.sin(np.pi * z))
        img = np.zeros((size, size), dtype=np.float32)
        img[_ellipse(yy, xx, c, c, r * 1.2, r)] = 900  # scalp / CSF rim
        img[_ellipse(yy, xx, c, c, r * 1.1, r * 0.9)] = 500  # grey matter
        img[_ellipse(yy, xx, c, c, r * 0.85, r * 0.7)] = 350  # white matter
        for dx in (-0.18, 0.18):
            img[_ellipse(yy, xx, c - r * 0.1, c + dx * r, r * 0.25, r * 0.08)] = 1800  # ventricles (T2 bright)
        img += rng.normal(0, 20, img.shape).astype(np.float32)
        stored = np.clip(img, 0, 4095).astype(np.uint16)
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = [-115.0, -115.0, round(i * 5.0, 2)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = round(i * 5.0, 2)
        ds.SliceThickness = 5.0
        ds.PixelSpacing = [round(230 / size, 6), round(230 / size, 6)]
        ds.MagneticFieldStrength = 3
        ds.EchoTime = 95
        ds.RepetitionTime = 4000
        ds.BodyPartExamined = "HEAD"
        ds.WindowCenter = 700
        ds.WindowWidth = 1600
        _pixels(ds, stored, bits_stored=12, signed=False)
        yield ds


def us_multiframe(spec: StudySpec, frames: int = 24, rows: int = 240, cols: int = 320) -> Dataset:
    """One multi-frame RGB ultrasound cine loop (a sector with moving speckle)."""
    ds = _base(spec, UltrasoundMultiFrameImageStorage, "US", generate_uid(UID_ROOT), 4, "腹部超声 动态")
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    angle = np.arctan2(xx - cols / 2, yy + 20)
    radius = np.hypot(xx - cols / 2, yy + 20)
    sector = (np.abs(angle) < 0.6) & (radius < rows * 0.95)
    rng = np.random.default_rng(5)
    out = np.zeros((frames, rows, cols, 3), dtype=np.uint8)
    for f in range(frames):
        speckle = rng.gamma(2.0, 40, (rows, cols))
        organ = _ellipse(yy, xx, rows * 0.55, cols / 2 + 20 * np.sin(f / 4), rows * 0.2, cols * 0.18)
        grey = np.where(sector, np.clip(speckle * np.where(organ, 0.4, 1.0), 0, 255), 0)
        out[f, ..., 0] = out[f, ..., 1] = out[f, ..., 2] = grey.astype(np.uint8)
        out[f, 5:15, 5 : 5 + int((cols - 10) * (f + 1) / frames), 1] = 200  # a green cine progress bar
    ds.NumberOfFrames = frames
    ds.FrameTime = 40.0
    ds.CineRate = 25
    ds.InstanceNumber = 1
    ds.BodyPartExamined = "ABDOMEN"
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = out.tobytes()
    return ds


def _pixels(ds: Dataset, stored: np.ndarray, bits_stored: int, signed: bool) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = stored.astype("<i2" if signed else "<u2").tobytes()


def compress(ds: Dataset, syntax: str) -> Dataset:
    """Re-encode with one of pydicom's encoders: "rle", "jpegls" (lossless) or "j2k" (lossless)."""
    from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

    uid = {"rle": RLELossless, "jpegls": JPEGLSLossless, "j2k": JPEG2000Lossless}[syntax]
    ds.compress(uid)
    return ds


def write_study(
    out: Path,
    spec: StudySpec | None = None,
    *,
    ct_slices: int = 100,
    mr_slices: int = 20,
    us_frames: int = 24,
    syntax: str | None = None,
) -> list[Path]:
    """Writes a CT series, an MR series and an ultrasound loop of one study under ``out``; returns the files."""
    spec = spec or StudySpec()
    out.mkdir(parents=True, exist_ok=True)
    datasets: list[Dataset] = []
    if ct_slices:
        datasets += list(ct_series(spec, ct_slices))
    if mr_slices:
        datasets += list(mr_series(spec, mr_slices))
    if us_frames:
        datasets.append(us_multiframe(spec, us_frames))
    paths = []
    for ds in datasets:
        if syntax:
            compress(ds, syntax)
        path = out / f"{ds.Modality}_{int(ds.SeriesNumber):02d}_{int(ds.InstanceNumber):04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def pydicom_test_files() -> list[Path]:
    """pydicom's bundled files with pixel data that decode here: the first of each combination of transfer
    syntax, photometric interpretation and single/multi-frame (27 files with pydicom 3.0.2)."""
    import warnings

    import pydicom.data

    root = Path(pydicom.data.__file__).parent / "test_files"
    chosen: dict[tuple[str, str, bool], Path] = {}
    for path in sorted(root.glob("*.dcm")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path)
                if "PixelData" not in ds:
                    continue
                kind = (
                    str(ds.file_meta.TransferSyntaxUID),
                    str(ds.PhotometricInterpretation),
                    int(ds.get("NumberOfFrames") or 1) > 1,
                )
                if kind in chosen:
                    continue
                ds.pixel_array  # noqa: B018 - keep only files that decode
        except Exception:
            continue
        chosen[kind] = path
    return list(chosen.values())


def read(path: Path) -> Dataset:
    return pydicom.dcmread(path)


# -- reports (检查报告) ------------------------------------------------------------------------------

ENCAPSULATED_PDF_STORAGE = "1.2.840.10008.5.1.4.1.1.104.1"
BASIC_TEXT_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.11"

REPORT_FINDINGS = "双肺纹理清晰，未见明显实质性病变。纵隔居中，心影大小形态正常。"
REPORT_IMPRESSION = "胸部CT平扫未见明显异常。"


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with ASCII text lines (Helvetica), built by hand so tests need no PDF library."""
    text = (
        "BT /F1 14 Tf 50 780 Td 18 TL "
        + " ".join("(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '" for line in lines)
        + " ET"
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >>"
        b" /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(text.encode()) + text.encode() + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _report_base(spec: StudySpec, sop_class: str, modality: str) -> Dataset:
    ds = _base(spec, sop_class, modality, generate_uid(UID_ROOT), 900, "检查报告")
    del ds.FrameOfReferenceUID
    ds.InstanceNumber = 1
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = "101500"
    return ds


def pdf_report(spec: StudySpec) -> Dataset:
    """An Encapsulated PDF report (what many RIS export) for the study of ``spec``."""
    ds = _report_base(spec, ENCAPSULATED_PDF_STORAGE, "DOC")
    pdf = minimal_pdf(["Chest CT report (test data)", f"Accession {spec.accession}", "Impression: no abnormality."])
    ds.DocumentTitle = "胸部CT诊断报告"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.BurnedInAnnotation = "YES"
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    return ds


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _text_item(relationship: str, name: Dataset, text: str) -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = "TEXT"
    item.ConceptNameCodeSequence = Sequence([name])
    item.TextValue = text
    return item


def sr_report(spec: StudySpec, findings: str = REPORT_FINDINGS, impression: str = REPORT_IMPRESSION) -> Dataset:
    """A Basic Text SR (TID 2000 shape): a container titled 影像诊断报告 with 检查所见 and 诊断意见 sections."""
    ds = _report_base(spec, BASIC_TEXT_SR_STORAGE, "SR")
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "VERIFIED"
    ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "影像诊断报告")])
    findings_section = Dataset()
    findings_section.RelationshipType = "CONTAINS"
    findings_section.ValueType = "CONTAINER"
    findings_section.ContinuityOfContent = "SEPARATE"
    findings_section.ConceptNameCodeSequence = Sequence([_code("121070", "DCM", "检查所见")])
    findings_section.ContentSequence = Sequence([_text_item("CONTAINS", _code("121071", "DCM", "所见"), findings)])
    ds.ContentSequence = Sequence(
        [
            findings_section,
            _text_item("CONTAINS", _code("121073", "DCM", "诊断意见"), impression),
            _text_item("HAS OBS CONTEXT", _code("121008", "DCM", "报告医生"), "李医生"),
        ]
    )
    return ds


def write_reports(out: Path, spec: StudySpec, *, pdf: bool = True, sr: bool = True) -> list[Path]:
    """Writes a PDF and/or an SR report of the study of ``spec`` under ``out``; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in ([pdf_report(spec)] if pdf else []) + ([sr_report(spec)] if sr else []):
        path = out / f"{ds.Modality}_report_{ds.SOPInstanceUID[-8:]}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
