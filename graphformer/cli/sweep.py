"""The summary of a sweep: one table per multirun, printed and written to the sweep folder.

:class:`SweepSummary` is a Hydra callback (``hydra.callbacks.sweep_summary`` in
``conf/hydra/default.yaml``). At the end of every multirun it reads each job's
``summary.json`` (written by ``graphformer-train``: see ``graphformer.cli.results``) and
writes ``sweep_summary.md`` and ``sweep_summary.csv`` beside the job folders: one row per job
with the overrides that vary, the best validation value of ``optimized_metric`` and its
epoch, the test metrics, wall time, run folder and best checkpoint, best first. Jobs that
differ only in ``seed`` are then aggregated as mean ± std (population std) over n seeds;
different settings are never pooled. After an Optuna search, ``optimization_results.yaml``
gains the job folder and checkpoint of the best trial.

Light on purpose (standard library, OmegaConf, Hydra): Hydra instantiates its callbacks for
every run.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import statistics
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"  # = graphformer.cli.results.SUMMARY_FILE (not imported: torch)
TABLE = "sweep_summary"
#: Keys that vary between repeats of the same setting.
REPEAT_KEYS = ("seed",)


def settings(overrides: list[str]) -> tuple[str, ...]:
    """A job's setting: its overrides without ``seed=...`` (the key runs are grouped by)."""
    return tuple(o for o in overrides if _key(o) not in REPEAT_KEYS)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def read_jobs(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every job of the sweep in ``sweep_dir``: its ``summary.json``, or, for a job that
    left none (failed, killed), its overrides and ``failed: True``."""
    jobs = []
    for folder in sorted(sweep_dir.iterdir(), key=lambda p: (len(p.name), p.name)):
        if not (folder / ".hydra").is_dir():
            continue
        summary = folder / SUMMARY_FILE
        if summary.is_file():
            job = json.loads(summary.read_text())
        else:
            overrides = OmegaConf.load(folder / ".hydra" / "overrides.yaml")
            job = {"overrides": list(overrides), "failed": True, "run_dir": str(folder)}
        job["job"] = folder.name
        jobs.append(job)
    return jobs


def _value(job: dict[str, Any]) -> float | None:
    metric = job.get("optimized_metric")
    values = job.get("best") or job.get("last") or {}
    return values.get(metric) if metric else None


def _sort(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best first by the optimized metric (its mode); failed jobs and jobs without it last."""
    maximize = next((j.get("optimized_mode") for j in jobs if j.get("optimized_mode")), "max")
    sign = -1 if maximize == "max" else 1

    def key(job):
        value = _value(job)
        return (value is None, sign * value if value is not None else 0.0, len(job["job"]))

    return sorted(jobs, key=key)


def _format(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def table(jobs: list[dict[str, Any]], sweep_dir: Path) -> tuple[str, list[dict[str, Any]]]:
    """The markdown text and the CSV rows of the summary of ``jobs``."""
    jobs = _sort(jobs)
    metric = next((j["optimized_metric"] for j in jobs if j.get("optimized_metric")), None)
    common = set.intersection(*(set(j["overrides"]) for j in jobs)) if jobs else set()
    tests = sorted({key for job in jobs for key in job.get("test", {})})
    rows = []
    for job in jobs:
        varying = [o for o in job["overrides"] if o not in common]
        row = {
            "job": job["job"],
            "overrides": " ".join(varying),
            f"best {metric}": _value(job),
            "best epoch": job.get("best_epoch"),
            **{key: job.get("test", {}).get(key) for key in tests},
            "wall s": job.get("wall_s"),
            "run folder": job.get("run_dir"),
            "best checkpoint": job.get("best_checkpoint"),
            "status": "no summary.json (failed?)" if job.get("failed") else "ok",
        }
        rows.append(row)
    lines = [
        f"# Sweep {sweep_dir}",
        "",
        f"{len(jobs)} jobs, best first by {metric} (validation, at each job's best "
        "checkpoint, the one tested).",
    ]
    if common:
        lines.append(f"Common overrides: {' '.join(sorted(common))}")
    lines += ["", _markdown(rows, sweep_dir)]
    groups = aggregate(jobs, metric, tests)
    if any(group["n"] > 1 for group in groups):
        lines += ["", "Over seeds (mean ± std, n runs; settings never pooled):", ""]
        lines.append(_markdown(groups, sweep_dir))
    return "\n".join(lines) + "\n", rows


def aggregate(jobs: list[dict[str, Any]], metric: str | None, tests: list[str]) -> list[dict]:
    """One row per setting (overrides without the seed): mean ± std and n of the optimized
    metric and of each test metric over its seeds; best first."""
    grouped: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for job in jobs:
        if not job.get("failed"):
            grouped.setdefault(settings(job["overrides"]), []).append(job)
    common = set.intersection(*(set(k) for k in grouped)) if grouped else set()
    rows = []
    for key, members in grouped.items():
        varying = " ".join(o for o in key if o not in common)
        row: dict[str, Any] = {"overrides": varying or "(one setting)"}
        row["n"] = len(members)
        for name, values in [(f"best {metric}", [_value(j) for j in members])] + [
            (test, [j.get("test", {}).get(test) for j in members]) for test in tests
        ]:
            values = [v for v in values if v is not None]
            row[name] = _mean_std(values)
        row["jobs"] = " ".join(j["job"] for j in members)
        rows.append(row)
    return rows


def _mean_std(values: list[float]) -> str:
    if not values:
        return ""
    mean, std = statistics.mean(values), statistics.pstdev(values)
    return f"{mean:.4f} ± {std:.4f} (n={len(values)})"


def _markdown(rows: list[dict[str, Any]], sweep_dir: Path) -> str:
    if not rows:
        return "(no jobs)"
    header = list(rows[0])

    def cell(key: str, value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.1f}" if key == "wall s" else _format(value)
        if key in ("run folder", "best checkpoint") and value:
            path = Path(value)
            return str(path.relative_to(sweep_dir)) if path.is_relative_to(sweep_dir) else value
        return "" if value is None else str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(k, row.get(k)) for k in header) + " |" for row in rows]
    return "\n".join(lines)


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def name_optuna_best(sweep_dir: Path, jobs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The job of Optuna's best trial (its parameters equal the job's overrides); its
    folder and checkpoint are added to ``optimization_results.yaml``."""
    path = sweep_dir / "optimization_results.yaml"
    if not path.is_file():
        return None
    results = OmegaConf.to_container(OmegaConf.load(path))
    params = results.get("best_params") or {}
    matches = [job for job in jobs if not job.get("failed") and _has_params(job, params)]
    if not matches:
        return None
    best = _sort(matches)[0]
    results.update(best_job=best["job"], best_run_dir=best.get("run_dir"))
    results["best_checkpoint"] = best.get("best_checkpoint")
    OmegaConf.save(OmegaConf.create(results), path)
    return best


def _has_params(job: dict[str, Any], params: dict[str, Any]) -> bool:
    given = dict(o.lstrip("+").split("=", 1) for o in job["overrides"] if "=" in o)
    for key, value in params.items():
        if key not in given:
            return False
        try:
            if not math.isclose(float(given[key]), float(value), rel_tol=1e-9):
                return False
        except ValueError:
            if given[key] != str(value):
                return False
    return True


def summarize(sweep_dir: Path) -> str:
    """Write ``sweep_summary.md`` / ``.csv`` in ``sweep_dir``; returns the text printed."""
    jobs = read_jobs(sweep_dir)
    text, rows = table(jobs, sweep_dir)
    best = name_optuna_best(sweep_dir, jobs)
    if best is not None:
        text += (
            f"\nOptuna's best trial: job {best['job']}, run folder {best.get('run_dir')}, "
            f"best checkpoint {best.get('best_checkpoint')} (also in optimization_results.yaml)\n"
        )
    logs = sorted((sweep_dir / ".submitit").rglob("*_log.out"))
    if logs:
        text += "\nEach job's console output (submitit):\n"
        text += "".join(f"  {log}\n" for log in logs)
    (sweep_dir / f"{TABLE}.md").write_text(text)
    (sweep_dir / f"{TABLE}.csv").write_text(_csv(rows))
    return text + f"\n(written to {sweep_dir / TABLE}.md and .csv)"


class SweepSummary(Callback):
    """Hydra callback: print and write the sweep summary at the end of every multirun."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not sweep_dir.is_dir():
            return
        try:
            text = summarize(sweep_dir)
        except Exception as error:  # a summary must never turn a finished sweep into a failure
            log.warning("could not write the sweep summary of %s: %r", sweep_dir, error)
            return
        print(text, flush=True)
