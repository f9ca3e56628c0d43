"""A seeded, deterministic corpus of bad inputs derived from the sample plans and third-party files.

Every case names a base (an unmutated set of inputs), the files it changes, the commands that read
them and what a right answer is:

``refuse``          the input is wrong: the command must exit 2 (one line on stderr).
``same``            the change cannot matter: exit 0/1 with the unmutated numbers.
``same_or_refuse``  exit 2, or exit 0/1 with the unmutated numbers (a structure or constraint may
                    instead be reported "not evaluated"; nothing else may change).
``safe``            random bytes anywhere: a changed dose voxel is legitimate data, so numbers are
                    not asserted, only the safety properties (counted in the summary). Also a dose
                    100 times off under ``dvh``, which reads no plan to compare it with.

Bases: ``sbrt`` (sample_plans/hn_sbrt_reirradiation, two courses and a REG, judged against a
three-entry subset of the built-in set), ``dcc`` (dicompyler-core's Eclipse breast plan) and
``nelms`` (a Nelms 2015 analytic dose grid and structure). The third-party files are read from
REIRRAD_TESTDATA and copied only into the temporary run folder, never into the repository.

Families: truncate, bytes-inert (random letters inside descriptive text values), bytes-any (random
bytes anywhere), missing-tags, scaling, huge-grid, contours, reg, case-file, constraint-set.
``build_corpus(seed, random_cases)`` gives the same list for the same seed and data.
"""

from __future__ import annotations

import io
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pydicom
from pydicom.tag import Tag

REPO = Path(__file__).resolve().parents[1]
SBRT = REPO / "sample_plans" / "hn_sbrt_reirradiation"
BUILTIN_SET = REPO / "constraints" / "hn-reirradiation.toml"
TINY_IDS = ("spinalcord-dmax", "carotid-dmax", "parotid-dmean")  # entries kept in the baseline set
KEPT_ROIS = ("BODY", "SpinalCord", "A_Carotid_L", "Carotid_R", "Parotid_L", "Parotid_R")  # the structures they use
CORD = 1  # index of SpinalCord (48 contours) among the kept structures

# the commands, as argument lists run in the case folder; OUT is the file an export writes
OUT = "out.dcm"
COMMANDS: dict[str, dict[str, list[str]]] = {
    "sbrt": {
        "check": ["check", "case.toml", "-f", "json"],
        "dvh": [
            "dvh",
            "course2/dose.dcm",
            "course2/structures.dcm",
            "-f",
            "json",
            "-s",
            "SpinalCord",
            "-s",
            "A_Carotid_L",
            "-s",
            "Parotid_L",
            "-m",
            "Dmax",
            "-m",
            "Dmean",
            "-m",
            "D0.03cc",
        ],
        "eqd2": ["eqd2", "course2/dose.dcm", "--alpha-beta", "3", "--plan", "course2/plan.dcm", "-o", OUT],
        "sum": ["sum", "case.toml", "--alpha-beta", "3", "-o", OUT],
        "validate": ["constraints", "validate", "tiny.toml"],
    },
    "dcc": {
        "dvh": [
            "dvh",
            "rtdose.dcm",
            "rtss.dcm",
            "-f",
            "json",
            "-s",
            "Heart",
            "-s",
            "Scar",
            "-s",
            "Tumor Bed",
            "-m",
            "Dmax",
            "-m",
            "Dmean",
            "-m",
            "D0.03cc",
        ],
        "eqd2": ["eqd2", "rtdose.dcm", "--alpha-beta", "3", "--plan", "rtplan.dcm", "-o", OUT],
    },
    "nelms": {
        "dvh": ["dvh", "dose.dcm", "structure.dcm", "-f", "json", "-m", "Dmax", "-m", "Dmean", "-m", "D95%"],
    },
}
# which commands read each file of a base
READERS: dict[str, dict[str, tuple[str, ...]]] = {
    "sbrt": {
        "course2/dose.dcm": ("check", "dvh", "eqd2", "sum"),
        "course2/structures.dcm": ("check", "dvh"),
        "course2/plan.dcm": ("check", "eqd2", "sum"),
        "course2/reg.dcm": ("check", "sum"),
        "course1/dose.dcm": ("check", "sum"),
        "course1/structures.dcm": ("check",),
        "course1/plan.dcm": ("check", "sum"),
        "case.toml": ("check", "sum"),
        "tiny.toml": ("validate", "check"),
    },
    "dcc": {"rtdose.dcm": ("dvh", "eqd2"), "rtss.dcm": ("dvh",), "rtplan.dcm": ("eqd2",)},
    "nelms": {"dose.dcm": ("dvh",), "structure.dcm": ("dvh",)},
}
DICOM_FILES = {base: [f for f in files if f.endswith(".dcm")] for base, files in READERS.items()}
# descriptive text elements whose content cannot change a dose, a geometry or a verdict
INERT_TAGS = [Tag(t) for t in (0x0008103E, 0x00081030, 0x00080070, 0x00081010, 0x00081090, 0x00081070, 0x00180015)]


@dataclass(frozen=True)
class FuzzCase:
    """One bad input: the base it derives from, the files it replaces and what is right."""

    family: str
    name: str
    base: str
    files: dict[str, bytes | Callable[[], bytes]] = field(hash=False)  # relative path -> new content (or its maker)
    commands: tuple[str, ...]
    expect: str  # refuse | same | same_or_refuse | same_or_noted | safe
    links: dict[str, str] = field(default_factory=dict, hash=False)  # relative path -> symlink target
    expect_for: dict[str, str] = field(default_factory=dict, hash=False)  # command -> expectation, overriding

    def expectation(self, command: str) -> str:
        """What is right for this command."""
        return self.expect_for.get(command, self.expect)


# ---------------------------------------------------------------------------------------------
# bases


def tiny_set_text() -> str:
    """The baseline constraint set: the built-in file's header and three of its entries, verbatim."""
    text = BUILTIN_SET.read_text(encoding="utf-8")
    head, *entries = text.split("\n[[constraints]]\n")
    kept = [e for e in entries if re.search(r'^id = "([^"]+)"', e, re.M).group(1) in TINY_IDS]
    head = re.sub(r'^name = ".*"$', 'name = "fuzz-tiny"', head, count=1, flags=re.M)
    return head + "".join("\n[[constraints]]\n" + e for e in kept)


def make_bases(root: Path, testdata: Path | None) -> dict[str, Path]:
    """Pristine copies of every base under ``root`` (the third-party files only when present)."""
    bases = {}
    sbrt = root / "sbrt"
    shutil.copytree(SBRT, sbrt, ignore=shutil.ignore_patterns("ct"))  # the mutations are of RT objects
    case = (sbrt / "case.toml").read_text()
    (sbrt / "case.toml").write_text(case.replace('constraints = "hn-reirradiation"', 'constraints = "tiny.toml"'))
    (sbrt / "tiny.toml").write_text(tiny_set_text())
    for course in ("course1", "course2"):  # fewer structures: a quicker check, the same numbers
        path = sbrt / course / "structures.dcm"
        path.write_bytes(edit(path.read_bytes(), _keep_rois))
    bases["sbrt"] = sbrt
    if testdata is not None:
        dcc = root / "dcc"
        dcc.mkdir()
        for name in ("rtdose.dcm", "rtss.dcm", "rtplan.dcm"):
            shutil.copyfile(testdata / "dicompyler-core" / name, dcc / name)
        nelms = root / "nelms"
        nelms.mkdir()
        shutil.copyfile(testdata / "nelms2015" / "dose_grids" / "Linear_AntPost_3mm_Aligned.dcm", nelms / "dose.dcm")
        shutil.copyfile(testdata / "nelms2015" / "structures" / "Cylinder_20_0.dcm", nelms / "structure.dcm")
        bases.update(dcc=dcc, nelms=nelms)
    return bases


# ---------------------------------------------------------------------------------------------
# DICOM editing helpers


def _dataset(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data), force=True)


def _save(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, write_like_original=True)
    return buffer.getvalue()


def _value_span(data: bytes, tag: int) -> tuple[int, int]:
    """(offset, length) of a top-level element's value in the file."""
    ds = pydicom.dcmread(io.BytesIO(data), force=True, defer_size=None)
    raw = ds._dict[Tag(tag)]
    return raw.value_tell, raw.length


def replace_text(data: bytes, tag: int, text: str) -> bytes:
    """The file with a top-level text value replaced in place (padded with spaces to its length)."""
    start, length = _value_span(data, tag)
    value = text.encode("ascii")[:length].ljust(length, b" ")
    return data[:start] + value + data[start + length :]


def edit(data: bytes, change: Callable[[pydicom.Dataset], None]) -> bytes:
    """The file after ``change`` edits its dataset (written back with pydicom)."""
    ds = _dataset(data)
    change(ds)
    return _save(ds)


# mutations are made when a case's folder is filled, from the pristine base file, so that the
# corpus holds no file contents (the third-party dose alone is 9.5 MB)


def cut(path: Path, offset: int) -> bytes:
    return path.read_bytes()[:offset]


def set_bytes(path: Path, changes: tuple[tuple[int, int], ...]) -> bytes:
    data = bytearray(path.read_bytes())
    for offset, value in changes:
        data[offset] = value
    return bytes(data)


def edit_file(path: Path, change: Callable[[pydicom.Dataset], None]) -> bytes:
    return edit(path.read_bytes(), change)


def replace_text_file(path: Path, tag: int, text: str) -> bytes:
    return replace_text(path.read_bytes(), tag, text)


def _keep_rois(ds: pydicom.Dataset) -> None:
    """Only the structures of :data:`KEPT_ROIS` in an RTSTRUCT."""
    numbers = {int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName in KEPT_ROIS}
    ds.StructureSetROISequence = [r for r in ds.StructureSetROISequence if int(r.ROINumber) in numbers]
    ds.ROIContourSequence = [r for r in ds.ROIContourSequence if int(r.ReferencedROINumber) in numbers]
    ds.RTROIObservationsSequence = [r for r in ds.RTROIObservationsSequence if int(r.ReferencedROINumber) in numbers]


def _delete(*path: str | int) -> Callable[[pydicom.Dataset], None]:
    """Delete the element at a path of keywords and item indexes, e.g. ("ROIContourSequence", CORD, ...)."""

    def change(ds: pydicom.Dataset) -> None:
        node = ds
        for step in path[:-1]:
            node = node[step] if isinstance(step, int) else getattr(node, step)
        delattr(node, path[-1])

    return change


# ---------------------------------------------------------------------------------------------
# families


def truncations(bases: dict[str, Path], rng: random.Random, count: int) -> list[FuzzCase]:
    """Every file cut to nothing, to half and by its last byte, and ``count`` random cuts."""
    files = [(base, name) for base in bases for name in READERS[base]]
    cases = []
    for base, name in files:
        size = (bases[base] / name).stat().st_size
        cases += [_truncated(bases, base, name, offset) for offset in sorted({0, size // 2, size - 1})]
    for _ in range(count):
        base, name = files[rng.randrange(len(files))]
        cases.append(_truncated(bases, base, name, rng.randrange(1, (bases[base] / name).stat().st_size)))
    return cases


def _truncated(bases: dict[str, Path], base: str, name: str, offset: int) -> FuzzCase:
    return FuzzCase(
        "truncate",
        f"{base}:{name}@{offset}",
        base,
        {name: partial(cut, bases[base] / name, offset)},
        READERS[base][name],
        "same_or_refuse",
    )


def inert_bytes(bases: dict[str, Path], rng: random.Random, count: int) -> list[FuzzCase]:
    """One letter changed inside a descriptive text value (series description, manufacturer, ...):
    the numbers must not change (or the file is refused)."""
    spans = []
    for base in bases:
        for name in DICOM_FILES[base]:
            data = (bases[base] / name).read_bytes()
            ds = pydicom.dcmread(io.BytesIO(data), force=True, defer_size=None)
            spans += [
                (base, name, ds._dict[t].value_tell, ds._dict[t].length)
                for t in INERT_TAGS
                if t in ds._dict and ds._dict[t].length > 0
            ]
    cases = []
    for _ in range(count):
        base, name, start, length = spans[rng.randrange(len(spans))]
        offset = start + rng.randrange(length)
        old = (bases[base] / name).read_bytes()[offset]
        letter = rng.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".replace(bytes([old]), b""))
        cases.append(
            FuzzCase(
                "bytes-inert",
                f"{base}:{name}#{offset}",
                base,
                {name: partial(set_bytes, bases[base] / name, ((offset, letter),))},
                READERS[base][name],
                "same_or_refuse",
            )
        )
    return cases


def any_bytes(bases: dict[str, Path], rng: random.Random, count: int) -> list[FuzzCase]:
    """One to four random bytes anywhere in a DICOM file: safety only (a dose voxel may change)."""
    files = [(base, name) for base in bases for name in DICOM_FILES[base]]
    cases = []
    for _ in range(count):
        base, name = files[rng.randrange(len(files))]
        data = (bases[base] / name).read_bytes()
        offsets = sorted({rng.randrange(len(data)) for _ in range(rng.randint(1, 4))})
        changes = tuple((offset, (data[offset] + rng.randrange(1, 256)) % 256) for offset in offsets)
        cases.append(
            FuzzCase(
                "bytes-any",
                f"{base}:{name}#{'+'.join(map(str, offsets))}",
                base,
                {name: partial(set_bytes, bases[base] / name, changes)},
                READERS[base][name],
                "safe",
            )
        )
    return cases


def missing_tags(bases: dict[str, Path]) -> list[FuzzCase]:
    """Required attributes removed, one at a time."""
    removals = {
        "course2/dose.dcm": [
            "PixelData",
            "DoseGridScaling",
            "GridFrameOffsetVector",
            "ImagePositionPatient",
            "ImageOrientationPatient",
            "PixelSpacing",
            "FrameOfReferenceUID",
            "DoseUnits",
            "NumberOfFrames",
            "Rows",
            "BitsAllocated",
        ],
        "course2/structures.dcm": [
            ("ROIContourSequence", CORD, "ContourSequence", 20, "ContourData"),
            ("ROIContourSequence", CORD, "ContourSequence", 20, "NumberOfContourPoints"),
            ("ROIContourSequence", CORD, "ReferencedROINumber"),
            ("StructureSetROISequence", CORD, "ReferencedFrameOfReferenceUID"),
            ("StructureSetROISequence", CORD, "ROIName"),
            ("ReferencedFrameOfReferenceSequence", 0, "FrameOfReferenceUID"),
            "ReferencedFrameOfReferenceSequence",
            "StructureSetROISequence",
            "ROIContourSequence",
        ],
        "course2/plan.dcm": [
            "FractionGroupSequence",
            ("FractionGroupSequence", 0, "NumberOfFractionsPlanned"),
            "FrameOfReferenceUID",
        ],
        "course2/reg.dcm": [
            "RegistrationSequence",
            ("RegistrationSequence", 1, "FrameOfReferenceUID"),
            ("RegistrationSequence", 1, "MatrixRegistrationSequence"),
            (
                "RegistrationSequence",
                1,
                "MatrixRegistrationSequence",
                0,
                "MatrixSequence",
                0,
                "FrameOfReferenceTransformationMatrix",
            ),
        ],
        "course1/dose.dcm": ["DoseGridScaling", "FrameOfReferenceUID", "GridFrameOffsetVector"],
    }
    cases = []
    for name, paths in removals.items():
        for path in paths:
            path = (path,) if isinstance(path, str) else path
            label = ".".join(map(str, path))
            # derivable from other attributes (frames from the offsets, points from the coordinates,
            # the structure set's frame from its other reference), unused (a plan's frame), or a
            # structure that can only be "not evaluated": the same numbers are right too
            derivable = (
                path[-1] in ("NumberOfFrames", "NumberOfContourPoints", "ROIName")
                or (name == "course2/plan.dcm" and path[-1] == "FrameOfReferenceUID")
                or (name == "course2/structures.dcm" and "FrameOfReference" in label)
            )
            cases.append(
                FuzzCase(
                    "missing-tags",
                    f"sbrt:{name}-{label}",
                    "sbrt",
                    {name: partial(edit_file, bases["sbrt"] / name, _delete(*path))},
                    READERS["sbrt"][name],
                    "same_or_refuse" if derivable else "refuse",
                    # eqd2 converts voxel by voxel: the frame does not enter
                    expect_for={"eqd2": "same_or_refuse"} if path[-1] == "FrameOfReferenceUID" else {},
                )
            )
    if "dcc" in bases:
        for keyword in ("PixelData", "DoseGridScaling", "GridFrameOffsetVector", "ImagePositionPatient"):
            cases.append(
                FuzzCase(
                    "missing-tags",
                    f"dcc:rtdose.dcm-{keyword}",
                    "dcc",
                    {"rtdose.dcm": partial(edit_file, bases["dcc"] / "rtdose.dcm", _delete(keyword))},
                    READERS["dcc"]["rtdose.dcm"],
                    "refuse",
                )
            )
    return cases


def scalings(bases: dict[str, Path]) -> list[FuzzCase]:
    """DoseGridScaling replaced in place: not a number, not finite, zero, negative, 100 x off."""
    cases = []
    targets = [("sbrt", "course2/dose.dcm"), ("sbrt", "course1/dose.dcm")] + (
        [("dcc", "rtdose.dcm")] if "dcc" in bases else []
    )
    for base, name in targets:
        value = float(pydicom.dcmread(bases[base] / name, stop_before_pixels=True).DoseGridScaling)
        for label, text in (
            ("nan", "nan"),
            ("inf", "inf"),
            ("-inf", "-inf"),
            ("zero", "0"),
            ("negative", f"{-value:.3g}"),
            ("x100", f"{value * 100:.4g}"),
            ("div100", f"{value / 100:.3g}"),
            ("text", "abc"),
        ):
            cases.append(
                FuzzCase(
                    "scaling",
                    f"{base}:{name}-{label}",
                    base,
                    {name: partial(replace_text_file, bases[base] / name, 0x3004000E, text)},
                    READERS[base][name],
                    "refuse",
                    expect_for={"dvh": "safe"} if label in ("x100", "div100") else {},
                )
            )
    return cases


def huge_grids(bases: dict[str, Path]) -> list[FuzzCase]:
    """Headers that claim far more voxels than the file holds or memory allows."""
    name = "course2/dose.dcm"

    def frames(ds: pydicom.Dataset) -> None:
        ds.NumberOfFrames = 2_000_000
        ds.GridFrameOffsetVector = [3.0 * i for i in range(2_000_000)]

    def spacing(ds: pydicom.Dataset) -> None:  # 0.01 mm voxels: an evaluation grid of TiB
        ds.PixelSpacing = [0.01, 0.01]
        ds.GridFrameOffsetVector = [0.01 * i for i in range(int(ds.NumberOfFrames))]

    changes = {
        "rows-columns": lambda ds: (setattr(ds, "Rows", 65535), setattr(ds, "Columns", 65535)),
        "frames": frames,
        "frames-header-only": lambda ds: setattr(ds, "NumberOfFrames", 2_000_000),
        "tiny-voxels": spacing,
    }
    # 0.01 mm voxels are a legitimate (if odd) grid: `sum` writes the total on it, so its numbers
    # differ by construction; the others must refuse or not evaluate the structures
    return [
        FuzzCase(
            "huge-grid",
            f"sbrt:{name}-{label}",
            "sbrt",
            {name: partial(edit_file, bases["sbrt"] / name, change)},
            READERS["sbrt"][name],
            "same_or_refuse" if label == "tiny-voxels" else "refuse",
            expect_for={"sum": "safe"} if label == "tiny-voxels" else {},
        )
        for label, change in changes.items()
    ]


def contours(bases: dict[str, Path]) -> list[FuzzCase]:
    """The spinal cord's contours (48 planes) damaged: NaN, one or two points, a bow tie,
    moved outside the dose grid, duplicated, odd counts, off-plane."""
    name = "course2/structures.dcm"

    def contour(ds: pydicom.Dataset, index: int = 20):
        return ds.ROIContourSequence[CORD].ContourSequence[index]

    def points(n: int) -> Callable[[pydicom.Dataset], None]:
        def change(ds):
            item = contour(ds)
            item.ContourData = list(item.ContourData)[: 3 * n]
            item.NumberOfContourPoints = n

        return change

    def nan_point(ds):
        values = [float(v) for v in contour(ds).ContourData]
        values[3] = float("nan")
        contour(ds).ContourData = values

    def bow_tie(ds):
        values = [float(v) for v in contour(ds).ContourData]
        n = len(values) // 3
        i, j = 1, n // 2
        values[3 * i : 3 * i + 2], values[3 * j : 3 * j + 2] = values[3 * j : 3 * j + 2], values[3 * i : 3 * i + 2]
        contour(ds).ContourData = values

    def outside(ds):
        for item in ds.ROIContourSequence[CORD].ContourSequence:
            values = [float(v) for v in item.ContourData]
            item.ContourData = [v + 1000.0 if k % 3 == 0 else v for k, v in enumerate(values)]

    def duplicate(ds):
        ds.ROIContourSequence[CORD].ContourSequence.append(contour(ds))

    def odd_count(ds):
        contour(ds).ContourData = list(contour(ds).ContourData)[:-1]

    def count_mismatch(ds):
        contour(ds).NumberOfContourPoints = int(contour(ds).NumberOfContourPoints) + 5

    def off_plane(ds):
        values = [float(v) for v in contour(ds).ContourData]
        values[5] += 7.0
        contour(ds).ContourData = values

    changes = {
        "nan": nan_point,
        "one-point": points(1),
        "two-points": points(2),
        "bow-tie": bow_tie,
        "outside-grid": outside,
        "duplicated": duplicate,
        "odd-count": odd_count,
        "count-mismatch": count_mismatch,
        "off-plane": off_plane,
    }
    # A self-intersecting contour is read as drawn (the union of its lobes), with a note naming
    # the plane: other numbers are right there, but never without that note.
    noted = {"bow-tie"}
    return [
        FuzzCase(
            "contours",
            f"sbrt:{name}-cord-{label}",
            "sbrt",
            {name: partial(edit_file, bases["sbrt"] / name, change)},
            READERS["sbrt"][name],
            "same_or_noted" if label in noted else "same_or_refuse",
        )
        for label, change in changes.items()
    ]


def registrations(bases: dict[str, Path]) -> list[FuzzCase]:
    """The prior-to-new matrix of the REG replaced: singular, scaled, NaN, sheared, absurd shift,
    15 values, a frame no course has."""
    name = "course2/reg.dcm"
    identity = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]

    def matrix(values) -> Callable[[pydicom.Dataset], None]:
        def change(ds):
            ds.RegistrationSequence[1].MatrixRegistrationSequence[0].MatrixSequence[
                0
            ].FrameOfReferenceTransformationMatrix = values

        return change

    def scaled(ds):
        item = ds.RegistrationSequence[1].MatrixRegistrationSequence[0].MatrixSequence[0]
        values = [float(v) for v in item.FrameOfReferenceTransformationMatrix]
        item.FrameOfReferenceTransformationMatrix = [
            2 * v if k < 11 and k % 4 != 3 else v for k, v in enumerate(values)
        ]

    def other_frame(ds):
        ds.RegistrationSequence[1].FrameOfReferenceUID = "2.25.1234567890123456789"

    changes = {
        "singular": matrix([0] * 15 + [1]),
        "scaled": scaled,
        "nan": matrix([float("nan")] + identity[1:]),
        "sheared": matrix([1, 0.5, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
        "far-shift": matrix([1, 0, 0, 1e5, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
        "15-values": matrix(identity[:15]),
        "absent-frame": other_frame,
    }
    return [
        FuzzCase(
            "reg",
            f"sbrt:{name}-{label}",
            "sbrt",
            {name: partial(edit_file, bases["sbrt"] / name, change)},
            READERS["sbrt"][name],
            "refuse",
        )
        for label, change in changes.items()
    ]


def case_files(bases: dict[str, Path]) -> list[FuzzCase]:
    """The case file with every kind of wrong value (and a few harmless rewritings)."""
    good = (bases["sbrt"] / "case.toml").read_text()
    prior, new = good.split("[[courses]]")[1:3]
    new = new.split("[clinical]")[0]
    refuse = {
        "not-utf8": good.encode() + b"# caf\xe9\n",
        "deep-nesting": good.replace('id = "', "x = " + "[" * 3000 + "]" * 3000 + '\nid = "').encode(),
        "empty": b"",
        "binary": bytes(range(256)),
        "id-int": good.replace('id = "HN-SBRT-REIRR-01"', "id = 3"),
        "courses-text": 'id = "x"\ncourses = "course1"\n',
        "courses-empty": 'id = "x"\ncourses = []\n',
        "fractions-zero": good.replace('name = "prior"', 'name = "prior"\nfractions = 0'),
        "fractions-negative": good.replace('name = "prior"', 'name = "prior"\nfractions = -5'),
        "fractions-float": good.replace('name = "prior"', 'name = "prior"\nfractions = 1.5'),
        "fractions-text": good.replace('name = "prior"', 'name = "prior"\nfractions = "35"'),
        "fractions-bool": good.replace('name = "prior"', 'name = "prior"\nfractions = true'),
        "end-before-start": good.replace("end_date = 2022-05-06", "end_date = 2022-01-06"),
        "courses-swapped": 'id = "x"\nconstraints = "tiny.toml"\n[[courses]]' + new + "[[courses]]" + prior,
        "courses-overlap": good.replace("start_date = 2024-01-15", "start_date = 2022-04-15"),
        "date-invalid": good.replace("start_date = 2024-01-15", 'start_date = "2024-13-45"'),
        "date-datetime": good.replace("start_date = 2024-01-15", "start_date = 2024-01-15T08:00:00"),
        "path-missing": good.replace('path = "course1"', 'path = "course9"'),
        "path-up-missing": good.replace('path = "course1"', 'path = "../../../../../../nowhere/course1"'),
        "path-is-file": good.replace('path = "course1"', 'path = "course1/dose.dcm"'),
        "path-symlink-loop": good.replace('path = "course1"', 'path = "loop"'),
        "path-empty": good.replace('path = "course1"', 'path = ""'),
        "path-nul": good.replace('path = "course1"', 'path = "course1\\u0000"'),
        "path-too-long": good.replace('path = "course1"', f'path = "{"x" * 5000}"'),
        "registration-missing": good.replace('registration = "course2/reg.dcm"', 'registration = "course2/none.dcm"'),
        "registration-is-dose": good.replace('registration = "course2/reg.dcm"', 'registration = "course2/dose.dcm"'),
        "registration-loop": good.replace('registration = "course2/reg.dcm"', 'registration = "loop"'),
        "structure-set-is-dose": good.replace(
            'schedule = "daily"', 'schedule = "daily"\nstructure_set = "course2/dose.dcm"'
        ),
        "unknown-key": good.replace('schedule = "daily"', 'schedule = "daily"\nfractoins = 5'),
        "unknown-top-key": 'pateint = "x"\n' + good,
        "unknown-clinical-key": good.replace("resection = false", "resection = false\nsmoker = true"),
        "schedule-unknown": good.replace('schedule = "daily"', 'schedule = "weekly"'),
        "recovery-unknown": 'recovery_model = "magic"\n' + good,
        "constraints-unknown": good.replace('constraints = "tiny.toml"', 'constraints = "no-such-set"'),
        "constraints-int": good.replace('constraints = "tiny.toml"', "constraints = 3"),
        "structures-int": good + '\n[structures]\n"SpinalCord" = 3\n',
        "clinical-text": good.replace("resection = false", 'resection = "no"'),
        "name-duplicate": good.replace('name = "new"', 'name = "prior"'),
        "same-course-twice": good.replace('path = "course1"', 'path = "course2"'),
    }
    same = {
        "byte-order-mark": b"\xef\xbb\xbf" + good.encode(),
        "crlf": good.replace("\n", "\r\n"),
        "comment": "# a comment\n" + good.replace("[clinical]", "# another\n[clinical]"),
        "dot-dot-same-folder": good.replace('path = "course1"', 'path = "course2/../course1"'),
    }
    cases = [
        FuzzCase(
            "case-file",
            f"sbrt:case.toml-{label}",
            "sbrt",
            {"case.toml": text if isinstance(text, bytes) else text.encode()},
            READERS["sbrt"]["case.toml"],
            "refuse",
            links={"loop": "loop"} if "loop" in label else {},
        )
        for label, text in refuse.items()
    ]
    cases += [
        FuzzCase(
            "case-file",
            f"sbrt:case.toml-{label}",
            "sbrt",
            {"case.toml": text if isinstance(text, bytes) else text.encode()},
            READERS["sbrt"]["case.toml"],
            "same",
        )
        for label, text in same.items()
    ]
    return cases


def constraint_sets(bases: dict[str, Path]) -> list[FuzzCase]:
    """The baseline constraint set with every kind of wrong value, and broken extends chains."""
    good = (bases["sbrt"] / "tiny.toml").read_text()
    header = 'name = "fz"\nversion = "1"\ntitle = "fz"\n'

    def sub(old: str, new: str) -> str:
        assert old in good, old
        return good.replace(old, new, 1)

    refuse: dict[str, str | bytes | dict[str, str]] = {
        "not-utf8": good.encode() + b"# caf\xe9\n",
        "deep-nesting": good + "\nx = " + "[" * 3000 + "]" * 3000 + "\n",
        "empty-file": "",
        "empty-set": header,
        "no-valid-entry": header
        + '[[constraints]]\nid = "x"\norgan = "SpinalCord"\nmetric = "D95"\npriority = "hard"\nlimit_gy = 50.0\n',
        "name-int": sub('name = "fuzz-tiny"', "name = 3"),
        "sources-int": sub("[sources.nieder2006]", "sources = 3\n[other]"),
        "defaults-text": sub(
            '[defaults]\nrecovery_model = "none"', 'defaults_x = 1\n[defaults]\nrecovery_model = ["none"]'
        ),
        "alpha-beta-zero": sub("gy = 2.0", "gy = 0"),
        "alpha-beta-huge": sub("gy = 2.0", "gy = 1e9"),
        "alpha-beta-tiny": sub("gy = 2.0", "gy = 1e-9"),
        "alpha-beta-nan": sub("gy = 2.0", "gy = nan"),
        "alpha-beta-text": sub("gy = 2.0", 'gy = "2"'),
        "alpha-beta-unknown-key": sub("gy = 2.0", "gy = 2.0\ngy_typo = 3"),
        "alpha-beta-row-int": sub(
            "[[defaults.alpha_beta]]", "[[defaults.alpha_beta]]\norgans = 3\n[[defaults.alpha_beta]]"
        ),
        "limit-nan": sub("limit_gy = 67.75", "limit_gy = nan"),
        "limit-inf": sub("limit_gy = 67.75", "limit_gy = inf"),
        "limit-zero": sub("limit_gy = 67.75", "limit_gy = 0"),
        "limit-negative": sub("limit_gy = 67.75", "limit_gy = -67.75"),
        "limit-text": sub("limit_gy = 67.75", 'limit_gy = "67.75"'),
        "warn-above-limit": sub("warn_gy = 60.0", "warn_gy = 70.0"),
        "metric-unknown": sub('metric = "Dmax"', 'metric = "Dfoo"'),
        "metric-no-unit": sub('metric = "Dmax"', 'metric = "D95"'),
        "metric-int": sub('metric = "Dmax"', "metric = 3"),
        "source-list": sub('source = "nieder2006"\n', 'source = ["nieder2006"]\n'),
        "priority-unknown": sub('priority = "hard"', 'priority = "urgent"'),
        "entry-unknown-key": sub('priority = "hard"', 'priority = "hard"\nlimit = 3'),
        "id-duplicate": sub('id = "carotid-dmax"', 'id = "spinalcord-dmax"'),
        "extends-missing": header + 'extends = "nowhere.toml"\n',
        "extends-self": {"tiny.toml": good.replace('name = "fuzz-tiny"', 'name = "fuzz-tiny"\nextends = "tiny.toml"')},
        "extends-cycle": {"tiny.toml": header + 'extends = "b.toml"\n', "b.toml": header + 'extends = "tiny.toml"\n'},
        "extends-chain-1200": {
            "tiny.toml": header + 'extends = "chain/1.toml"\n',
            **{f"chain/{i}.toml": header + f'extends = "{i + 1}.toml"\n' for i in range(1, 1200)},
            "chain/1200.toml": good,
        },
        "extends-loop-link": {"tiny.toml": header + 'extends = "loop.toml"\n'},
    }
    cases = []
    for label, content in refuse.items():
        files = content if isinstance(content, dict) else {"tiny.toml": content}
        cases.append(
            FuzzCase(
                "constraint-set",
                f"sbrt:tiny.toml-{label}",
                "sbrt",
                {k: v if isinstance(v, bytes) else v.encode() for k, v in files.items()},
                READERS["sbrt"]["tiny.toml"],
                "refuse",
                links={"loop.toml": "loop.toml"} if "loop" in label else {},
            )
        )
    for label, text in {"comment": "# note\n" + good, "extends-chain-16": None}.items():
        files = (
            {"tiny.toml": text}
            if text is not None
            else {
                "tiny.toml": header + 'extends = "c1.toml"\n',
                **{f"c{i}.toml": header + f'extends = "c{i + 1}.toml"\n' for i in range(1, 15)},
                "c15.toml": good,
            }
        )
        cases.append(
            FuzzCase(
                "constraint-set",
                f"sbrt:tiny.toml-{label}",
                "sbrt",
                {k: v.encode() for k, v in files.items()},
                READERS["sbrt"]["tiny.toml"],
                "same",
            )
        )
    return cases


RANDOM_SHARES = {"truncate": 0.4, "bytes-inert": 0.25, "bytes-any": 0.35}


def build_corpus(bases: dict[str, Path], seed: int = 20261126, random_cases: int = 80) -> list[FuzzCase]:
    """Every targeted case plus ``random_cases`` random ones (truncations, byte mutations),
    the same list for the same seed and data."""
    rng = random.Random(seed)
    counts = {family: round(random_cases * share) for family, share in RANDOM_SHARES.items()}
    cases = (
        truncations(bases, rng, counts["truncate"])
        + inert_bytes(bases, rng, counts["bytes-inert"])
        + any_bytes(bases, rng, counts["bytes-any"])
        + missing_tags(bases)
        + scalings(bases)
        + huge_grids(bases)
        + contours(bases)
        + registrations(bases)
        + case_files(bases)
        + constraint_sets(bases)
    )
    names = [c.name for c in cases]
    duplicates = {n for n in names if names.count(n) > 1}
    return [c for c in cases if c.name not in duplicates] + _first_of(cases, duplicates)


def _first_of(cases: list[FuzzCase], names: set[str]) -> list[FuzzCase]:
    """One case per repeated name (two random draws can coincide)."""
    kept: dict[str, FuzzCase] = {}
    for case in cases:
        if case.name in names:
            kept.setdefault(case.name, case)
    return list(kept.values())
