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
    for name, label in [
        ("requests", "bare `requests.Session` loop (trust_env off)"),
        ("urllib3", "bare `urllib3` loop"),
        ("workers_1", "django-hooks, 1 `SimpleWorker` process"),
        ("workers_2", "django-hooks, 2 `SimpleWorker` processes"),
        ("fork_1", "django-hooks, 1 forking `Worker` (RQ's default)"),
        ("pool_2", "django-hooks, `rqworker-pool --num-workers 2`"),
    ]:
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
        targets.append(
            f"| end-to-end, 1 worker, SQLite ≥ 0.6 × requests loop | {one:.2f} | "
            f"{verdict(one >= 0.6)} |"
        )
        targets.append(
            f"| end-to-end, 2 workers, SQLite ≥ 1.0 × requests loop | {two:.2f} | "
            f"{verdict(two >= 1.0)} |"
        )
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
        targets.append(
            f"| `send_event`, 10 endpoints ≤ 3 × plain insert | {ratio:.1f} | "
            f"{verdict(ratio <= 3)} |"
        )
        constant = len(set(queries[:3])) == 1
        targets.append(
            f"| constant queries whatever the fan-out | {', '.join(f'{q:g}' for q in queries)} | "
            f"{verdict(constant)}{' (SQLite splits bulk inserts past ~120 rows)' if not constant else ''} |"
        )
    return lines


def fanout_section(db: str, fo: dict[str, Any], targets: list[str]) -> list[str]:
    if db == "SQLite":
        targets.append(
            f"| fan-out to {fo['endpoints']:,}: `send_event` < 1 s | "
            f"{fo['send_event_s']:.2f} s | {verdict(fo['send_event_s'] < 1)} |"
        )
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
        targets.append(
            f"| inbound ≥ 0.8 × undecorated view | {ratio:.2f} | {verdict(ratio >= 0.8)} |"
        )
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
    targets.append(
        f"| worker RSS growth {' → '.join(f'{int(k) // 1000}k' for k in mem['rss_kib'])} "
        f"< 20 MB | {mem['growth_mib']:.1f} MiB | {verdict(mem['growth_mib'] < 20)} |"
    )
    return [
        f"### Worker memory, {db}",
        "",
        f"RSS of one worker: {points} ({mem['seconds']:.0f} s).",
        "",
    ]


def slow_section(db: str, slow: dict[str, Any], targets: list[str]) -> list[str]:
    lines = [
        f"### Late receivers, {db}: {slow['transactions']} business transactions × "
        f"{slow['endpoints']} endpoints",
        "",
        "One event per `transaction.atomic()`; 2 `SimpleWorker` processes, timed from the first "
        "commit until the last webhook arrived, beside one process with 64 threads, each with "
        "its own `requests.Session` (trust_env off), POSTing the same signed bodies.",
        "",
        "| receiver answers after | 64 threads, deliveries/s | django-hooks, deliveries/s | ratio |",
        "|---|---|---|---|",
    ]
    for delay in [k for k in slow if k.isdigit()]:
        row = slow[delay]
        ratio = row["ratio"]["median"]
        lines.append(
            f"| {delay} ms | {spread(row['reference'])} | {spread(row['hooks'])} | "
            f"{spread(row['ratio'], '{:.2f}')} |"
        )
        targets.append(
            f"| late receivers ({delay} ms), {db}: ≥ 0.8 × 64 threads | {ratio:.2f} | "
            f"{verdict(ratio >= 0.8)} |"
        )
        checks = row["checks"]
        lines.append("")
        lines.append(
            f"{delay} ms: succeeded {checks['succeeded']}, duplicates "
            f"{checks['duplicates']}, bad signatures {sum(checks['bad_signatures'])}."
        )
        lines.append("")
    return lines


def latency_section(db: str, lat: dict[str, Any], targets: list[str]) -> list[str]:
    p = lat["latency_s"]
    targets.append(
        f"| latency p99 at ~200 deliveries/s, {db}: ≤ 1 s | {p['p99']:.3f} s | "
        f"{verdict(p['p99'] <= 1)} |"
    )
    return [
        f"### Latency, {db}: 20 business transactions/s × {lat['endpoints']} endpoints",
        "",
        f"{lat['transactions']} transactions ({lat['offered_per_second']:,.0f} deliveries/s "
        f"offered), receivers answering after {lat['delay_ms']} ms, 2 workers; from "
        "`event.created_at` to the webhook's arrival at the receiver.",
        "",
        "| p50 | p95 | p99 | max |",
        "|---|---|---|---|",
        f"| {p['p50']:.3f} s | {p['p95']:.3f} s | {p['p99']:.3f} s | {p['p100']:.3f} s |",
        "",
        f"{lat['arrived']:,} arrived, {lat['duplicates']} duplicates.",
        "",
    ]


def noisy_section(db: str, noisy: dict[str, Any], targets: list[str]) -> list[str]:
    ratio = noisy["ratio"]["median"]
    healthy = noisy["endpoints"] - 1
    targets.append(
        f"| one hanging endpoint, {db}: healthy endpoints ≤ 1.5 × their time "
        f"without it | {ratio:.2f} | {verdict(ratio <= 1.5)} |"
    )
    seconds = noisy["seconds"]
    return [
        f"### One hanging endpoint, {db}",
        "",
        f"{noisy['transactions']} business transactions, each one event to {noisy['endpoints']} "
        f"endpoints: seconds until the {healthy} healthy ones (answering after "
        f"{noisy['delay_ms']} ms) had their {noisy['transactions'] * healthy} deliveries, with "
        f"the tenth answering after {noisy['delay_ms']} ms too or never (held until "
        f"TIMEOUT = {noisy['timeout_s']:g} s). 2 workers.",
        "",
        "| tenth endpoint | seconds for the healthy ones |",
        "|---|---|",
        f"| healthy | {spread(seconds['all_healthy'], '{:.2f}')} |",
        f"| hanging | {spread(seconds['one_hanging'], '{:.2f}')} |",
        "",
        f"Ratio {spread(noisy['ratio'], '{:.2f}')}; attempts held open by the hanging endpoint "
        f"{noisy['held_at_hanging_endpoint']}; duplicates {noisy['duplicates']}.",
        "",
    ]


def e2e_tx_section(db: str, e2e: dict[str, Any], targets: list[str]) -> list[str]:
    ratio = e2e["ratio"]["median"]
    targets.append(
        f"| end-to-end with firing, {db}: ≥ 0.8 × requests loop | {ratio:.2f} | "
        f"{verdict(ratio >= 0.8)} |"
    )
    firing = e2e["checks"]["firing_s"]
    return [
        f"### End-to-end from the business transactions, {db}: {e2e['transactions']} "
        f"transactions × {e2e['endpoints']} endpoints",
        "",
        "Instant receiver, 2 workers; from before the first transaction to the last arrival "
        "(firing the transactions included), beside a bare sequential `requests.Session` loop "
        "(trust_env off) POSTing the same signed bodies.",
        "",
        "| sender | deliveries/s |",
        "|---|---|",
        f"| bare `requests.Session` loop | {spread(e2e['reference'])} |",
        f"| django-hooks, 2 workers | {spread(e2e['hooks'])} |",
        "",
        f"Ratio {spread(e2e['ratio'], '{:.2f}')}; firing the transactions took "
        f"{', '.join(f'{f:.2f}' for f in firing)} s; duplicates {e2e['checks']['duplicates']}.",
        "",
    ]


def request_tx_section(db: str, rt: dict[str, Any], targets: list[str]) -> list[str]:
    ratio = rt["ratio"]["median"]
    trips = rt["redis_round_trips_per_commit"]
    targets.append(
        f"| business transaction with an event, {db}: ≤ 2 × without | {ratio:.1f} | "
        f"{verdict(ratio <= 2)} |"
    )
    targets.append(
        f"| Redis round trips per commit, {db}: ≤ 1 | {trips:.2f} | {verdict(trips <= 1)} |"
    )
    commands = ", ".join(f"{k} {v:.2f}" for k, v in rt["redis_commands"].items())
    first = ", ".join(f"{k} {v}" for k, v in rt["redis_commands_first_commit"].items())
    return [
        f"### Request path of a business transaction, {db}: {rt['transactions']} transactions",
        "",
        f"Each `transaction.atomic()` creates an `Order` and calls `send_event` (to "
        f"{rt['endpoints']} endpoints), no workers running; beside the same transactions "
        "without webhooks.",
        "",
        "| | ms per transaction | queries per transaction |",
        "|---|---|---|",
        f"| with `send_event` | {spread(rt['ms_per_transaction'], '{:.2f}')} | "
        f"{rt['queries_per_transaction']} |",
        f"| `Order` alone | {spread(rt['plain_ms_per_transaction'], '{:.2f}')} | "
        f"{rt['plain_queries_per_transaction']} |",
        "",
        f"Ratio {spread(rt['ratio'], '{:.1f}')}. Redis per commit: "
        f"{rt['redis_commands_per_commit']:.2f} commands ({commands}) in {trips:.2f} round "
        f"trips; the commit that enqueues a drain: {first} in "
        f"{rt['redis_round_trips_first_commit']} round trips.",
        "",
    ]


def crash_section(db: str, crash: dict[str, Any], targets: list[str]) -> list[str]:
    seconds = crash["seconds_to_all_succeeded"]
    ok = seconds is not None and seconds <= 60
    shown = "never (180 s)" if seconds is None else f"{seconds:.1f} s"
    targets.append(
        f"| worker SIGKILLed, {db}: all succeeded ≤ 60 s after | {shown} | {verdict(ok)} |"
    )
    dup_ok = crash["duplicates"] <= crash["held_by_killed_worker"]
    targets.append(
        f"| worker SIGKILLed, {db}: duplicates ≤ deliveries it held | "
        f"{crash['duplicates']} ≤ {crash['held_by_killed_worker']} | "
        f"{verdict(dup_ok)} |"
    )
    return [
        f"### A worker killed mid-run, {db}: {crash['deliveries']:,} deliveries",
        "",
        f"2 workers (LEASE {crash['lease_s']:g} s), receiver answering after 100 ms. One worker, "
        f"once busy, frozen (SIGSTOP) holding {crash['held_by_killed_worker']} claimed "
        f"deliveries, then SIGKILLed ({crash['arrived_at_kill']:,} had arrived) and replaced at "
        f"once: all {crash['succeeded']:,} succeeded {shown} after the kill; "
        f"{crash['duplicates']} duplicates at the receiver.",
        "",
    ]


def scale_section(db: str, scale: dict[str, Any], targets: list[str]) -> list[str]:
    counts = [k for k in scale if k.isdigit()]
    one = scale[counts[0]]["per_second"]
    lines = [
        f"### Scaling out, {db}: receivers answering after {scale['delay_ms']} ms, "
        f"{scale['endpoints']} endpoints",
        "",
        "One event per business transaction; from the first commit to the last arrival.",
        "",
        "| worker processes | deliveries | deliveries/s | × 1 worker | duplicates | drain jobs per worker |",
        "|---|---|---|---|---|---|",
    ]
    duplicates = 0
    for count in counts:
        row = scale[count]
        duplicates += row["duplicates"]
        lines.append(
            f"| {count} | {row['deliveries']:,} | {row['per_second']:,.0f} | "
            f"{row['per_second'] / one:.2f} | {row['duplicates']} | "
            f"{row.get('drain_jobs_per_worker', '?')} |"
        )
    backlog = scale.get("backlog")
    if backlog:
        duplicates += backlog["duplicates"]
        lines += [
            "",
            f"The same {backlog['deliveries']:,} deliveries recorded in one commit "
            f"(a backlog), {backlog['workers']} workers: {backlog['per_second']:,.0f} "
            f"deliveries/s, drain jobs per worker {backlog.get('drain_jobs_per_worker')}.",
        ]
    targets.append(
        f"| scaling out, {db}: no duplicates | {duplicates} | {verdict(duplicates == 0)} |"
    )
    return [*lines, ""]


def worker_log_section(db: str, problems: list[str]) -> list[str]:
    if not problems:
        return [f"Worker stderr, {db}: nothing logged.", ""]
    shown = problems[:20]
    more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
    return [
        f"Worker stderr, {db}: {len(problems)} lines{more}:",
        "",
        "```",
        *[line.split(": ", 1)[-1] for line in shown],
        "```",
        "",
    ]


NEW_SECTIONS = [
    ("slow", slow_section),
    ("latency", latency_section),
    ("noisy", noisy_section),
    ("e2e_tx", e2e_tx_section),
    ("request_tx", request_tx_section),
    ("crash", crash_section),
    ("scale", scale_section),
]


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
        for key, section in NEW_SECTIONS:
            if key in res:
                body += section(db, res[key], targets)
        if "worker_log_problems" in res:
            body += worker_log_section(db, res["worker_log_problems"])
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
