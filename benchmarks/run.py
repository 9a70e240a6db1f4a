"""``make bench``: every benchmark on SQLite and on PostgreSQL, written to benchmarks/RESULTS.md.

PostgreSQL is ``BENCH_DATABASE_URL`` (or ``DATABASE_URL``) when set; otherwise a throwaway server
when Debian's PostgreSQL is installed; otherwise it is skipped and RESULTS.md says so.
A benchmark reports; it never fails the build on a figure.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import write_report  # noqa: E402
from django_hooks.testing import find_redis_server, free_port, local_redis  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
#: Every benchmark of suite.py (``--only`` picks some); ``scale`` runs on PostgreSQL only.
ALL = "e2e,request,fanout,inbound,memory,slow,latency,noisy,e2e_tx,request_tx,crash,scale"


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        yield None
        return
    bindir = Path(binaries[-1]).parent
    workdir = Path(tempfile.mkdtemp(prefix="django-hooks-bench-pg-"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(workdir, "postgres")
    port = free_port()
    subprocess.run(
        [
            *as_postgres,
            str(bindir / "initdb"),
            "-D",
            f"{workdir}/data",
            "-A",
            "trust",
            "-U",
            "postgres",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [
            *as_postgres,
            str(bindir / "pg_ctl"),
            "-D",
            f"{workdir}/data",
            "-l",
            f"{workdir}/log",
            "-w",
            "-o",
            f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        subprocess.run(
            [
                *as_postgres,
                str(bindir.parent / "bin" / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "bench",
            ],
            check=False,
        )
        yield f"postgres://postgres@127.0.0.1:{port}/bench"
    finally:
        subprocess.run(
            [
                *as_postgres,
                str(bindir / "pg_ctl"),
                "-D",
                f"{workdir}/data",
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            check=False,
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(workdir, ignore_errors=True)


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    redis_version = subprocess.run(
        [find_redis_server(), "--version"], capture_output=True, text=True, check=False
    ).stdout.split()[2:3]
    info = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {cpu}",
        "os": platform.platform(),
        "python": platform.python_version(),
        "redis-server": redis_version[0].removeprefix("v=") if redis_version else "?",
    }
    for package in (
        "django",
        "rq",
        "django-rq",
        "redis",
        "requests",
        "urllib3",
        "uvloop",
        "gunicorn",
        "psycopg",
    ):
        with contextlib.suppress(Exception):
            info[package] = version(package)
    return info


def run_suite(name: str, env: dict[str, str], args: argparse.Namespace) -> dict:
    out = OUT / f"{name}.json"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "suite.py"),
        "--out",
        str(out),
        "--repeat",
        str(args.repeat),
        "--only",
        args.only,
    ]
    if args.quick:
        command.append("--quick")
    started = time.monotonic()
    subprocess.run(command, env=env, check=True, timeout=1800)
    result = json.loads(out.read_text())
    result["wall_seconds"] = time.monotonic() - started
    return result


def run_transport_cost(quick: bool) -> str:
    """The transport benchmark's printed table (it needs no database)."""
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "transport_cost.py"),
        "--repeats",
        "1" if quick else "3",
        "--posts",
        "500" if quick else "2000",
    ]
    print("== HTTP client", flush=True)
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    return done.stdout if done.returncode == 0 else f"failed:\n{done.stdout}{done.stderr}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=ALL)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    results: dict[str, dict] = {}
    started = time.monotonic()
    with local_redis() as redis_url:
        base_env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        }
        base_env.pop("DATABASE_URL", None)
        if "sqlite" in args.databases:
            with tempfile.TemporaryDirectory(prefix="django-hooks-bench-") as tmp:
                env = {**base_env, "BENCH_SQLITE": f"{tmp}/bench.sqlite3"}
                print("== SQLite", flush=True)
                results["SQLite"] = run_suite("sqlite", env, args)
        if "postgresql" in args.databases:
            with throwaway_postgres() as url:
                if url is None:
                    print("== PostgreSQL: not installed, skipped", flush=True)
                else:
                    print("== PostgreSQL", flush=True)
                    env = {**base_env, "BENCH_DATABASE_URL": url}
                    only = ",".join(p for p in args.only.split(",") if p != "memory")
                    args_pg = argparse.Namespace(**{**vars(args), "only": only})
                    results["PostgreSQL"] = run_suite("postgresql", env, args_pg)
    transport_cost = run_transport_cost(args.quick)
    command = "make bench" + (" BENCH_ARGS=--quick" if args.quick else "")
    write_report(Path(args.output), results, machine(), command, time.monotonic() - started)
    with Path(args.output).open("a") as output:
        output.write(
            "\n## HTTP client: requests (the transport adapter) against the urllib3 transport it "
            "replaced\n\n`benchmarks/transport_cost.py`, instant local receiver:\n\n"
            f"```\n{transport_cost.strip()}\n```\n"
        )
    print(Path(args.output).read_text())


if __name__ == "__main__":
    main()
