"""Real photographs from the Debian package ``gcompris-qt-data``, read out of its Qt resource bundles.

The educational suite keeps its pictures in ``/usr/share/gcompris-qt/rcc/<activity>.rcc``; six activities
hold real photographs (mostly from Wikimedia Commons, lossy WebP).  The photos below were chosen by eye
from contact sheets of every image with a short side of at least 400 px: the drawings, icons and the
paintings (the Van Gogh pictures of ``details``, whose backgrounds also have the pieces cut out) are left
out, and one 1961 black-and-white aerial photo (Castle Clinton) is kept as a *real old* photo, not as a
clean one.  Each activity ships a ``README`` in Debian copyright style (``Copyright:``, ``License:``,
``Source:``, ``Files:``); the licence, author and source of every photo are taken from it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from pathlib import Path

from oldphoto.synth.corpus import CorpusError, load_image_bytes
from oldphoto.synth.rcc import RccError, RccFile

PACKAGE = "gcompris-qt-data"
RCC_DIR = "usr/share/gcompris-qt/rcc"
PACKAGE_LICENCE = "GPL-3+ (gcompris-qt-data)"


def _names(prefix: str, names: str) -> list[str]:
    return [prefix + n + ".webp" for n in names.split()]


# activity -> photos, relative to gcompris/src/activities/<activity>/resource/
PHOTOS: dict[str, list[str]] = {
    "erase": _names("", """alpaca bee butterfly calf camels caterpillar chamaeleon cheetah crab dolphin
        flying_fox gibbon giraffe goat gorilla gosling heron horse kingfisher kitten long_nosed_monkey
        macaque meerkats northern_harrier nubian_ibex penguin pika red_panda rhinoceros spoonbills squirrel
        swans toucan"""),
    "clickgame": _names("", "sea1 sea2 sea3 sea4 sea5 sea6"),
    "explore_farm_animals": _names("animals/", "cat chicken cow dog duck horse owl pig sheep"),
    "explore_world_animals": _names("animals/", """bison chameleon crocodile dragon giraffe hedgehog jaguar
        kangaroo koala lemur moose narwhal panda polar_bear scarlet_macaw"""),
    "explore_world_music": _names("music/", "africa america australia ireland italy japan mexico middleeast "
                                            "orchestra"),
    "explore_monuments": (
        _names("egypt/", "bentPyramid greatPyramidOfGiza meidumPyramid redPyramid")
        + _names("france/", """arlesAmphitheater chateaudeChambord chateaudeChenonceau citedeCarcassonne
            eiffelTower montStMichel palaisdesPapes pontduGard reimsCathedral rocamadour""")
        + _names("germany/", """aulaPalatina berlinCathedral brandenburgGate neuschwansteinCastle
            schwerinPalace trierImperialBaths wormsCathedral""")
        + _names("india/", """ajantaCave charminar gatewayofIndia goldenTemple greatStupa hawaMahal
            konarkSunTemple mysorePalace qutubMinar rangGhar victoriaMemorial""")
        + _names("usa/", """canyondeChelly castillodeSanMarcos fortSumter georgeWashingtonBirthplace
            lincolnMemorial mountRushmore navajo statueofLiberty""")
        + _names("wonders/", "chichenItza christTheRedeemer colosseum greatWallofChina machuPicchu petra "
                             "tajMahal")),
}
OLD_PHOTOS: dict[str, list[str]] = {"explore_monuments": ["usa/castleClinton.webp"]}
# names misspelt in a README (upstream typo) -> the name used there
CREDIT_ALIASES = {"germany/aulaPalatina.webp": "germany/audaPalatina.webp"}


def parse_credits(text: str) -> dict[str, dict[str, str]]:
    """File name -> {"copyright", "license", "source"} from a Debian-copyright-style README.

    Paragraphs are separated by blank lines; ``Files:`` lists names on its line and/or the lines below
    it (until the next field)."""
    out: dict[str, dict[str, str]] = {}
    for para in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        files: list[str] = []
        current = None
        for raw in para.split("\n"):
            line = raw.strip()
            if not line:
                continue
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() in ("copyright", "license", "source", "files", "comments",
                                                "comment"):
                current = key.strip().lower()
                if current == "files":
                    files += value.split()
                else:
                    fields[current] = value.strip()
            elif current == "files":
                files += line.split()
            elif current:
                fields[current] = (fields[current] + " " + line).strip()
        for f in files:
            out[f] = {k: fields.get(k, "") for k in ("copyright", "license", "source")}
    return out


def photo_licence(rcc: RccFile, activity: str, rel: str) -> str:
    """"<licence> (<author>; <source>)" from the nearest README at or above the photo's folder."""
    root = f"gcompris/src/activities/{activity}/resource"
    folder = posixpath.dirname(rel)
    while True:
        readme = posixpath.join(root, folder, "README") if folder else f"{root}/README"
        if readme in rcc:
            credits = parse_credits(rcc.read(readme).decode("utf-8", errors="replace"))
            name = posixpath.relpath(rel, folder) if folder else rel
            entry = credits.get(name) or credits.get(CREDIT_ALIASES.get(name, ""))
            if entry and entry["license"]:
                extra = "; ".join(v for v in (entry["copyright"], entry["source"]) if v)
                return f"{entry['license']} ({extra})" if extra else entry["license"]
        if not folder:
            return PACKAGE_LICENCE + ", no per-file credit"
        folder = posixpath.dirname(folder)


def gcompris_photos(root: Path, with_old: bool = True, log: Callable[[str], None] = print) -> list:
    """:class:`~oldphoto.synth.sources.Found` photos from an unpacked ``gcompris-qt-data`` (``dpkg -x``)."""
    from oldphoto.synth.sources import Found

    found = []
    wanted = [(a, p, "clean") for a, ps in PHOTOS.items() for p in ps]
    if with_old:
        wanted += [(a, p, "real_old") for a, ps in OLD_PHOTOS.items() for p in ps]
    bundles: dict[str, RccFile] = {}
    for activity, rel, kind in wanted:
        rcc_path = root / RCC_DIR / f"{activity}.rcc"
        try:
            if activity not in bundles:
                bundles[activity] = RccFile(rcc_path)
            rcc = bundles[activity]
        except RccError as exc:
            raise CorpusError(str(exc)) from None
        member = f"gcompris/src/activities/{activity}/resource/{rel}"
        if member not in rcc:
            log(f"warning: {PACKAGE}: {activity}.rcc has no {rel} in this package version; skipped")
            continue
        name = f"{activity}__{posixpath.basename(rel)}"
        origin = f"{PACKAGE}:/{RCC_DIR}/{activity}.rcc:{member}"
        found.append(Found(PACKAGE, name, kind, photo_licence(rcc, activity, rel), origin,
                           lambda r=rcc, m=member, o=origin: load_image_bytes(r.read(m), o)))
    return found
