"""Real processes for fault injection: a Redis that can crash and come back on the same port,
and RQ worker subprocesses that can be SIGKILLed, sharing the test database."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django_hooks.testing import find_redis_server, free_port, redis_answers, start_redis_server

ROOT = Path(__file__).resolve().parents[2]


def wait_until(condition: Callable[[], Any], *, timeout: float, what: str, every=0.05) -> Any:
    """Poll ``condition`` until it is truthy; raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


class RedisServer:
    """A redis-server without persistence: a restart comes back empty, as a crash without AOF."""

    def __init__(self, workdir: str | None = None) -> None:
        self.port = free_port()
        self.binary = find_redis_server()
        self._tmp = tempfile.TemporaryDirectory(prefix="hooks-redis-") if workdir is None else None
        self.workdir = workdir or self._tmp.name  # type: ignore[union-attr]
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> None:
        self.process = start_redis_server(self.binary, self.port, self.workdir)
        wait_until(self.ping, timeout=timeout, what=f"redis-server on port {self.port}")

    def ping(self) -> bool:
        return redis_answers(self.port)

    def crash(self) -> None:
        """SIGKILL the server: every job, queued or scheduled, is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.crash()
        self.start()

    def close(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self._tmp is not None:
            self._tmp.cleanup()


class WorkerPool:
    """``rqworker`` subprocesses (SimpleWorker, with the scheduler) on the delivery queue."""

    def __init__(
        self,
        *,
        db_name: str,
        redis_url: str,
        settings: dict[str, Any] | None = None,
        db_options: dict[str, Any] | None = None,
        logdir: str | None = None,
        settings_module: str = "tests.reliability.worker_settings",
    ) -> None:
        self.redis_url = redis_url
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "REDIS_URL"},
            "DJANGO_SETTINGS_MODULE": settings_module,
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "HOOKS_DB_NAME": db_name,
            "HOOKS_REDIS_URL": redis_url,
            "HOOKS_SETTINGS": json.dumps(settings or {}),
            "HOOKS_DB_OPTIONS": json.dumps(db_options or {}),
        }
        self._tmp = tempfile.TemporaryDirectory(prefix="hooks-workers-") if logdir is None else None
        self.logdir = Path(logdir or self._tmp.name)  # type: ignore[union-attr]
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.started = 0
        self.killed = 0
        self.keep = 0  # as a process supervisor: keep this many workers running (0: don't)

    def start(self, count: int = 1, *, wait: bool = True) -> list[str]:
        names = []
        for _ in range(count):
            self.started += 1
            name = f"hooks-worker-{os.getpid()}-{self.started}"
            log = open(self.logdir / f"{name}.log", "wb")  # noqa: SIM115
            self.workers[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "django",
                    "rqworker",
                    "default",
                    "--worker-class",
                    "rq.worker.SimpleWorker",
                    "--with-scheduler",
                    "--name",
                    name,
                    "--verbosity",
                    "0",
                ],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            names.append(name)
        if wait:
            self.wait_ready(names)
        return names

    def command(self, name: str, *args: str) -> None:
        """Run ``manage.py <args>`` (e.g. ``hooks_sweep --loop 1``) alongside the workers."""
        log = open(self.logdir / f"{name}.log", "wb")  # noqa: SIM115
        self.workers[name] = subprocess.Popen(
            [sys.executable, "-m", "django", *args],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def registered(self) -> dict[str, str]:
        """Live workers' names and RQ states (``idle``, ``busy``...) as Redis knows them."""
        from redis import Redis
        from rq import Worker

        connection = Redis.from_url(self.redis_url)
        try:
            return {
                w.name: str(w.get_state())
                for w in Worker.all(connection=connection)
                if w.name in self.live()
            }
        finally:
            connection.close()

    def wait_ready(self, names: list[str], timeout: float = 30) -> None:
        def ready() -> bool:
            for name in names:
                if self.workers[name].poll() is not None:
                    raise RuntimeError(f"worker {name} exited:\n{self.log_tail(name)}")
            return set(names) <= set(self.registered())

        wait_until(ready, timeout=timeout, what=f"workers {names} to register")

    def top_up(self) -> None:
        """Start workers for those that exited, up to ``keep`` (what systemd or Kubernetes do)."""
        running = [name for name in self.live() if name.startswith("hooks-worker")]
        if len(running) < self.keep:
            self.start(self.keep - len(running), wait=False)

    def live(self) -> list[str]:
        return [name for name, p in self.workers.items() if p.poll() is None]

    def pid(self, name: str) -> int:
        return self.workers[name].pid

    def freeze(self, name: str) -> None:
        """SIGSTOP: the worker can neither claim nor write anything until killed or resumed."""
        os.kill(self.workers[name].pid, signal.SIGSTOP)

    def kill(self, name: str) -> None:
        process = self.workers[name]
        process.kill()
        process.wait(timeout=10)
        self.killed += 1

    def idle(self) -> bool:
        """Every live worker is registered and idle (none holds a job)."""
        live = self.live()
        states = self.registered()
        return bool(live) and all(states.get(name) == "idle" for name in live)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.logdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def logs(self, tail: int | None = 40) -> str:
        """What the workers printed: the last ``tail`` lines of each, or all of it."""
        if tail is None:
            return "\n".join(
                (self.logdir / f"{n}.log").read_text(errors="replace") for n in self.workers
            )
        return "\n".join(f"--- {name}\n{self.log_tail(name, tail)}" for name in self.workers)

    def stop(self) -> None:
        """SIGKILL every worker and what it forked (RQ's scheduler outlives a killed worker)."""
        for process in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        if self._tmp is not None:
            self._tmp.cleanup()


# -- Django side (the test process) ----------------------------------------------------------


def make_endpoints(receiver: Any, count: int, prefix: str = "/e") -> dict[int, str]:
    """``count`` endpoints on ``receiver`` subscribed to everything; their ids and paths."""
    from django_hooks.models import Endpoint

    paths = {}
    for i in range(count):
        path = f"{prefix}{i}"
        paths[Endpoint.objects.create(url=receiver.url(path), event_types=[]).pk] = path
    return paths


def expected_keys(paths: dict[int, str]) -> set[tuple[str, str]]:
    """Every ``(path, webhook-id)`` the receiver must see for the deliveries in the database."""
    from django_hooks.models import Delivery

    return {(paths[ep], ev) for ep, ev in Delivery.objects.values_list("endpoint_id", "event_id")}


def status_counts() -> dict[str, int]:
    from django.db.models import Count

    from django_hooks.models import Delivery

    rows = Delivery.objects.values_list("status").annotate(n=Count("pk")).order_by()
    return {status: n for status, n in rows}


def quiet(pool: WorkerPool, *, timeout: float = 60) -> None:
    """Wait until nothing is queued and no live worker holds a job, three polls in a row.

    Workers Redis no longer knows (it was flushed) are judged by the leases in the database.
    """
    from django.utils import timezone

    from django_hooks.models import Delivery
    from django_hooks.outbound.wakeups import get_queue

    streak = [0]

    def settled() -> bool:
        pool.top_up()
        ok = get_queue().count == 0
        if ok:
            states, live = pool.registered(), pool.live()
            ok = bool(live) and not any(states.get(name) == "busy" for name in live)
            if ok and not set(live) <= set(states):
                leased = Delivery.objects.filter(
                    status=Delivery.Status.PENDING, locked_until__gt=timezone.now()
                )
                ok = not leased.exists()
        streak[0] = streak[0] + 1 if ok else 0
        return streak[0] >= 3

    wait_until(
        settled, timeout=timeout, what="the queue to empty and the workers to go idle", every=0.1
    )


def recover(pool: WorkerPool, *, timeout: float = 60, rounds: int = 5) -> int:
    """What the operator's periodic ``hooks_sweep`` does once dead workers' leases run out,
    time-travelled: expire the leases only dead workers can hold, sweep, let the workers drain.
    Returns how many deliveries the sweeps re-enqueued."""
    import datetime as dt

    from django.utils import timezone

    from django_hooks.models import Delivery
    from django_hooks.outbound.sweep import sweep

    swept = 0
    for _ in range(rounds):
        quiet(pool, timeout=timeout)
        pending = Delivery.objects.filter(status=Delivery.Status.PENDING)
        if not pending.exists():
            return swept
        # Nothing queued and every live worker idle: a lease still running belongs to a dead
        # worker. Move time past it rather than wait the lease out.
        now = timezone.now()
        pending.filter(locked_until__gt=now).update(locked_until=now - dt.timedelta(seconds=1))
        swept += sweep(grace=0)
    quiet(pool, timeout=timeout)
    return swept
