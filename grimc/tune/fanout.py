"""Fan a tuner's measurement jobs out over a Ray cluster (`grimc tune --ray`).

Ray is an optional extra (`pip install 'grimc[ray]'`); nothing else imports
it. Workers share no filesystem with the tuner: a job carries its candidate's
sources and weight blob (and the inputs), and brings back a cost and outputs or
a built executable. Candidates are still generated here and their outputs
checked here against the default's (grimc.tune.measure), so the search decides
exactly as it does serially.

- `icount` (aarch64 under qemu): one job per distinct candidate builds it,
  runs it under qemu and counts its kernel's instructions. Counts are exact:
  any worker may run any job, and a fan-out gives the serial run's costs,
  winner and record.
- `time_ms` on a remote device (grimc.device): builds go to any worker; the
  runs on the device (the check run, then the interleaved rounds of a batch)
  are jobs that need the custom resource `grimc-device:<spec>` (one unit), so
  one timing at a time runs per device, on the node that declared it (the one
  that reaches the device: `ray start --resources '{"grimc-device:ssh://pi@board": 1}'`).
  A local instance started by `--ray` declares it itself.
- `time_ms` on this machine is refused: timings fanned out over the same cores
  and caches would disturb each other, and other machines' times would be
  recorded under this CPU's key. Builds already run in parallel here (`--jobs`).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grimc.device import Device, parse_device
from grimc.emit.codegen import GeneratedModel
from grimc.errors import GrimcError
from grimc.runner import ExeModel
from grimc.tune.measure import Measurer, Outcome, _build, device_rounds, seeded_inputs
from grimc.tune.tasks import Task

LOCAL = "local"
"""`--ray` without an address: start a Ray instance on this machine for this run."""
RESOURCE = "grimc-device:"


def device_resource(spec: str) -> str:
    """The Ray custom resource a device's timing jobs hold (one unit per device)."""
    return RESOURCE + spec


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast on a `host:port` (or `ray://host:port`) nobody answers: Ray itself keeps
    retrying such an address for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # `auto` and other forms: Ray says what is wrong
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise GrimcError(f"--ray {address}: cannot connect ({exc.strerror or exc})") from None


def import_ray() -> Any:
    """The ray module, or one clear error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise GrimcError("--ray: the optional package ray is not installed "
                         "(pip install 'grimc[ray]')") from None
    return ray


@dataclass(frozen=True)
class Job:
    """One candidate as a worker gets it: its files and how to build it."""

    files: dict[str, bytes]
    gen: GeneratedModel
    """Without weights or kernels: the prefix and the input and output shapes."""
    target: str
    flags: list[str]
    opt_level: str

    @classmethod
    def of(cls, gen: GeneratedModel, exe: Path, measurer: Measurer) -> Job:
        p = gen.prefix
        names = (f"{p}.c", f"{p}.h", f"{p}_main.c", f"{p}.weights.bin")
        return cls(
            {name: (exe.parent / name).read_bytes() for name in names},
            dataclasses.replace(gen, blob_arrays=[], kernels=[], buffers=[]),
            measurer.target.name, measurer.build_flags, measurer.opt_level,
        )

    def unpack(self, root: Path) -> Path:
        for name, data in self.files.items():
            (root / name).write_bytes(data)
        return root / self.gen.prefix

    def build(self, root: Path) -> tuple[Path, str]:
        """Build the harness in `root`: its path and '' or the build error."""
        exe = self.unpack(root)
        return exe, _build(str(root / f"{self.gen.prefix}.c"), str(exe), self.target,
                           self.flags, True, self.opt_level)


@dataclass(frozen=True)
class Count:
    """What a count job brings back."""

    error: str
    """'' or the build error (the candidate is build-failed)."""
    cost: float = 0.0
    outputs: list[np.ndarray] | None = None


def count_job(job: Job, inputs: list[np.ndarray], threads: int) -> Count:
    """A worker: build one candidate, run it under qemu, count its kernel's instructions."""
    from grimc.tune.icount import count_instructions

    with tempfile.TemporaryDirectory(prefix="grimc-ray-") as tmp:
        exe, error = job.build(Path(tmp))
        if error:
            return Count(error)
        cost, outputs = count_instructions(job.gen, exe, inputs, threads)
        return Count("", float(cost), outputs)


def build_job(job: Job) -> tuple[str, bytes]:
    """A worker: build one candidate; '' and the executable, or the build error."""
    with tempfile.TemporaryDirectory(prefix="grimc-ray-") as tmp:
        exe, error = job.build(Path(tmp))
        return error, b"" if error else exe.read_bytes()


def _staged(models: dict[int, tuple[Job, bytes]], root: Path, threads: int, spec: str) -> dict[int, ExeModel]:
    device = parse_device(spec)
    out = {}
    for i, (job, exe_bytes) in models.items():
        where = root / str(i)
        where.mkdir()
        exe = job.unpack(where)
        exe.write_bytes(exe_bytes)
        exe.chmod(0o755)
        blob = where / f"{job.gen.prefix}.weights.bin"
        out[i] = ExeModel(job.gen, exe, blob, job.target, where, threads, device)
    return out


def device_outputs_job(
    models: dict[int, tuple[Job, bytes]], spec: str, threads: int, inputs: list[np.ndarray]
) -> dict[int, list[np.ndarray]]:
    """On the device's node: each candidate's outputs (one run each), for the check."""
    with tempfile.TemporaryDirectory(prefix="grimc-ray-") as tmp:
        staged = _staged(models, Path(tmp), threads, spec)
        return {i: model.run(inputs) for i, model in staged.items()}


def device_rounds_job(
    models: dict[int, tuple[Job, bytes]], spec: str, threads: int, inputs: list[np.ndarray],
    rounds: int, seed: int,
) -> dict[int, list[float]]:
    """On the device's node: interleaved rounds of samples (grimc.tune.measure.device_rounds)."""
    with tempfile.TemporaryDirectory(prefix="grimc-ray-") as tmp:
        staged = _staged(models, Path(tmp), threads, spec)
        return device_rounds(staged, list(staged), inputs, rounds, random.Random(seed))


class RayFanout:
    """Measures a Measurer's batches on a Ray cluster (module doc)."""

    def __init__(self, address: str, metric: str, jobs: int = 2, device: Device | None = None):
        if metric == "time_ms" and device is None:
            raise GrimcError(
                "--ray fans out instruction counts (qemu targets) and remote-device timings; "
                "timings on this machine must run one at a time here (drop --ray; --jobs "
                "builds in parallel)")
        ray = import_ray()
        self.ray, self.device, self.own = ray, device, False
        resource = device_resource(device.spec) if device is not None else None
        if not ray.is_initialized():
            try:
                if address == LOCAL:
                    ray.init(num_cpus=jobs, resources={resource: 1} if resource else None,
                             include_dashboard=False, logging_level=logging.ERROR)
                else:
                    check_reachable(address)
                    ray.init(address=address, logging_level=logging.ERROR)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise GrimcError(f"--ray {address}: {str(exc).splitlines()[0]}") from None
            self.own = True
        if resource is not None and ray.cluster_resources().get(resource, 0) < 1:
            self.close()
            raise GrimcError(
                f"--ray: no node of the Ray cluster has the resource {resource!r}: start the "
                f"node that reaches the device with ray start --resources '{{\"{resource}\": 1}}'")
        self._count = ray.remote(count_job).options(num_cpus=1)
        self._build = ray.remote(build_job).options(num_cpus=1)
        on_device = {"num_cpus": 0, "resources": {resource: 1}} if resource else {}
        self._outputs = ray.remote(device_outputs_job).options(**on_device)
        self._rounds = ray.remote(device_rounds_job).options(**on_device)
        self._counts: dict[Path, Count] = {}
        """Counts are exact: a candidate measured again (the re-measurement) is not rerun."""

    def close(self) -> None:
        if self.own:
            self.ray.shutdown()
            self.own = False

    def _get(self, refs: list[Any]) -> list[Any]:
        """Results of jobs; a grimc error inside one is raised here as itself."""
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, GrimcError):
                raise exc.cause from None
            raise

    def measure(self, measurer: Measurer, task: Task, attrs: list[Any], rounds: int) -> list[Outcome]:
        """Measurer.measure's outcomes, the jobs run by the cluster."""
        prepared = measurer.sources(task, attrs)
        outcomes = [p[0] for p in prepared]
        gen0 = prepared[0][1]
        inputs = seeded_inputs(gen0) if gen0 is not None else []
        live = {
            i: (gen, out) for i, (o, gen, out) in enumerate(prepared)
            if o.status == "ok" and gen is not None and out is not None
        }
        if measurer.metric == "icount":
            self._count_all(measurer, live, outcomes, inputs)
        else:
            self._time_on_device(measurer, live, outcomes, inputs, rounds)
        measurer.measured += sum(o.status == "ok" for o in outcomes)
        return outcomes

    def _count_all(
        self, measurer: Measurer, live: dict[int, tuple[GeneratedModel, Path]],
        outcomes: list[Outcome], inputs: list[np.ndarray],
    ) -> None:
        refs: dict[Path, Any] = {}
        for gen, out in live.values():
            if out not in self._counts and out not in refs:
                refs[out] = self._count.remote(Job.of(gen, out, measurer), inputs, measurer.threads)
        self._counts.update(zip(refs, self._get(list(refs.values())), strict=True))
        outputs: list[list[np.ndarray] | None] = [None] * len(outcomes)
        for i, (_, out) in live.items():
            count = self._counts[out]
            if count.error:
                outcomes[i].status, outcomes[i].message = "build-failed", count.error
            else:
                outcomes[i].samples.append(count.cost)
                outputs[i] = count.outputs
        measurer.check(outcomes, outputs)

    def _time_on_device(
        self, measurer: Measurer, live: dict[int, tuple[GeneratedModel, Path]],
        outcomes: list[Outcome], inputs: list[np.ndarray], rounds: int,
    ) -> None:
        assert self.device is not None
        jobs = {i: Job.of(gen, out, measurer) for i, (gen, out) in live.items()}
        missing = [i for i, (_, out) in live.items() if not out.exists()]
        built = self._get([self._build.remote(jobs[i]) for i in missing])
        for i, (error, exe) in zip(missing, built, strict=True):
            if error:
                outcomes[i].status, outcomes[i].message = "build-failed", error
            else:
                live[i][1].write_bytes(exe)  # built once: a re-measurement reuses it
        models = {i: (jobs[i], out.read_bytes()) for i, (_, out) in live.items()
                  if outcomes[i].status == "ok"}
        spec, threads = self.device.spec, measurer.threads
        (got,) = self._get([self._outputs.remote(models, spec, threads, inputs)])
        measurer.check(outcomes, [got.get(i) for i in range(len(outcomes))])
        timed = {i: m for i, m in models.items() if outcomes[i].status == "ok"}
        seed = measurer.rng.getrandbits(32)
        (samples,) = self._get([self._rounds.remote(timed, spec, threads, inputs, rounds, seed)])
        for i, values in samples.items():
            outcomes[i].samples.extend(values)
