"""Ansible playbook bench: an Ansible playbook run by maint (ansible-runner) against plain ansible-playbook.

The six read-only commands of the fleet bench (bench/fleet.py), written as one Ansible play (no facts,
``ansible.builtin.command``/``shell`` tasks), run on one lab of N real sshd hosts on loopback by:

- ``maint``: ``maint run site.yml -i LAB/inventory.ini -f 50 --format json --no-tickets``, the Ansible
  playbook given directly (maint runs it through ansible-runner and records one result per task);
- ``ansible-playbook``: ``ansible-playbook -i LAB/inventory.ini site.yml --forks 50``.

Both get the fleet bench's ansible.cfg and environment (pipelining, forks 50, no fact gathering,
private temp and control path directories): ansible-runner passes maint's environment on to the
ansible-playbook it starts. Per tool: wall time, controller CPU (the tool and every process it
started, from ``os.wait4``), the lab's sshd CPU and the largest RSS of one process; every run must run
6 x N commands ok (maint: its JSON results; ansible-playbook: exit code and PLAY RECAP). Runs are
interleaved and the median of ``--repeat`` runs is reported, with the ratio of maint to
ansible-playbook (target: maint's wall at most 10 % over ansible-playbook's).

    /work/main/.venv/bin/python bench/ansible_step.py --hosts 30 --repeat 3

Only the lab's loopback addresses are dialled. Exit status: 0 when both tools ran every command, 1 when
one failed or miscounted (its log is named), 2 for a usage error. A missed target is shown, not turned
into an exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

try:
    import fleet
except ModuleNotFoundError:  # loaded from outside bench/ (by path): fleet.py sits next to this file
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fleet

TOOLS = ("maint", "ansible-playbook")
TARGETS = (fleet.Target("maint wall / ansible-playbook wall", "maint", "ansible-playbook", "wall", 1.1, True),)
# Shown without a target: the runner's event stream costs CPU that ansible-playbook alone does not spend.
CPU_RATIO = "maint CPU / ansible-playbook CPU"


class AnsibleStepBench(fleet.Bench):
    """The fleet bench's lab, files and measurement, with maint running the Ansible playbook itself."""

    def command(self, tool: str) -> tuple[list[str], dict[str, str]]:
        """The command line and environment of ``tool``; both get the bench's Ansible environment."""
        environment = fleet.ansible_environment(dict(os.environ), self.work / "ansible", fleet.FORKS)
        if tool == "maint":
            command = [
                str(self._binary("maint")), "run", str(self.work / "site.yml"), "-i", str(self.lab.inventory),
                "-f", str(fleet.FORKS), "--format", "json", "--no-tickets",
            ]  # fmt: skip
            return command, environment
        if tool == "ansible-playbook":
            return super().command("ansible")
        raise ValueError(f"unknown tool {tool!r}")

    def count(self, tool: str, output: str) -> tuple[int, int]:
        """(commands ok, hosts): maint's JSON results with status ok, ansible-playbook's PLAY RECAP."""
        if tool == "maint":
            return fleet.count_maint(output)
        return fleet.count_recap(output)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of the bench."""
    parser = argparse.ArgumentParser(
        prog="ansible_step.py",
        description="Time an Ansible playbook run by maint (ansible-runner) and by ansible-playbook on one lab.",
    )
    parser.add_argument("--hosts", type=fleet.positive, default=30, help="lab hosts (default 30)")
    parser.add_argument(
        "--repeat", type=fleet.positive, default=3, help="runs per tool, interleaved; median reported (default 3)"
    )
    parser.add_argument("--port", type=int, help=f"lab port (default: the first free one from {fleet.FIRST_PORT} up)")
    parser.add_argument("--settle", type=float, default=2.0, metavar="SECONDS", help="pause between runs (default 2)")
    parser.add_argument("--dir", type=Path, help="bench directory (default: a new temporary one)")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab and the bench directory in place")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    return parser


def cpu_ratio(medians: dict[str, fleet.Measurement]) -> float:
    """maint's controller CPU over ansible-playbook's (inf when the latter is zero)."""
    bottom = medians["ansible-playbook"].cpu
    return medians["maint"].cpu / bottom if bottom > 0 else float("inf")


def run_bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Start the lab, measure both tools ``args.repeat`` times (interleaved), and return the report."""
    subreaper = fleet.become_subreaper()
    load_before = os.getloadavg()[0]
    with fleet.lab_fleet(work / "lab", args.hosts, args.port, args.keep_lab) as lab:
        bench = AnsibleStepBench(
            work=work, lab=lab, bin_dir=Path(sys.executable).parent, sample_tree=False, settle=args.settle
        )
        bench.prepare()
        print(f"bench: lab of {bench.hosts} hosts up on port {lab.port}; repeat {args.repeat}", file=sys.stderr)
        runs = fleet.measure_all(bench, TOOLS, args.repeat)
    medians = {tool: fleet.median_measurement(tool_runs) for tool, tool_runs in runs.items()}
    return {
        "hosts": args.hosts,
        "commands_per_host": len(fleet.COMMANDS),
        "forks": fleet.FORKS,
        "repeat": args.repeat,
        "directory": str(work),
        "subreaper": subreaper,
        "cpu_count": os.cpu_count(),
        "load_average": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "median": {tool: result.to_json() for tool, result in medians.items()},
        "runs": {tool: [run.to_json() for run in tool_runs] for tool, tool_runs in runs.items()},
        "ratios": fleet.ratios(medians, TARGETS),
        "cpu_ratio": cpu_ratio(medians),
    }


def render(report: dict[str, Any]) -> str:
    """The human-readable report: header, table, the wall ratio with its target, the CPU ratio."""
    medians = {tool: fleet.Measurement.from_json(data) for tool, data in report["median"].items()}
    expected = report["hosts"] * report["commands_per_host"]
    runs = f"median of {report['repeat']} runs" if report["repeat"] > 1 else "1 run"
    lines = [
        f"ansible playbook bench: {report['hosts']} hosts x {report['commands_per_host']} tasks, forks "
        f"{report['forks']}, {report['cpu_count']} CPUs, {runs} per tool",
        f"1-minute load average: {report['load_average']['before']:.2f} before, "
        f"{report['load_average']['after']:.2f} after",
        "",
        fleet.format_table(list(medians.values()), expected),
        "",
    ]
    width = max(len(row["label"]) for row in report["ratios"])
    bounds = {target.label: target.bound for target in TARGETS}
    for row in report["ratios"]:
        verdict = "met" if row["met"] else "missed"
        bound = f"{row['bound'].split()[0]} {bounds[row['label']]:.2f}"
        lines.append(f"{row['label'].ljust(width)}  {row['value']:.2f} (target {bound}: {verdict})")
    lines.append(f"{CPU_RATIO.ljust(width)}  {report['cpu_ratio']:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the bench; see the module docstring for the exit status."""
    return fleet.run_main(build_parser().parse_args(argv), "maint-bench-ansible-", run_bench, render)


if __name__ == "__main__":
    sys.exit(main())
