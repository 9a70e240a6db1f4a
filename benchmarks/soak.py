"""Soak run: 100,000 deliveries over 100 endpoints (10 always failing, 10 flapping) with 2 RQ
worker processes, a periodic hooks_sweep, one worker SIGKILL and one Redis restart on the way.

    make soak                      # or: python benchmarks/soak.py --events 200 (a shorter run)

Prints lost deliveries (must be 0), duplicates, final status counts and worker RSS over time;
exits 1 if anything was lost. SQLite in a temporary directory, or DATABASE_URL's (throwaway)
PostgreSQL database. Real time throughout: a killed worker's batch waits out its real lease.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fastreceiver import FastReceiver, Flaky  # noqa: E402
from tests.reliability.harness import RedisServer, WorkerPool  # noqa: E402

SETTINGS = {"RETRY_SCHEDULE": [1, 2, 4, 8], "TIMEOUT": 1, "BATCH_SIZE": 20}


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so that the workers, Redis and the receiver are stopped


def main() -> int:
    signal.signal(signal.SIGTERM, stop)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="events, each to every endpoint")
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--failing", type=int, default=10, help="endpoints that always answer 500")
    parser.add_argument("--flapping", type=int, default=10, help="endpoints failing 40%% at random")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=900, help="seconds before giving up")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="hooks-soak-")
    if os.environ.get("DATABASE_URL"):
        db_name = unquote(urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/"))
    else:
        db_name = str(Path(tmp.name) / "soak.sqlite3")
    redis = RedisServer()
    logdir = os.environ.get("SOAK_LOGDIR") or tmp.name  # worker and sweeper output
    Path(logdir).mkdir(parents=True, exist_ok=True)
    pool = WorkerPool(db_name=db_name, redis_url=redis.url, settings=SETTINGS, logdir=logdir)
    os.environ.update({k: v for k, v in pool.env.items() if k.startswith(("HOOKS_", "DJANGO_"))})
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models import Count

    import django_hooks
    from django_hooks.models import Delivery, Endpoint

    receiver = FastReceiver(hang_seconds=5)
    started = time.monotonic()
    try:
        call_command("migrate", verbosity=0)
        call_command("flush", interactive=False, verbosity=0)
        paths: dict[int, str] = {}
        for i in range(args.endpoints):
            path = f"/e{i}"
            if i < args.failing:
                receiver.behave(path, 500)
            elif i < args.failing + args.flapping:
                receiver.behave(path, Flaky(0.4, status=503, seed=i))
            paths[Endpoint.objects.create(url=receiver.url(path)).pk] = path
        total = args.events * args.endpoints

        pool.start(args.workers)
        pool.command("sweeper", "hooks_sweep", "--loop", "5", "--grace", "10")
        sent = 0
        kill_at, restart_at = int(total * 0.3), int(total * 0.6)  # receiver requests
        killed = restarted = False
        rss: list[tuple[int, list[float]]] = []
        last_report = -10.0
        print(
            f"soak: {total:,} deliveries ({args.events} events x {args.endpoints} endpoints, "
            f"{args.failing} failing, {args.flapping} flapping), {args.workers} workers, "
            f"database {connection.vendor}"
        )
        while True:
            elapsed = time.monotonic() - started
            if elapsed > args.time_limit:
                print(f"soak: time limit of {args.time_limit:.0f}s reached")
                break
            if sent < args.events:  # traffic: 10 events (1,000 deliveries) per transaction
                with transaction.atomic():
                    for _ in range(min(10, args.events - sent)):
                        django_hooks.send_event("order.paid", {"order": sent, "total": "9.90"})
                        sent += 1
            # Progress from the receiver's log, not the database: this process also serves the
            # receiver, and counting 100,000 rows every tick would starve it.
            done = len(receiver.log)
            if not killed and done >= kill_at:
                victim = next(n for n in pool.live() if n.startswith("hooks-worker"))
                pool.kill(victim)
                killed = True
                print(f"[{elapsed:5.0f}s] SIGKILL worker {victim} ({done:,} requests in)")
            if not restarted and done >= restart_at:
                redis.restart()
                restarted = True
                print(f"[{elapsed:5.0f}s] redis-server restarted empty ({done:,} requests in)")
            # The supervisor (systemd, Kubernetes...) starts a worker again when one exits.
            workers = [n for n in pool.live() if n.startswith("hooks-worker")]
            if len(workers) < args.workers:
                pool.start(args.workers - len(workers), wait=False)
            if "sweeper" not in pool.live():
                pool.command("sweeper", "hooks_sweep", "--loop", "5", "--grace", "10")
            if elapsed - last_report >= 10:
                last_report = elapsed
                counts = dict(
                    Delivery.objects.values_list("status").annotate(n=Count("pk")).order_by()
                )
                finished = counts.get("succeeded", 0) + counts.get("failed", 0)
                sizes = [rss_mib(pool.pid(n)) or 0.0 for n in workers]
                rss.append((int(elapsed), sizes))
                print(
                    f"[{elapsed:5.0f}s] {counts}  worker RSS MiB "
                    f"{', '.join(f'{s:.0f}' for s in sizes)}"
                )
                if sent >= args.events and finished == total:
                    break
            time.sleep(0.5 if sent < args.events else 2)

        elapsed = time.monotonic() - started
        final = dict(Delivery.objects.values_list("status").annotate(n=Count("pk")).order_by())
        succeeded = {
            (paths[ep], ev)
            for ep, ev in Delivery.objects.filter(status="succeeded").values_list(
                "endpoint_id", "event_id"
            )
        }
        accepted = receiver.accepted
        # Lost: recorded as delivered but never accepted by the receiver, or no row at all.
        # Pending at the time limit is unfinished (still retrying), reported apart.
        lost = len(succeeded - set(accepted)) + total - sum(final.values())
        unfinished = final.get("pending", 0)
        duplicates = sum(times - 1 for times in accepted.values() if times > 1)
        print("\nsoak result")
        print(f"  deliveries      {total:,} in {elapsed:.0f}s ({total / elapsed:.0f}/s end to end)")
        print(f"  final status    {final}")
        print(f"  lost            {lost}")
        print(f"  unfinished      {unfinished} (pending at the time limit)")
        print(f"  duplicates      {duplicates} (POSTed again after a kill or a lost result)")
        print(f"  receiver        {len(receiver.log):,} requests, {len(accepted):,} accepted ids")
        print(
            f"  faults          {pool.killed} worker SIGKILL, {int(restarted)} Redis restart, "
            f"{pool.started} worker starts"
        )
        samples = rss[:: max(1, len(rss) // 12)]
        print(
            "  worker RSS MiB  "
            + "  ".join(f"{t}s:{'/'.join(f'{s:.0f}' for s in sizes)}" for t, sizes in samples)
        )
        return 1 if lost or unfinished else 0
    finally:
        pool.stop()
        receiver.close()
        redis.close()
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
