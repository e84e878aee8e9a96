"""Whether a recorded process (a lock holder, a run's owner) is provably gone, alive, or
unknown: a pid means something only on this boot of this host, in this PID namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mobctl.host import host, liveness, me, process_start

ROOT = Path(__file__).resolve().parents[1]


def test_this_process_is_alive_and_another_incarnation_is_gone() -> None:
    pid, here, started = me()
    assert liveness(pid, here, started) == "alive"
    boot, namespace, _ = started.split(":")
    assert liveness(pid, here, f"{boot}:{namespace}:1") == "gone"  # the pid was reused
    assert liveness(pid, "another-host", started) == "unknown"


def test_a_record_from_another_namespace_or_boot_is_unknown() -> None:
    """Same host name, so the pid number could match a live process here: it means nothing."""
    pid, here, started = me()
    boot, namespace, start = started.split(":")
    assert liveness(pid, here, f"{boot}:1{namespace}:{start}") == "unknown"
    assert liveness(pid, here, f"another-boot:{namespace}:{start}") == "unknown"
    assert liveness(999_999_999, here, f"{boot}:1{namespace}:{start}") == "unknown"


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs `unshare --pid` (root or user namespaces)")
def test_item5_a_live_process_in_another_pid_namespace_is_never_gone() -> None:
    """Two containers sharing a store and a host name: the other one's pid 1 or 7 is not ours."""
    code = "from mobctl.host import me; import sys; print(*me(), sep='|', flush=True); sys.stdin.read()"
    child = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        pid, where, started = child.stdout.readline().strip().split("|")
        assert where == host() and started != process_start(int(pid))
        assert liveness(int(pid), where, started) == "unknown"
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
