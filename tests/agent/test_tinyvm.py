"""The tinyvm image's pure parts: unpacking a bzImage, ELF notes, module order, the initramfs;
and the real build from the host's Debian kernel (linux-image-cloud-amd64)."""

from __future__ import annotations

import gzip
import lzma
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from arktos.agent import kernelimage, tinyvm


def elf_with_notes(notes: list[tuple[bytes, int, bytes]]) -> bytes:
    """A minimal ELF64 LE file whose one program header is a PT_NOTE segment."""
    seg = b""
    for owner, kind, desc in notes:
        name = owner + b"\0"
        seg += struct.pack("<III", len(name), len(desc), kind) + name + b"\0" * (-len(name) % 4)
        seg += desc + b"\0" * (-len(desc) % 4)
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x20, 64)
    struct.pack_into("<HH", header, 0x36, 56, 1)
    phdr = struct.pack("<IIQQQQQQ", 4, 4, 64 + 56, 0, 0, len(seg), len(seg), 4)
    return bytes(header) + phdr + seg


def bzimage(payload: bytes) -> bytes:
    """A fake bzImage: setup header (1 setup sector) then `payload` at offset 0."""
    image = bytearray(1024)
    image[0x1F1] = 1
    image[0x202:0x206] = b"HdrS"
    struct.pack_into("<II", image, 0x248, 0, len(payload))
    return bytes(image) + payload


def test_pvh_note_detection() -> None:
    assert kernelimage.has_pvh_entry(elf_with_notes([(b"Xen", 6, b"linux"),
                                                     (b"Xen", 18, b"\0" * 4)]))
    assert not kernelimage.has_pvh_entry(elf_with_notes([(b"GNU", 18, b"x")]))
    with pytest.raises(kernelimage.KernelError):
        kernelimage.elf_notes(b"MZ" + b"\0" * 100)


@pytest.mark.parametrize("compress", [
    lambda b: gzip.compress(b),
    lambda b: lzma.compress(b, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)
    + struct.pack("<I", len(b)),
])
def test_extract_vmlinux(compress: object) -> None:
    elf = elf_with_notes([(b"Xen", 18, b"\0" * 4)]) * 3
    out = kernelimage.extract_vmlinux(bzimage(compress(elf)))  # type: ignore[operator]
    assert out == elf


def test_extract_lz4_legacy() -> None:
    import lz4.block as lz4_block  # type: ignore[import-not-found,unused-ignore]

    elf = elf_with_notes([]) + bytes(range(256)) * 100
    blocks = [lz4_block.compress(elf[:3000], store_size=False),
              lz4_block.compress(elf[3000:], store_size=False)]
    payload = struct.pack("<I", kernelimage.LZ4_LEGACY_MAGIC) + b"".join(
        struct.pack("<I", len(b)) + b for b in blocks) + struct.pack("<I", len(elf))
    assert kernelimage.extract_vmlinux(bzimage(payload)) == elf


def test_bad_kernels() -> None:
    with pytest.raises(kernelimage.KernelError):
        kernelimage.extract_vmlinux(b"garbage" * 200)
    with pytest.raises(kernelimage.KernelError):
        kernelimage.extract_vmlinux(bzimage(b"\x99\x98unknown-compression"))
    with pytest.raises(kernelimage.KernelError):
        kernelimage.extract_vmlinux(bzimage(gzip.compress(b"not an elf")))


def test_load_order() -> None:
    deps = {"virtio_net": ["virtio", "net_failover"], "net_failover": ["failover"],
            "failover": [], "virtio": ["virtio_ring"], "virtio_ring": [], "isofs": []}
    order = kernelimage.load_order(["virtio_net", "isofs", "builtin_one"], deps.get)
    assert order == ["virtio_ring", "virtio", "failover", "net_failover", "virtio_net",
                     "isofs"]
    assert kernelimage.module_name(Path("a/virtio-rng.ko")) == "virtio_rng"


def test_initramfs_content(tmp_path: Path) -> None:
    if shutil.which("cpio") is None:
        pytest.fail("cpio is missing: apt-get install cpio")
    archive = tinyvm.initramfs(b"BUSYBOX", ["/bin/sh", "/sbin/poweroff", "/bin/busybox"],
                               {"virtio": b"KO1", "virtio_net": b"KO2"})
    (tmp_path / "x").mkdir()
    subprocess.run(["cpio", "-idm", "--quiet", "--no-absolute-filenames"],
                   input=gzip.decompress(archive), cwd=tmp_path / "x", check=True)
    root = tmp_path / "x"
    assert (root / "bin/busybox").read_bytes() == b"BUSYBOX"
    assert (root / "init").read_text() == tinyvm.INIT and (root / "init").stat().st_mode & 0o111
    assert (root / "sbin/poweroff").is_symlink()
    assert (root / "lib/modules/load").read_text() == "virtio\nvirtio_net\n"
    assert (root / "lib/modules/virtio_net.ko").read_bytes() == b"KO2"
    assert (root / "etc/acpi/PWRF/00000080").read_text() == tinyvm.POWER_BUTTON


def test_build_from_the_host_kernel(tmp_path: Path) -> None:
    """The real build (idempotent): a PVH vmlinux, a gzip initrd, a cmdline."""
    try:
        image = tinyvm.ensure_tinyvm(tmp_path)
    except FileNotFoundError as e:
        pytest.fail(f"{e}")
    kernel = (image / "kernel").read_bytes()
    assert kernel.startswith(b"\x7fELF") and kernelimage.has_pvh_entry(kernel)
    assert (image / "initrd").read_bytes()[:2] == b"\x1f\x8b"
    stamp = (image / "initrd").stat().st_mtime_ns
    assert tinyvm.ensure_tinyvm(tmp_path) == image
    assert (image / "initrd").stat().st_mtime_ns == stamp
