"""Turn the suite's JSON figures into benchmarks/RESULTS.md, with each target met or missed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any


def spread(s: dict[str, float], fmt: str = "{:,.0f}") -> str:
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def end_to_end_section(db: str, e2e: dict[str, Any], targets: list[str]) -> list[str]:
    runs = e2e["runs"]
    ref = runs["requests"]["median"]
    lines = [
        f"### End-to-end, {db}: {e2e['events']:,} events × {e2e['endpoints']} endpoints",
        "",
        "| sender | deliveries/s, median (min–max) | × bare requests loop | × bare urllib3 loop |",
        "|---|---|---|---|",
    ]
    for name, label in [("requests", "bare `requests.Session` loop (trust_env off)"),
                        ("urllib3", "bare `urllib3` loop"),
                        ("workers_1", "django-hooks, 1 `SimpleWorker` process"),
                        ("workers_2", "django-hooks, 2 `SimpleWorker` processes"),
                        ("fork_1", "django-hooks, 1 forking `Worker` (RQ's default)"),
                        ("pool_2", "django-hooks, `rqworker-pool --num-workers 2`")]:  # fmt: skip
        if name not in runs:
            continue
        median = runs[name]["median"]
        lines.append(
            f"| {label} | {spread(runs[name])} | {median / ref:.2f} | "
            f"{median / runs['urllib3']['median']:.2f} |"
        )
    checks = e2e.get("checks", {})
    for name, values in checks.items():
        lines.append("")
        lines.append(
            f"{name.replace('_', ' ')}: succeeded {values['succeeded']}, duplicates at the "
            f"receiver {values['duplicates']}, signatures verified on a sample "
            f"{sum(values['verified_sample'])} with {sum(values['bad_signatures'])} bad."
        )
    lines.append("")
    if db == "SQLite":
        one = runs["workers_1"]["median"] / ref
        two = runs["workers_2"]["median"] / ref
        targets.append(f"| end-to-end, 1 worker, SQLite ≥ 0.6 × requests loop | {one:.2f} | "
                       f"{verdict(one >= 0.6)} |")  # fmt: skip
        targets.append(f"| end-to-end, 2 workers, SQLite ≥ 1.0 × requests loop | {two:.2f} | "
                       f"{verdict(two >= 1.0)} |")  # fmt: skip
    return lines


def request_path_section(db: str, rp: dict[str, Any], targets: list[str]) -> list[str]:
    lines = [
        f"### Request path of `send_event`, {db}",
        "",
        "Each call in its own `transaction.atomic()` (commit and the Redis enqueue included), "
        "beside one plain `Model.objects.create()` in `transaction.atomic()` "
        f"({rp['plain_insert_queries']} queries).",
        "",
        "| matching endpoints | ms per call | plain insert, ms | ratio | queries per call |",
        "|---|---|---|---|---|",
    ]
    queries = []
    for fanout in ("1", "10", "100", "1000"):
        row = rp[fanout]
        queries.append(row["queries_per_call"])
        lines.append(
            f"| {int(fanout):,} | {spread(row['ms_per_call'], '{:.2f}')} | "
            f"{spread(row['plain_insert_ms'], '{:.2f}')} | {spread(row['ratio'], '{:.1f}')} | "
            f"{row['queries_per_call']:g} |"
        )
    lines.append("")
    if db == "SQLite":
        ratio = rp["10"]["ratio"]["median"]
        targets.append(f"| `send_event`, 10 endpoints ≤ 3 × plain insert | {ratio:.1f} | "
                       f"{verdict(ratio <= 3)} |")  # fmt: skip
        constant = len(set(queries[:3])) == 1
        targets.append(
            f"| constant queries whatever the fan-out | {', '.join(f'{q:g}' for q in queries)} | "
            f"{verdict(constant)}{' (SQLite splits bulk inserts past ~120 rows)' if not constant else ''} |"
        )
    return lines


def fanout_section(db: str, fo: dict[str, Any], targets: list[str]) -> list[str]:
    if db == "SQLite":
        targets.append(f"| fan-out to {fo['endpoints']:,}: `send_event` < 1 s | "
                       f"{fo['send_event_s']:.2f} s | {verdict(fo['send_event_s'] < 1)} |")  # fmt: skip
    return [
        f"### Fan-out, {db}: one event to {fo['endpoints']:,} endpoints",
        "",
        f"`send_event` (with commit and enqueue): {fo['send_event_s']:.2f} s; then delivered by 2 "
        f"workers in {fo['delivered_s']:.1f} s ({fo['per_second']:,.0f} deliveries/s).",
        "",
    ]


def inbound_section(db: str, ib: dict[str, Any], targets: list[str]) -> list[str]:
    ratio = ib["ratio"]["median"]
    if db == "SQLite":
        targets.append(f"| inbound ≥ 0.8 × undecorated view | {ratio:.2f} | "
                       f"{verdict(ratio >= 0.8)} |")  # fmt: skip
    return [
        f"### Inbound, {db}: {ib['requests']:,} signed calls per run through gunicorn (1 sync worker)",
        "",
        "| view | requests/s, median (min–max) |",
        "|---|---|",
        f'| `@webhook_receiver("standard")`, storing the call | {spread(ib["runs"]["verified"])} |',
        f"| undecorated, the same insert | {spread(ib['runs']['plain'])} |",
        "",
        f"Ratio {spread(ib['ratio'], '{:.2f}')}; {ib['stored']:,} calls stored.",
        "",
    ]


def memory_section(db: str, mem: dict[str, Any], targets: list[str]) -> list[str]:
    points = ", ".join(
        f"{int(k):,} deliveries: {v / 1024:.1f} MiB" for k, v in mem["rss_kib"].items()
    )
    targets.append(f"| worker RSS growth {' → '.join(f'{int(k) // 1000}k' for k in mem['rss_kib'])} "
                   f"< 20 MB | {mem['growth_mib']:.1f} MiB | {verdict(mem['growth_mib'] < 20)} |")  # fmt: skip
    return [f"### Worker memory, {db}", "", f"RSS of one worker: {points} "
            f"({mem['seconds']:.0f} s).", ""]  # fmt: skip


def write_report(
    path: Path, results: dict[str, dict], machine: dict[str, str], command: str, seconds: float
) -> None:
    targets: list[str] = []
    body: list[str] = []
    for db, res in results.items():
        body.append(f"## {db} ({res.get('database_version', '?')})")
        body.append("")
        if "end_to_end" in res:
            body += end_to_end_section(db, res["end_to_end"], targets)
        if "request_path" in res:
            body += request_path_section(db, res["request_path"], targets)
        if "fanout" in res:
            body += fanout_section(db, res["fanout"], targets)
        if "inbound" in res:
            body += inbound_section(db, res["inbound"], targets)
        if "memory" in res:
            body += memory_section(db, res["memory"], targets)
    if "PostgreSQL" not in results:
        body += ["## PostgreSQL", "", "Not measured: no PostgreSQL was available.", ""]
    head = [
        "# Benchmark results",
        "",
        f"Written by `{command}` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC in "
        f"{seconds / 60:.1f} minutes. Figures are medians with (min–max) over the runs; compare "
        "ratios measured in one run, not absolute figures across machines.",
        "",
        "| | |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in machine.items()],
        "",
        "## Targets",
        "",
        "| target | this run | |",
        "|---|---|---|",
        *targets,
        "",
    ]
    # The soak (make soak) writes its own section; a benchmark run keeps it.
    previous = path.read_text() if path.exists() else ""
    soak = previous[previous.index("## Soak") :] if "## Soak" in previous else ""
    path.write_text("\n".join(head + body) + "\n" + (f"\n{soak}" if soak else ""))
