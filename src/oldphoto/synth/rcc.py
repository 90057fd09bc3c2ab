"""A reader for Qt binary resource bundles (``.rcc``, as made by ``rcc -binary``).

Layout (all integers big-endian):

* header: ``b"qres"``, version (u32: 1, 2 or 3), then the offsets of the tree, the data and the names
  sections (u32 each); version 3 adds a u32 of overall flags;
* tree: fixed-size nodes (14 bytes, 22 from version 2 on: a u64 modification time is appended), node 0 is
  the root directory.  A node is ``name offset`` (u32), ``flags`` (u16: 1 zlib-compressed, 2 directory,
  4 zstd-compressed), then for a directory ``child count`` (u32) and ``index of the first child`` (u32),
  for a file ``country`` (u16), ``language`` (u16) and ``data offset`` (u32);
* names: at ``names + name offset``: length in UTF-16 units (u16), a hash (u32), the UTF-16BE name;
* data: at ``data + data offset``: size (u32) and the bytes; zlib-compressed entries start with the
  uncompressed size (u32) before the zlib stream (``qCompress`` format).

Only reading is supported; zstd entries need the optional ``zstandard`` package.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

COMPRESSED = 0x01
DIRECTORY = 0x02
COMPRESSED_ZSTD = 0x04
MAGIC = b"qres"
MAX_DEPTH = 64  # resource trees are shallow; a deeper one is a loop in a corrupt file


class RccError(ValueError):
    """The file is not a readable Qt resource bundle (the message names the file and the problem)."""


@dataclass(frozen=True)
class RccEntry:
    path: str  # "/"-separated, without a leading slash
    flags: int
    data_offset: int


class RccFile:
    """The files of one ``.rcc`` bundle: ``paths()``, ``read(path)``, iteration over entries."""

    def __init__(self, source: str | Path | bytes) -> None:
        if isinstance(source, bytes):
            self.name, self._buf = "<bytes>", source
        else:
            self.name = str(source)
            try:
                self._buf = Path(source).read_bytes()
            except OSError as exc:
                raise RccError(f"{source}: cannot read ({exc})") from None
        if len(self._buf) < 20 or self._buf[:4] != MAGIC:
            raise RccError(f"{self.name}: not a Qt resource bundle (no 'qres' magic)")
        self.version, self._tree, self._data, self._names = struct.unpack_from(">IIII", self._buf, 4)
        if self.version not in (1, 2, 3):
            raise RccError(f"{self.name}: unsupported rcc format version {self.version}")
        self._node_size = 14 if self.version == 1 else 22
        self._entries: dict[str, RccEntry] = {}
        self._walk(0, "", 0)

    # -- low level
    def _unpack(self, fmt: str, offset: int) -> tuple:
        try:
            return struct.unpack_from(fmt, self._buf, offset)
        except struct.error:
            raise RccError(f"{self.name}: truncated (offset {offset})") from None

    def _name(self, offset: int) -> str:
        (length,) = self._unpack(">H", self._names + offset)
        start = self._names + offset + 6  # u16 length, u32 hash
        raw = self._buf[start:start + 2 * length]
        if len(raw) != 2 * length:
            raise RccError(f"{self.name}: truncated name at {offset}")
        return raw.decode("utf-16-be")

    def _walk(self, index: int, prefix: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise RccError(f"{self.name}: resource tree deeper than {MAX_DEPTH} (corrupt?)")
        base = self._tree + index * self._node_size
        name_offset, flags = self._unpack(">IH", base)
        name = "" if index == 0 else self._name(name_offset)
        if name in (".", "..") or "/" in name:
            raise RccError(f"{self.name}: invalid entry name {name!r}")
        path = f"{prefix}/{name}" if prefix else name
        if flags & DIRECTORY:
            count, first = self._unpack(">II", base + 6)
            if first + count > (len(self._buf) - self._tree) // self._node_size + 1:
                raise RccError(f"{self.name}: directory {path!r} points outside the tree")
            for child in range(first, first + count):
                if child <= index:
                    raise RccError(f"{self.name}: directory {path!r} loops back")
                self._walk(child, path, depth + 1)
        else:
            (data_offset,) = self._unpack(">I", base + 10)
            self._entries[path] = RccEntry(path, flags, data_offset)

    # -- API
    def paths(self) -> list[str]:
        """All file paths, sorted."""
        return sorted(self._entries)

    def __iter__(self) -> Iterator[RccEntry]:
        return iter(self._entries[p] for p in self.paths())

    def __contains__(self, path: str) -> bool:
        return path.lstrip("/") in self._entries

    def read(self, path: str) -> bytes:
        """The (decompressed) content of one file."""
        entry = self._entries.get(path.lstrip("/"))
        if entry is None:
            raise KeyError(f"{self.name}: no entry {path!r}")
        start = self._data + entry.data_offset
        (size,) = self._unpack(">I", start)
        raw = self._buf[start + 4:start + 4 + size]
        if len(raw) != size:
            raise RccError(f"{self.name}: entry {path!r} is truncated")
        if entry.flags & COMPRESSED:
            if size < 4:
                raise RccError(f"{self.name}: entry {path!r}: compressed data too short")
            (expected,) = struct.unpack_from(">I", raw)
            try:
                out = zlib.decompress(raw[4:])
            except zlib.error as exc:
                raise RccError(f"{self.name}: entry {path!r}: bad zlib data ({exc})") from None
            if len(out) != expected:
                raise RccError(f"{self.name}: entry {path!r}: {len(out)} bytes, header says {expected}")
            return out
        if entry.flags & COMPRESSED_ZSTD:
            try:
                import zstandard
            except ImportError:
                raise RccError(f"{self.name}: entry {path!r} is zstd-compressed: pip install zstandard"
                               ) from None
            return zstandard.ZstdDecompressor().decompress(raw, max_output_size=1 << 30)
        return raw
