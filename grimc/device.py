"""Where a built harness runs: this machine (natively or under qemu) or a remote device.

    --device ssh://[user@]host[:port][/work/dir]    a board or phone reachable by ssh
    --device cmd:/path/to/runner                    any other transport (adb, a lab queue)

A run is staged in a local directory holding the executable, the weight blob
and the inputs (`in/`); the harness is started inside a copy of that directory
with paths relative to it, and writes its outputs to `out/`, which must come
back into the stage. The ssh device does this with one `tar` pipe each way
over the user's ssh (its config, keys and agent; `GRIMC_SSH` replaces the
`ssh` command, e.g. `ssh -F my_config`). A command runner is called as

    RUNNER STAGE EXE ARG...

and must run `./EXE ARG...` with a copy of STAGE as the working directory on
the device, print the program's stdout, exit with its status and copy the
device's `out/` back to STAGE/out (examples/runners/ has one for adb and one
that runs in a scratch directory of this machine).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grimc.errors import GrimcError


class DeviceError(GrimcError):
    """A device could not be reached, or a program failed on it."""


_SSH = re.compile(r"ssh://(?:(?P<user>[^@/:\s]+)@)?(?P<host>[^@/:\s]+)(?::(?P<port>\d+))?(?P<dir>/\S*)?")


@dataclass(frozen=True)
class Device(ABC):
    """A remote device, described once by its `--device` text (also its tuning-database key)."""

    spec: str

    @abstractmethod
    def run(self, stage: Path, exe: str, args: Sequence[str], timeout: float) -> str:
        """Run `./exe args` in a copy of `stage` on the device; its out/ comes back. Stdout."""

    @abstractmethod
    def check(self) -> None:
        """Raise DeviceError now if the device cannot be reached (before minutes of building)."""


@dataclass(frozen=True)
class SshDevice(Device):
    destination: str
    port: int | None
    workdir: str | None

    def _ssh(self) -> list[str]:
        ssh = shlex.split(os.environ.get("GRIMC_SSH", "ssh"))
        port = ["-p", str(self.port)] if self.port else []
        return [*ssh, "-o", "BatchMode=yes", *port, self.destination]

    def _call(self, remote: str, timeout: float, stdin: bytes = b"") -> bytes:
        try:
            proc = subprocess.run([*self._ssh(), remote], input=stdin, capture_output=True,
                                  timeout=timeout, check=False)
        except FileNotFoundError as exc:
            raise DeviceError(f"{self.spec}: {exc.filename} not found (install openssh-client)") from None
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{self.spec}: no answer within {timeout:g} s") from None
        if proc.returncode == 255:  # ssh's own failure, not the program's
            reason = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["ssh failed"]
            raise DeviceError(f"{self.spec}: {reason[0]}")
        if proc.returncode != 0:
            reason = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
            raise DeviceError(f"{self.spec}: exit status {proc.returncode}: {reason[0]}")
        return proc.stdout

    def check(self) -> None:
        self._call("true", timeout=30)

    def run(self, stage: Path, exe: str, args: Sequence[str], timeout: float) -> str:
        base = self.workdir or "/tmp"
        remote = shlex.quote(f"{base.rstrip('/')}/grimc-{uuid.uuid4().hex[:12]}")
        tar = subprocess.run(["tar", "-C", str(stage), "-cf", "-", "."], capture_output=True,
                             check=True)
        command = shlex.join([f"./{exe}", *args])
        script = (f"mkdir -p {remote} && cd {remote} && tar -xf - && mkdir -p out && "
                  f"{{ {command} > stdout.txt; status=$?; tar -cf - out stdout.txt; "
                  f"cd / && rm -rf {remote}; exit $status; }}")
        try:
            back = self._call(script, timeout, tar.stdout)
        except DeviceError as err:
            raise DeviceError(f"{err} (running {exe})") from None
        subprocess.run(["tar", "-C", str(stage), "-xf", "-"], input=back, check=True)
        return (stage / "stdout.txt").read_text(errors="replace")


@dataclass(frozen=True)
class CommandDevice(Device):
    runner: str

    def check(self) -> None:
        """Nothing cheap to try: a runner's transport is its own; its first run reports."""

    def run(self, stage: Path, exe: str, args: Sequence[str], timeout: float) -> str:
        (stage / "out").mkdir(exist_ok=True)
        try:
            proc = subprocess.run([self.runner, str(stage), exe, *args], capture_output=True,
                                  text=True, errors="replace", timeout=timeout, check=False)
        except OSError as exc:
            raise DeviceError(f"{self.spec}: cannot start the runner: {exc.strerror}") from None
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{self.spec}: {exe} did not finish within {timeout:g} s") from None
        if proc.returncode != 0:
            reason = proc.stderr.strip().splitlines()[-1:] or ["no message"]
            raise DeviceError(f"{self.spec}: {exe}: exit status {proc.returncode}: {reason[0]}")
        return proc.stdout


def parse_device(text: str) -> Device:
    """The device a `--device` / `--runner` text names; DeviceError says what is wrong."""
    if text.startswith("ssh://"):
        match = _SSH.fullmatch(text)
        if not match:
            raise DeviceError(f"--device {text!r}: expected ssh://[user@]host[:port][/dir]")
        user, host = match.group("user"), match.group("host")
        port = int(match.group("port")) if match.group("port") else None
        if port is not None and not 0 < port < 65536:
            raise DeviceError(f"--device {text!r}: port {port} is out of range")
        destination = f"{user}@{host}" if user else host
        return SshDevice(text, destination, port, match.group("dir"))
    if text.startswith("cmd:"):
        runner = Path(text[4:]).expanduser()
        if not runner.is_file() or not os.access(runner, os.X_OK):
            raise DeviceError(f"--device {text!r}: {runner} is not an executable file")
        return CommandDevice(text, str(runner.resolve()))
    raise DeviceError(f"--device {text!r}: expected ssh://[user@]host[:port][/dir] or cmd:RUNNER")
