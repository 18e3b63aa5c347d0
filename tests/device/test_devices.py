"""Remote devices (grimc.device): a real sshd on this machine, and command runners;
tuning on a device (grimc tune --device) and compiling with its records.

The ssh device is exercised end to end against an OpenSSH server started for the
test on a free local port, with keys made for it: `grimc run --device ssh://...
--check` must match onnxruntime, `grimc bench` must report a measured latency, and
an unreachable device or a failing program is one line and exit 2.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from grimc.device import CommandDevice, DeviceError, SshDevice, parse_device
from grimc.dialects.sched import target_of
from grimc.driver import CompileOptions, import_model, optimize
from grimc.prune import prune_model
from grimc.tune.measure import Measurer
from grimc.tune.search import tune_task
from grimc.tune.tasks import extract_tasks
from grimc.tune.tuner import tune_model
from grimc.tunedb import Record, TuningDB, target_key, version_key
from grimc.zoo.builder import GraphBuilder
from tests.conftest import REPO, require, run_tool

EXAMPLE = REPO / "examples" / "small_cnn.onnx"
"""For the spec checks, which fail before anything is compiled."""
SCRATCH = REPO / "examples" / "runners" / "scratch.sh"
SSHD = Path("/usr/sbin/sshd")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small conv + fully connected model, quick to build (seeded weights)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    fc = numpy_helper.from_array(rng.standard_normal((10, 8 * 6 * 6)).astype(np.float32), "fc")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["r"]),
         helper.make_node("Flatten", ["r"], ["f"]),
         helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)],
        "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], [w, fc])
    path = tmp_path_factory.mktemp("model") / "small.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(device spec, GRIMC_SSH command) of an sshd on 127.0.0.1 that trusts a fresh key.

    It runs as whoever runs the tests (an unprivileged sshd serves its own user),
    so CI never skips it."""
    require(SSHD.exists(), "sshd", "openssh-server")
    require(shutil.which("ssh") is not None, "ssh", "openssh-client")
    d = tmp_path_factory.mktemp("sshd")
    for key in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)],
                       check=True)
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    os.chmod(d, 0o700)
    if os.geteuid() == 0:  # sshd run by root wants its privilege separation directory
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\n"
    )
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(d / "sshd_config")],
                            stderr=subprocess.PIPE, text=True)
    ssh = (f"ssh -i {d / 'client'} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
           "-o LogLevel=ERROR -o ConnectTimeout=10")
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"sshd exited: {proc.stderr.read() if proc.stderr else ''}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                pytest.fail("sshd did not start listening within 20 s")
            time.sleep(0.1)
        yield f"ssh://{getpass.getuser()}@127.0.0.1:{port}", ssh
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def ssh_env(sshd: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GRIMC_SSH", sshd[1])
    return sshd[0]


@pytest.mark.parametrize(
    "text, kind, fields",
    [
        ("ssh://pi@board", SshDevice, {"destination": "pi@board", "port": None, "workdir": None}),
        ("ssh://board:2222/data/tmp", SshDevice,
         {"destination": "board", "port": 2222, "workdir": "/data/tmp"}),
        (f"cmd:{SCRATCH}", CommandDevice, {"runner": str(SCRATCH)}),
    ],
)
def test_parse(text: str, kind: type, fields: dict[str, object]) -> None:
    device = parse_device(text)
    assert type(device) is kind and device.spec == text
    for name, value in fields.items():
        assert getattr(device, name) == value


@pytest.mark.parametrize(
    "text, message",
    [
        ("adb://phone", "expected ssh://[user@]host[:port][/dir] or cmd:RUNNER"),
        ("ssh://", "expected ssh://[user@]host[:port][/dir]"),
        ("ssh://a@b@c", "expected ssh://[user@]host[:port][/dir]"),
        ("ssh://board:99999", "port 99999 is out of range"),
        ("cmd:/no/such/runner", "/no/such/runner is not an executable file"),
        (f"cmd:{EXAMPLE}", "is not an executable file"),
    ],
)
def test_bad_spec(text: str, message: str) -> None:
    with pytest.raises(DeviceError, match=re.escape(message)):
        parse_device(text)


@pytest.mark.parametrize("command", ["run", "bench"])
def test_bad_spec_is_one_line_exit_2(command: str) -> None:
    proc = run_tool(["grimc", command, str(EXAMPLE), "--device", "ssh://board:99999"])
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "port 99999 is out of range" in proc.stderr


def test_command_runner_matches_onnxruntime(model: str) -> None:
    proc = run_tool(["grimc", "run", model, "--target", "host", "--check",
                     "--device", f"cmd:{SCRATCH}"])
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime check: OK" in proc.stdout


def test_command_runner_failure_is_one_line(model: str, tmp_path: Path) -> None:
    runner = tmp_path / "broken.sh"
    runner.write_text("#!/bin/sh\necho 'device offline' >&2\nexit 3\n")
    runner.chmod(0o755)
    proc = run_tool(["grimc", "run", model, "--device", f"cmd:{runner}"])
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"cmd:{runner}" in proc.stderr and "exit status 3: device offline" in proc.stderr


def test_ssh_run_matches_onnxruntime(model: str, ssh_env: str) -> None:
    proc = run_tool(["grimc", "run", model, "--check", "--device", ssh_env])
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime check: OK" in proc.stdout


def test_ssh_bench_reports_a_measured_latency(model: str, ssh_env: str) -> None:
    proc = run_tool(["grimc", "bench", model, "--repeat", "3", "--device", ssh_env])
    assert proc.returncode == 0, proc.stderr
    assert f"on {ssh_env}" in proc.stdout and "median" in proc.stdout


def test_ssh_leaves_nothing_on_the_device(model: str, ssh_env: str) -> None:
    workdir = Path("/tmp") / f"grimc-devtest-{os.getpid()}"
    workdir.mkdir()
    try:
        proc = run_tool(["grimc", "run", model, "--device", f"{ssh_env}{workdir}"])
        assert proc.returncode == 0, proc.stderr
        assert list(workdir.iterdir()) == []
    finally:
        shutil.rmtree(workdir)


def test_unreachable_ssh_device_is_one_line_exit_2(sshd: tuple[str, str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIMC_SSH", sshd[1])
    spec = f"ssh://{getpass.getuser()}@127.0.0.1:{_free_port()}"
    proc = run_tool(["grimc", "run", str(EXAMPLE), "--device", spec])
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and spec in proc.stderr
    assert "Connection refused" in proc.stderr


# ------------------------------------------------------------------ tuning on a device


@pytest.fixture(scope="module")
def sparse_conv(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A BCR-pruned 3x3 conv (16->32 at 6x6): one tuning task with spmm knobs."""
    b = GraphBuilder(1, 17)
    y = b.conv(b.input("input", (1, 16, 6, 6)), 32, 3)
    path = tmp_path_factory.mktemp("tune") / "conv.onnx"
    onnx.save(prune_model(b.finish(["input"], {"output": y}, "conv"), block="8x16", rate=4.0).model,
              path)
    return str(path)


@pytest.mark.slow  # three tuning runs; the fast tier measures on the device in the next test
def test_tuning_measures_on_the_device_and_keys_records_by_it(
    sparse_conv: str, ssh_env: str, tmp_path: Path
) -> None:
    db = TuningDB(tmp_path / "t.sqlite")
    remote = CompileOptions(target="host", device=ssh_env)
    first = tune_model(sparse_conv, remote, db, budget_s=3, workdir=tmp_path / "w")
    assert first.tasks == 1 and first.measured > 0 and first.metric == "time_ms"
    assert {r.target for r in db.records()} == {f"host@{ssh_env}"}
    warm = tune_model(sparse_conv, remote, db, budget_s=3, workdir=tmp_path / "w")
    assert warm.cached == 1 and warm.measured == 0
    here = tune_model(sparse_conv, CompileOptions(target="host"), db, budget_s=1,
                      workdir=tmp_path / "w")
    assert here.cached == 0  # this machine's timings are not the device's


def test_wrong_candidate_on_the_device_is_rejected(
    sparse_conv: str, ssh_env: str, tmp_path: Path
) -> None:
    module = optimize(import_model(sparse_conv), CompileOptions(target="host", use_tuning_db=False))
    (task,) = extract_tasks(module)
    broken, fine = task.default.replace(rows=1, nv=1), task.default.replace(unroll=1)

    def corrupt(attr, outputs):  # the planted bug: this schedule's kernel is off by one
        return [o + 1.0 for o in outputs] if attr == broken else outputs

    device = parse_device(ssh_env)
    with Measurer(module, target_of(module), 1, tmp_path, perturb=corrupt, rounds=2,
                  device=device) as m:
        result = tune_task(task, m, deadline=0, candidates=[broken, fine])
    assert [(o.attr, o.status) for o in result.rejected] == [(broken, "wrong")]
    assert m.measured > 0 and result.best != broken


def test_compile_for_a_device_uses_its_records(sparse_conv: str, tmp_path: Path) -> None:
    """`--device` picks the records measured there; without it, this machine's (none)."""
    module = optimize(import_model(sparse_conv), CompileOptions(target="host", use_tuning_db=False))
    (task,) = extract_tasks(module)
    tuned = task.default.replace(rows=2, nv=1, unroll=1)
    assert tuned != task.default
    spec = "ssh://pi@board.local:2222"
    db = TuningDB(tmp_path / "t.sqlite")
    target = target_of(module)
    db.put(Record(task.signature, target_key(target, "time_ms", spec), 1, version_key(), task.kind,
                  task.key, task.shapes, json.dumps(tuned.knobs()),
                  json.dumps(task.default.knobs()), "time_ms", 1.0, 2.0, 0.02, 1))
    db.close()
    base = ["grimc", sparse_conv, "--emit=ir", "--target", "host", "--tuning-db", str(db.path)]
    for_device = run_tool([*base, "--device", spec])
    assert for_device.returncode == 0, for_device.stderr
    assert str(tuned) in for_device.stdout
    here = run_tool(base)
    assert here.returncode == 0 and str(tuned) not in here.stdout


def test_out_of_range_index_on_a_device_names_the_input(tmp_path: Path) -> None:
    """A device run refused with GRIMC_E_RANGE says which input and value, as a local run does."""
    from tests.frontend.test_gather import runtime_gather_model

    path = tmp_path / "gather.onnx"
    onnx.save(runtime_gather_model([3], 1), path)
    ids = tmp_path / "ids.npy"
    np.save(ids, np.array([0, 9, 1], np.int64))
    proc = run_tool(["grimc", "run", str(path), "--target", "host", "--input", f"ids={ids}",
                     "--device", f"cmd:{SCRATCH}", "-q"])
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "input 'ids': index 9 is out of range [-6, 6)" in proc.stderr
