"""Benchmark: `mobctl test`, 200 cases of a 5-step flow (scripted; directory stores opened as
`mobctl test` opens a case's, syncing nothing to the disk).

Figures:
- the per-case overhead of the test runner beyond running the flow itself (target <= 20 ms):
  the median time of a case (-j 1) minus the median time of a run of the same flow through
  `api.start_run` in one store, the two measured alternately, one of each at a time, so that
  the load of a shared machine weighs on both alike. The overhead is what a case adds: a
  store of its own (created, the definition registered, removed), its run's events read
  back, its expectations checked. The same difference over whole blocks (200 runs, then the
  suite with -j 1) is printed too: it moves with the machine's load;
- the speed-up of -j 2 over -j 1 (the same 200 cases, the whole suite, loading included).

Rounds alternate the measurements, and each figure is the median over the rounds.

Usage: python bench/test_bench.py [--cases 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from functools import partial
from pathlib import Path
from statistics import median

from mobctl import api
from mobctl.drivers.registry import DriverConfig
from mobctl.store.backends import open_store
from mobctl.suites.loading import Rules, load_suites
from mobctl.suites.runner import Setup, run_case, run_cases

# as mobctl test opens a case's store (nothing synced to the disk); the baseline's alike
STORE = partial(open_store, durable=False)
STEPS = ["plan", "draft", "review", "revise", "publish"]


def write_project(root: Path, cases: int) -> Path:
    """mob.toml (five steps in a chain), fixtures.toml, and a suite of ``cases`` cases."""
    mob = '[mob]\nid = "bench"\n\n[profiles.w]\nmodel = "claude-sonnet-4-6"\n'
    fixtures = ""
    for index, step in enumerate(STEPS):
        after = f'depends_on = ["{STEPS[index - 1]}"]\n' if index else ""
        mob += f'\n[flows.main.steps.{step}]\nrole = "w"\nmessage = "{step} {{{{ params.n }}}}"\n{after}'
        fixtures += f'[[reply]]\nstep = "{step}"\noutput = "{step} done"\n\n'
    (root / "mob.toml").write_text(mob)
    (root / "fixtures.toml").write_text(fixtures)
    case = (
        '[[case]]\nname = "case {n}"\nmob = "mob.toml"\nparams = {{ n = {n} }}\n'
        'drivers = ["scripted:fixtures.toml"]\n\n[case.expect]\nstatus = "completed"\n'
        f"order = {STEPS!r}\n".replace("'", '"')
        + 'dispatches = {{ plan = 1, publish = 1 }}\nevents = {{ never = ["step_failed"] }}\n\n'
        '[[case.expect.output]]\npath = "steps.publish.w-1"\nop = "eq"\nvalue = "publish done"\n\n'
    )
    suite = root / "bench.test.toml"
    suite.write_text("".join(case.format(n=n) for n in range(cases)))
    return suite


def flows_alone(root: Path, cases: int) -> float:
    """Seconds for ``cases`` runs of the flow in one store (registered once, before)."""
    store = STORE(root / f"alone-{time.monotonic_ns()}")
    api.register(store, root / "mob.toml")
    drivers = [f"scripted:{root / 'fixtures.toml'}"]
    started = time.perf_counter()
    for n in range(cases):
        outcome = api.start_run(store, "bench", params={"n": n}, drivers=drivers)
        assert outcome.status == "completed"
    return time.perf_counter() - started


def alternating(root: Path, suite: Path) -> tuple[float, float]:
    """Median milliseconds of a run of the flow alone and of a case, measured one after the
    other, case by case."""
    store = STORE(root / f"alone-{time.monotonic_ns()}")
    api.register(store, root / "mob.toml")
    drivers = [f"scripted:{root / 'fixtures.toml'}"]
    loaded = load_suites([str(suite)], Rules((root,), lambda text: 0))
    flows, cases = [], []
    with tempfile.TemporaryDirectory(dir=root) as workdir:
        setup = Setup(STORE, Path(workdir), DriverConfig(workdir=root))
        for n, case in enumerate(loaded.cases):
            started = time.perf_counter()
            assert api.start_run(store, "bench", params={"n": n}, drivers=drivers).status == (
                "completed"
            )
            flows.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert run_case(case, setup, n).outcome == "passed"
            cases.append(time.perf_counter() - started)
    return median(flows) * 1000, median(cases) * 1000


def suite_run(root: Path, suite: Path, jobs: int) -> float:
    """Seconds for the whole suite on ``jobs`` threads (loading included)."""
    started = time.perf_counter()
    loaded = load_suites([str(suite)], Rules((root,), lambda text: 0))
    assert not loaded.diagnostics, loaded.diagnostics
    with tempfile.TemporaryDirectory(dir=root) as workdir:
        setup = Setup(STORE, Path(workdir), DriverConfig(workdir=root))
        results = run_cases(loaded.cases, setup, jobs=jobs)
    elapsed = time.perf_counter() - started
    assert all(r.outcome == "passed" for r in results), [
        r for r in results if r.outcome != "passed"
    ][:1]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="test-bench-") as directory:
        root = Path(directory)
        suite = write_project(root, args.cases)
        os.chdir(root)
        alone, one, two, pairs = [], [], [], []
        for round_ in range(args.rounds):
            alone.append(flows_alone(root, args.cases))
            one.append(suite_run(root, suite, 1))
            two.append(suite_run(root, suite, 2))
            pairs.append(alternating(root, suite))
            print(
                f"round {round_ + 1}: flows alone {alone[-1]:.2f}s, -j 1 {one[-1]:.2f}s, "
                f"-j 2 {two[-1]:.2f}s; alternating: a run {pairs[-1][0]:.1f} ms, "
                f"a case {pairs[-1][1]:.1f} ms"
            )
    base, j1, j2 = median(alone), median(one), median(two)
    flow_ms = median(p[0] for p in pairs)
    case_ms = median(p[1] for p in pairs)
    blocks = (j1 - base) / args.cases * 1000
    print(
        f"cores: {os.cpu_count()}; {args.cases} cases of a {len(STEPS)}-step flow; medians of {args.rounds} rounds"
    )
    print(
        f"running the flow itself: {flow_ms:.1f} ms per run (alternating; {base / args.cases * 1000:.1f} ms in blocks)"
    )
    print(
        f"a case: {case_ms:.1f} ms; overhead beyond the flow: {case_ms - flow_ms:.1f} ms per case (target <= 20 ms); in blocks: {blocks:.1f} ms"
    )
    print(f"-j 2 over -j 1: {j1 / j2:.2f}x ({j2 / args.cases * 1000:.1f} ms per case)")


if __name__ == "__main__":
    main()
