"""The offline image `localhost/busybox:latest`, built from Debian's `busybox-static`: a root
filesystem holding `/bin/busybox` and a symlink per applet (`/bin/sh`, `sleep`, `echo`,
`httpd`, `nc`, ...), imported into Podman with the default command `sh`. No registry needed.
"""

from __future__ import annotations

import fcntl
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

from arktos.agent.podman import podman_env

BUSYBOX_IMAGE = "localhost/busybox:latest"
BUSYBOX = Path("/bin/busybox")
DIRS = {"bin": 0o755, "sbin": 0o755, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755,
        "etc": 0o755, "root": 0o700, "tmp": 0o1777, "var": 0o755, "var/tmp": 0o1777,
        "proc": 0o555, "sys": 0o555, "dev": 0o755, "home": 0o755}
FILES = {"etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n"
                       b"nobody:x:65534:65534:nobody:/home:/bin/false\n",
         "etc/group": b"root:x:0:\nnobody:x:65534:\n"}


def rootfs_tar(busybox: bytes, applets: list[str]) -> bytes:
    """A tar of the root filesystem: `busybox` at /bin/busybox, `applets` (paths relative to
    /, as `busybox --list-full` prints them) symlinked to it. Pure."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, mode in DIRS.items():
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        for name, content in {**FILES, "bin/busybox": busybox}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), 0o755 if name == "bin/busybox" else 0o644
            tar.addfile(info, io.BytesIO(content))
        for applet in sorted(set(applets) - {"bin/busybox"}):
            info = tarfile.TarInfo(applet.strip("/"))
            info.type, info.linkname = tarfile.SYMTYPE, "/bin/busybox"
            tar.addfile(info)
    return out.getvalue()


def _podman(env: dict[str, str], *args: str, data: bytes | None = None
            ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["podman", *args], env=env, input=data, capture_output=True,
                          timeout=120, check=False)


def ensure_busybox_image(root: Path, image: str = BUSYBOX_IMAGE,
                         busybox: Path = BUSYBOX) -> str:
    """Import `image` into Podman (the storage of a `PodmanRuntime` over `root`) unless it is
    there; returns its name. Idempotent and safe across processes (a file lock in the temp
    dir). Blocking (runs the podman CLI): from async code, call it in a thread."""
    env = podman_env(root)
    lock_path = Path(tempfile.gettempdir()) / "arktos-busybox-image.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _podman(env, "image", "exists", image).returncode == 0:
            return image
        applets = subprocess.run([str(busybox), "--list-full"], capture_output=True,
                                 check=True, timeout=30).stdout.decode().split()
        tar = rootfs_tar(busybox.read_bytes(), applets)
        done = _podman(env, "import", "--change", 'CMD ["sh"]', "-", image, data=tar)
        if done.returncode != 0:
            raise RuntimeError(f"podman import {image}: {done.stderr.decode(errors='replace')}")
    return image
