"""How long the admin's list pages take over a large table, and how many queries they run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/some_db \
        .venv/bin/python benchmarks/admin_lists.py --deliveries 1000000

Seeds (once, with generate_series) --endpoints endpoints and --deliveries deliveries: each event
goes to the first --fanout endpoints (the rest have none, the case that once made PostgreSQL read
the whole table), one attempt each. Then times each page (median of --runs) with Django's test
client. PostgreSQL only: its planner is what matters at this size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

SEED = """
INSERT INTO django_hooks_endpoint (url, description, event_types, event_types_match, is_active,
    headers, disabled_reason, secret_ciphertext, previous_secrets, created_at, updated_at)
SELECT 'https://hooks' || n || '.example.com/', '', '[]', '', true, '{}', '', %(secret)s, '[]',
    now(), now() FROM generate_series(1, %(endpoints)s) n;
INSERT INTO django_hooks_event (id, type, data, created_at)
SELECT 'msg_' || lpad(n::text, 26, '0'), 'order.paid', '{"id": 1}',
    now() - (%(events)s - n) * interval '1 second' FROM generate_series(1, %(events)s) n;
INSERT INTO django_hooks_delivery (event_id, endpoint_id, status, attempts, last_status_code,
    last_error, created_at, completed_at)
SELECT e.id, ep.id, CASE WHEN random() < 0.05 THEN 'failed' ELSE 'succeeded' END, 1, 200, '',
    e.created_at, e.created_at
FROM django_hooks_event e CROSS JOIN LATERAL (
    SELECT id FROM django_hooks_endpoint ORDER BY id LIMIT %(fanout)s) ep;
INSERT INTO django_hooks_deliveryattempt (delivery_id, number, url, request_headers, status_code,
    response_headers, response_body, error, duration_ms, created_at)
SELECT id, 1, 'https://x.example.com/', '{}', 200, '{}', 'ok', '', (random() * 300)::int, created_at
FROM django_hooks_delivery;
ANALYZE;
"""


def main() -> None:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from django_hooks.core.signing import generate_secret
    from django_hooks.internal import encryption
    from django_hooks.models import Delivery

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--fanout", type=int, default=10, help="deliveries per event")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database.")
    call_command("migrate", verbosity=0)
    if Delivery.objects.count() < args.deliveries:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE django_hooks_endpoint, django_hooks_event CASCADE")
            cursor.execute(
                SEED,
                {
                    "secret": encryption.encrypt(generate_secret()),
                    "endpoints": args.endpoints,
                    "fanout": args.fanout,
                    "events": args.deliveries // args.fanout,
                },
            )
        seconds = time.perf_counter() - started
        print(f"seeded {Delivery.objects.count()} deliveries in {seconds:.0f}s")
    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", "b@example.com", "pw"
    )
    client = Client()
    client.force_login(user)
    endpoint = Delivery.objects.order_by("pk").values_list("endpoint_id", flat=True).first()
    pages = [
        "/admin/django_hooks/endpoint/",
        "/admin/django_hooks/endpoint/?p=2",  # the page with the busy endpoints
        f"/admin/django_hooks/endpoint/{endpoint}/change/",
        "/admin/django_hooks/delivery/",
        "/admin/django_hooks/delivery/?status=failed",
        f"/admin/django_hooks/delivery/?endpoint__id__exact={endpoint}",
        "/admin/django_hooks/event/",
        "/admin/django_hooks/event/?type=order.paid",
        "/admin/django_hooks/inboundwebhook/",
    ]
    print(f"{'page':<60} {'queries':>7} {'median ms':>10}")
    for page in pages:
        client.get(page)
        timings = []
        for _ in range(args.runs):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(page)
                timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, page
        print(f"{page:<60} {len(queries):>7} {statistics.median(timings):>10.0f}")


if __name__ == "__main__":
    main()
