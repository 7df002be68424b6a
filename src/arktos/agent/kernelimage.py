"""Linux kernel files for direct boot (`qemu -kernel`): the uncompressed ELF `vmlinux` out of a
`bzImage` (`vmlinuz`), whether it can boot through PVH, and which modules a module needs.
All pure (bytes in, bytes out) except `find_kernel`, which looks at the file system.

A bzImage's setup header says where its compressed payload is (`payload_offset`,
`payload_length`); the payload's first bytes say how it is compressed. gzip, xz, lzma and
bzip2 come with Python; LZ4 (Debian's kernels) needs the `lz4` package, zstd `zstandard`.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

LZ4_LEGACY_MAGIC = 0x184C2102
LZ4_BLOCK_MAX = 8 << 20
"""The kernel's LZ4 (legacy frame) blocks decompress to at most 8 MiB each."""
PVH_NOTE = 18
"""XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit PVH entry point QEMU boots an ELF kernel through."""


class KernelError(ValueError):
    """The file is not a kernel this module can unpack."""


def bzimage_payload(image: bytes) -> bytes:
    """The compressed kernel inside a bzImage (its last 4 bytes: the decompressed size)."""
    if len(image) < 0x250 or image[0x202:0x206] != b"HdrS":
        raise KernelError("not a bzImage (no HdrS setup header)")
    setup_sects = image[0x1F1] or 4
    offset, length = struct.unpack_from("<II", image, 0x248)
    start = (setup_sects + 1) * 512 + offset
    if not length or start + length > len(image):
        raise KernelError("bzImage payload out of range")
    return image[start:start + length]


def _lz4_legacy(data: bytes) -> bytes:
    import lz4.block  # type: ignore[import-not-found,unused-ignore]

    out, pos = [], 4
    while pos + 4 <= len(data) - 4:
        (size,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if size == LZ4_LEGACY_MAGIC:
            continue
        out.append(lz4.block.decompress(data[pos:pos + size], uncompressed_size=LZ4_BLOCK_MAX))
        pos += size
    return b"".join(out)


def _zstd(data: bytes) -> bytes:
    try:
        import zstandard  # type: ignore[import-not-found,unused-ignore]
    except ImportError as e:
        raise KernelError("zstd-compressed kernel: pip install zstandard") from e
    (size,) = struct.unpack("<I", data[-4:])
    return bytes(zstandard.ZstdDecompressor().decompress(data[:-4], max_output_size=size))


def decompress_payload(payload: bytes) -> bytes:
    """The kernel (an ELF `vmlinux`) out of a bzImage's payload, by its compression magic."""
    if payload.startswith(b"\x1f\x8b"):
        out = zlib.decompressobj(wbits=31).decompress(payload)
    elif payload.startswith(b"\xfd7zXZ\x00"):
        out = lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(payload)
    elif payload.startswith(b"\x5d\x00\x00"):
        out = lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(payload)
    elif payload.startswith(b"BZh"):
        out = bz2.BZ2Decompressor().decompress(payload)
    elif payload.startswith(struct.pack("<I", LZ4_LEGACY_MAGIC)):
        out = _lz4_legacy(payload)
    elif payload.startswith(b"\x28\xb5\x2f\xfd"):
        out = _zstd(payload)
    else:
        raise KernelError(f"unknown kernel compression (magic {payload[:4].hex()})")
    if not out.startswith(b"\x7fELF"):
        raise KernelError("decompressed kernel is not an ELF file")
    return out


def extract_vmlinux(image: bytes) -> bytes:
    """The uncompressed ELF kernel inside a bzImage."""
    return decompress_payload(bzimage_payload(image))


def elf_notes(elf: bytes) -> list[tuple[bytes, int, bytes]]:
    """(owner, type, description) of every note in a 64-bit little-endian ELF's PT_NOTE
    segments."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise KernelError("not a 64-bit little-endian ELF file")
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    notes = []
    for i in range(phnum):
        p_type, _, p_offset = struct.unpack_from("<IIQ", elf, phoff + i * phentsize)
        p_filesz, = struct.unpack_from("<Q", elf, phoff + i * phentsize + 0x20)
        if p_type == 4:
            notes += _notes(elf[p_offset:p_offset + p_filesz])
    return notes


def _notes(seg: bytes) -> list[tuple[bytes, int, bytes]]:
    out, pos = [], 0
    while pos + 12 <= len(seg):
        namesz, descsz, kind = struct.unpack_from("<III", seg, pos)
        name_end = pos + 12 + namesz
        desc = name_end + (-namesz % 4)
        out.append((seg[pos + 12:name_end].rstrip(b"\0"), kind, seg[desc:desc + descsz]))
        pos = desc + descsz + (-descsz % 4)
    return out


def has_pvh_entry(elf: bytes) -> bool:
    """Whether QEMU can boot this vmlinux directly (a Xen PHYS32_ENTRY note: PVH)."""
    return any(owner == b"Xen" and kind == PVH_NOTE for owner, kind, _ in elf_notes(elf))


def modinfo(ko: bytes) -> dict[str, str]:
    """The `.modinfo` strings (`depends`, `name`, ...) of a kernel module (ELF64 LE)."""
    shoff, = struct.unpack_from("<Q", ko, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ko, 0x3A)

    def section(i: int) -> tuple[int, bytes]:
        name, _, _, _, off, size = struct.unpack_from("<IIQQQQ", ko, shoff + i * shentsize)
        return name, ko[off:off + size]

    names = section(shstrndx)[1]
    for i in range(shnum):
        name_off, data = section(i)
        if names[name_off:names.index(b"\0", name_off)] == b".modinfo":
            pairs = (s.decode(errors="replace").partition("=")
                     for s in data.split(b"\0") if b"=" in s)
            return {k: v for k, _, v in pairs}
    return {}


def module_name(path: Path) -> str:
    """A module's name as `depends=` spells it (`virtio-rng.ko` -> `virtio_rng`)."""
    return path.name.removesuffix(".ko").replace("-", "_")


def load_order(wanted: list[str], depends: Callable[[str], list[str] | None]) -> list[str]:
    """`wanted` modules and their dependencies (`depends(name)`: None for a module that is
    built in or absent, which is left out), each after what it depends on."""
    order: list[str] = []

    def visit(name: str) -> None:
        deps = None if name in order else depends(name)
        if deps is None:
            return
        for dep in deps:
            visit(dep)
        order.append(name)

    for name in wanted:
        visit(name)
    return order


def find_kernel(root: Path = Path("/")) -> tuple[Path, Path]:
    """The newest kernel installed under `root` (`boot/vmlinuz-<release>`, preferring
    `-cloud-` ones) and its modules directory `lib/modules/<release>`. Raises
    FileNotFoundError naming the Debian package to install."""
    found = []
    for vmlinuz in (root / "boot").glob("vmlinuz-*"):
        release = vmlinuz.name.removeprefix("vmlinuz-")
        modules = root / "lib" / "modules" / release
        if (modules / "kernel").is_dir():
            found.append(("-cloud-" in release, vmlinuz.stat().st_mtime, vmlinuz, modules))
    if not found:
        raise FileNotFoundError(
            f"no kernel in {root / 'boot'}: apt-get install linux-image-cloud-amd64")
    _, _, vmlinuz, modules = max(found)
    return vmlinuz, modules
