"""PNG plots of the benches' JSON (matplotlib, from the ``bench`` extra; no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: works without a display
import matplotlib.pyplot as plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _load_note(result: dict) -> str:
    return (
        f"{result.get('cpus')} CPUs, load {result['load_average_before'][0]} → "
        f"{result['load_average_after'][0]} (shared machine)"
    )


def plot_agent_scale(result: dict, out: Path) -> list[Path]:
    sizes = result["sizes"]
    n = [s["services"] for s in sizes]
    paths = []

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ax = axes[0]
    ax.plot(n, [s["full_sync_seconds"] for s in sizes], "o-", label="full sync (agent)")
    ax.plot(
        n,
        [s["cold_start_to_rules_applied_seconds"] for s in sizes],
        "s-",
        label="cold start → rules in",
    )
    ax.plot(
        n, [s["restart_to_rules_applied_seconds"] for s in sizes], "^-", label="restart → rules in"
    )
    if all("api_source" in s for s in sizes):
        ax.plot(
            n,
            [s["api_source"]["start_to_rules_applied_seconds"] for s in sizes],
            "v--",
            label="API source: start → rules in",
        )
    ax.axhline(0.4, color="grey", ls=":", lw=1)
    ax.axhline(1.5, color="grey", ls="--", lw=1)
    ax.set(
        xlabel="Services",
        ylabel="seconds",
        title="full sync and start (targets at 10k: 0.4 s, 1.5 s)",
        xscale="log",
    )
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.plot(
        n,
        [s["endpoint_change_to_rules_applied_ms"]["p50"] for s in sizes],
        "o-",
        label="→ rules p50",
    )
    ax.plot(
        n,
        [s["endpoint_change_to_rules_applied_ms"]["p99"] for s in sizes],
        "o--",
        label="→ rules p99",
    )
    ax.plot(
        n, [s["endpoint_change_to_hcnp_flip_ms"]["p99"] for s in sizes], "s--", label="→ hcnp p99"
    )
    if all("api_source" in s for s in sizes):
        ax.plot(
            n,
            [s["api_source"]["watch_event_to_hcnp_flip_ms"]["p99"] for s in sizes],
            "v:",
            label="API watch → hcnp p99",
        )
    for y in (5, 15, 20):
        ax.axhline(y, color="grey", ls=":", lw=1)
    ax.set(
        xlabel="Services",
        ylabel="ms",
        title="one endpoint change (targets 5 / 15 / 20 ms)",
        xscale="log",
    )
    ax.legend(fontsize=7)
    ax = axes[2]
    ax.plot(n, [s["rss_mb"] for s in sizes], "o-", label="resident (store source)")
    if all("api_source" in s for s in sizes):
        ax.plot(n, [s["api_source"]["rss_mb"] for s in sizes], "v--", label="resident (API source)")
    ax.axhline(150, color="grey", ls=":", lw=1)
    ax.set(
        xlabel="Services",
        ylabel="MB",
        title="agent memory, from /proc (target 150 MB at 10k)",
        xscale="log",
    )
    ax.legend(fontsize=7)
    fig.suptitle(f"nodeport-lb agent at scale — {_load_note(result)}", fontsize=9)
    paths.append(_save(fig, out / "agent_scale_curves.png"))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for s in sizes:
        for ax, key in zip(axes, ("to_rules", "to_hcnp"), strict=True):
            values = sorted(s["samples_ms"][key])
            ax.plot(
                values,
                [(i + 1) / len(values) for i in range(len(values))],
                label=f"{s['services']} Services",
            )
    for ax, title in zip(axes, ("change → rules applied", "change → hcnp flipped"), strict=True):
        ax.set(xlabel="ms", ylabel="fraction of changes", title=title, xscale="log")
        ax.legend(fontsize=7)
    fig.suptitle(f"latency distributions — {_load_note(result)}", fontsize=9)
    paths.append(_save(fig, out / "agent_scale_latency.png"))

    fig, ax = plt.subplots(figsize=(7, 4))
    stages = list(sizes[0]["profile"]["change_stages_ms_p50"])
    bottom = [0.0] * len(sizes)
    labels = [str(x) for x in n]
    for stage in stages:
        values = [s["profile"]["change_stages_ms_p50"][stage] for s in sizes]
        ax.bar(labels, values, bottom=bottom, label=stage)
        bottom = [a + b for a, b in zip(bottom, values, strict=True)]
    ax.set(xlabel="Services", ylabel="ms (median per change)", title="where one change's time goes")
    ax.legend(fontsize=7)
    paths.append(_save(fig, out / "agent_scale_profile.png"))
    return paths


def plot_datapath(result: dict, out: Path) -> list[Path]:
    summary = result["summary"]
    paths = list(next(iter(summary.values())))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, (mode, entries) in zip(axes, summary.items(), strict=True):
        ratios = [entries[p]["ratio_to_direct"] for p in paths]
        bars = ax.bar(paths, ratios, color=["grey" if p == "direct" else "C0" for p in paths])
        for bar, p in zip(bars, paths, strict=True):
            paws = entries[p]["pod_paws_timewait_rejects"]
            ax.annotate(
                f"{entries[p]['requests_per_second']:,}/s\np99 {entries[p]['latency_p99_ms']} ms"
                + (f"\nPAWS drops {paws}" if paws else ""),
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
            )
        ax.axhline(0.95, color="grey", ls=":", lw=1)
        ax.axhline(0.9, color="grey", ls="--", lw=1)
        ax.set(title=f"{mode}: requests/s as a ratio to direct", ylabel="ratio to direct")
        ax.set_ylim(0, max(1.2, max(ratios) * 1.25))
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(
        f"data path (wrk {result['wrk']['connections']} connections) — {_load_note(result)}",
        fontsize=9,
    )
    return [_save(fig, out / "datapath.png")]


def plot_lab_failover(result: dict, out: Path) -> list[Path]:
    bins = result.get("master_lb_crash_timeline_100ms")
    if not bins:
        return []
    fig, ax = plt.subplots(figsize=(10, 3.5))
    starts = [b["from_s"] for b in bins]
    ok = [b["ok"] for b in bins]
    failed = [b["failed"] for b in bins]
    ax.bar(starts, ok, width=0.1, align="edge", color="C2", label="ok")
    ax.bar(starts, failed, width=0.1, align="edge", bottom=ok, color="C3", label="failed")
    ax.axvline(0, color="black", lw=1)
    ax.annotate(
        "lb1 power cut",
        (0, max(o + f for o, f in zip(ok, failed, strict=True))),
        xytext=(5, -10),
        textcoords="offset points",
        fontsize=8,
    )
    recovered = result.get("master_lb_crashed_to_requests_ok_s")
    title = "requests through the VIP per 100 ms while the master LB crashes"
    if recovered is not None:
        title += f" (ok again after {recovered} s)"
    ax.set(xlabel="seconds from the crash", ylabel="requests", title=title)
    ax.legend(fontsize=8)
    fig.suptitle(_load_note(result), fontsize=8)
    return [_save(fig, out / "lab_failover.png")]


def plot_site_noop(result: dict, out: Path) -> list[Path]:
    tasks = list(reversed(result["slowest_tasks"]))
    fig, (runs, slowest) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [1, 3]})
    labels = ["ping all"] + [f"no-op {i + 1}" for i in range(len(result["noop_runs_s"]))]
    seconds = [result["baseline_ping_all_s"], *result["noop_runs_s"]]
    colors = ["C7"] + ["C0"] * len(result["noop_runs_s"])
    runs.bar(labels, seconds, color=colors)
    runs.tick_params(axis="x", labelsize=7)
    runs.axhline(result["target_noop_s"], color="grey", ls="--", lw=1, label="target")
    runs.set(ylabel="seconds", title="site.yml with nothing to change")
    runs.legend(fontsize=8)
    slowest.barh(
        [f"{t['task'][:60]} ({t['hosts']})" for t in tasks], [t["slowest_s"] for t in tasks]
    )
    slowest.set(xlabel="seconds (slowest host)", title="the slowest tasks of the last run")
    slowest.tick_params(axis="y", labelsize=7)
    fig.suptitle(_load_note(result), fontsize=8)
    return [_save(fig, out / "site_noop.png")]
