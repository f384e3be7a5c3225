"""A real ``varnishd`` the suite runs in front of an application, with the shipped VCL.

Plain Python (no pytest), like ``tests/servers.py``.  Varnish comes from Debian's
``varnish`` and ``varnish-modules`` (vmod xkey) packages; without them the tests
that need it fail, naming the packages.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from tests.servers import ROOT, free_port, stop_group, wait_until_accepting

__all__ = ["VCL", "VarnishServer", "varnishd_binary"]

#: The VCL the repository ships; its backend port is replaced by the application's.
VCL = ROOT / "examples" / "varnish" / "default.vcl"

#: Where Debian's varnish-modules puts vmod xkey.
_VMOD_DIRS = ("/usr/lib/x86_64-linux-gnu/varnish/vmods", "/usr/lib/varnish/vmods")


def varnishd_binary() -> str:
    """The path of ``varnishd``; ``RuntimeError`` naming the packages when it or
    vmod xkey is missing."""
    # /usr/sbin is not on every user's PATH.
    found = shutil.which("varnishd") or shutil.which("varnishd", path="/usr/sbin")
    if found is None:
        raise RuntimeError(
            "varnishd not found: install Debian's varnish and varnish-modules "
            "(apt-get install varnish varnish-modules)"
        )
    if not any(Path(d, "libvmod_xkey.so").exists() for d in _VMOD_DIRS):
        raise RuntimeError(
            "vmod xkey not found: install Debian's varnish-modules "
            "(apt-get install varnish varnish-modules)"
        )
    return found


class VarnishServer:
    """One ``varnishd -F`` on a free loopback port, in front of ``backend_port``.

    It runs in a process group of its own, with its own working directory
    (``-n``) under ``directory``, no management port and no jail (the suite
    may run as root, and the jail's user could not read a temporary VCL).
    :meth:`pause` and :meth:`resume` stop and continue its processes (it keeps
    its cache but answers nothing meanwhile); :meth:`stop` and :meth:`start`
    end it and start a new one on the same port (an empty cache).
    """

    def __init__(self, backend_port: int, directory: Path, port: int | None = None) -> None:
        self.binary = varnishd_binary()
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.directory = directory
        self.vcl = directory / "default.vcl"
        self.vcl.write_text(VCL.read_text().replace('"8000"', f'"{backend_port}"'))
        self.log = directory / "varnishd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        command = [
            self.binary,
            "-F",
            "-j",
            "none",
            "-n",
            str(self.directory / "work"),
            "-a",
            f"127.0.0.1:{self.port}",
            "-T",
            "none",
            "-f",
            str(self.vcl),
            "-s",
            "malloc,32m",
            "-p",
            "ban_lurker_sleep=0.01",
        ]
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_accepting(self.process, self.port, self.log, timeout, name="varnishd")

    def pause(self) -> None:
        """SIGSTOP every process of the server: connections queue, nothing answers."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGCONT)  # a paused server cannot stop
            except ProcessLookupError:
                pass
            stop_group(self.process)
            self.process = None
