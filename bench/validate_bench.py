"""Benchmark: `mobctl validate` on a ~1 MB definition, and `mobctl --version` start-up.

Both are compared, in the same run, with a baseline:
  - validate: `python -c` that only parses the same file with tomllib (target: <= 3x);
  - start-up: `python -c "import typer, pydantic"` (target: <= 1.3x).

Usage: python bench/validate_bench.py [--runs N]
Prints one line per figure and the ratios. Wall time, median of N runs (default 9).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def big_definition(profiles: int = 200, flows: int = 50, steps: int = 40) -> str:
    lines = ['[mob]\nid = "big"\norchestrator = "p0"\n']
    for p in range(profiles):
        lines.append(
            f'[profiles.p{p}]\nmodel = "claude-sonnet-4-6"\n'
            f'peer_description = "Profile {p}: reviews, writes and summarises its work"\n'
            f'skills = ["s{p % 10}"]\nexternal_addressable = {str(p % 2 == 0).lower()}\n'
            f"[profiles.p{p}.tools]\nbuiltins = true\nshell = {str(p % 3 == 0).lower()}\n"
            f'comms = true\nmcp = ["search", "git"]\n'
        )
    for s in range(10):
        lines.append(f'[skills.s{s}]\nsource = "inline"\ncontent = "Skill {s}: be precise."\n')
    for f in range(flows):
        lines.append(f'[flows.f{f}]\ndescription = "Generated flow {f} with {steps} steps"\n')
        for i in range(steps):
            # chains of 20 (Meerkat's depth limit is 32 steps)
            deps = [f"s{i - 1}"] if i % 20 else []
            if i % 20 > 2:
                deps.append(f"s{i - 3}")
            source = f"steps.s{i - 1}.output" if i % 20 else "params.brief"
            lines.append(
                f"[flows.f{f}.steps.s{i}]\n"
                f'role = "p{(f * steps + i) % profiles}"\n'
                f'message = "Step {i} of flow {f}: continue from {{{{ {source} }}}} '
                f"for {{{{ params.topic }}}} and keep the tone of {{{{ params.tone }}}}; "
                f'report what changed, what is left, what blocks you, what the next step needs."\n'
                f"depends_on = {json.dumps(deps)}\n"
                f'condition = {{ op = "or", exprs = [{{ op = "eq", path = "params.mode", '
                f'value = "full" }}, {{ op = "gt", path = "params.level", value = {i} }}] }}\n'
                f"timeout_ms = {30000 + i}\n"
            )
    return "\n".join(lines)


def timed(command: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    mobctl = shutil.which("mobctl")
    base = [mobctl] if mobctl else [sys.executable, "-m", "mobctl"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.toml"
        path.write_text(big_definition())
        check = subprocess.run(
            [*base, "validate", str(path), "--format", "json"], capture_output=True, text=True
        )
        summary = json.loads(check.stdout)["summary"]
        size = path.stat().st_size
        print(f"big.toml: {size / 1e6:.2f} MB, exit {check.returncode}, {summary}")
        validate = timed([*base, "validate", str(path), "--format", "json"], args.runs)
        parse = timed(
            [sys.executable, "-c", f"import tomllib; tomllib.load(open({str(path)!r}, 'rb'))"],
            args.runs,
        )
        print(f"validate --format json: {validate * 1000:.0f} ms")
        print(f"baseline tomllib parse: {parse * 1000:.0f} ms")
        print(f"ratio validate/parse: {validate / parse:.2f}x (target <= 3x)")
    version = timed([*base, "--version"], args.runs * 2)
    imports = timed([sys.executable, "-c", "import typer, pydantic"], args.runs * 2)
    print(f"mobctl --version: {version * 1000:.0f} ms")
    print(f"baseline import typer, pydantic: {imports * 1000:.0f} ms")
    print(f"ratio version/imports: {version / imports:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
