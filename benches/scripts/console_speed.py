#!/usr/bin/env python3
"""The web console's speed on an archive, beside DuckDB answering the same questions.

Issue 16's figures: time to the first rows of a search and to a complete one-day histogram,
cold (page cache dropped, a fresh `infra-query serve` / a fresh DuckDB connection) and warm
(the same request again). The console's numbers are what the browser waits for: the first
NDJSON row of `/api/query` and the last byte of `/api/hits`, measured over HTTP.

    python3 benches/scripts/console_speed.py --archive DIR [--bin target/release/infra-query]
        [--word error] [--runs 3]

Cold runs write to /proc/sys/vm/drop_caches, so they need root; without it they are warm
runs and the script says so.
"""

import argparse
import datetime
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import duckdb


def drop_caches():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, archive):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--archive", archive, "--no-spool", "serve", "--http", f"127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("infra-query serve did not start")

    def url(self, path, params):
        return f"http://127.0.0.1:{self.port}{path}?{urllib.parse.urlencode(params)}"

    def get(self, path, params):
        """Seconds to the first body line and to the end, and the body."""
        t = time.perf_counter()
        with urllib.request.urlopen(self.url(path, params), timeout=120) as r:
            first_line = r.readline()
            first = time.perf_counter() - t
            rest = r.read()
        return first, time.perf_counter() - t, first_line + rest

    def first_row(self, params):
        """Seconds to the first row of `/api/query` (it may send other lines before)."""
        t = time.perf_counter()
        with urllib.request.urlopen(self.url("/api/query", params), timeout=120) as r:
            for line in r:
                obj = json.loads(line)
                if isinstance(obj, dict) and "message" in obj:
                    return time.perf_counter() - t
        raise SystemExit(f"/api/query gave no row for {params}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--archive", required=True)
    ap.add_argument("--bin", default="target/release/infra-query")
    ap.add_argument("--word", default="error")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()

    con = duckdb.connect()
    glob = f"{a.archive}/logs/*/*/*.parquet"
    # Epoch milliseconds: a TIMESTAMPTZ into Python would need pytz.
    lo, hi = con.execute(
        f"SELECT epoch_ms(min(timestamp)), epoch_ms(max(timestamp)) FROM read_parquet('{glob}')"
    ).fetchone()
    lo, hi = (datetime.datetime.fromtimestamp(t / 1000, datetime.timezone.utc) for t in (lo, hi))
    day = lo.date() + datetime.timedelta(days=1)  # the first whole day
    day_from = f"{day}T00:00:00Z"
    day_to = f"{day + datetime.timedelta(days=1)}T00:00:00Z"
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0]
    con.close()
    print(f"archive {a.archive}: {rows:,} rows, {lo} .. {hi}; histogram day {day}")

    search = {"q": a.word, "limit": "500"}
    hist = {"q": a.word, "from": day_from, "to": day_to, "buckets": "144"}
    hist_all = {"from": day_from, "to": day_to, "buckets": "144"}
    like = a.word.replace("'", "''")
    duck = {
        "first rows": f"SELECT timestamp, hostname, message FROM read_parquet('{glob}', hive_partitioning = true) "
        f"WHERE message ILIKE '%{like}%' ORDER BY timestamp DESC LIMIT 500",
        "histogram (search)": f"SELECT time_bucket(INTERVAL 10 MINUTE, timestamp) AS b, count(*) "
        f"FROM read_parquet('{glob}', hive_partitioning = true) WHERE timestamp >= TIMESTAMPTZ '{day_from}' "
        f"AND timestamp < TIMESTAMPTZ '{day_to}' AND message ILIKE '%{like}%' GROUP BY b ORDER BY b",
        "histogram (all)": f"SELECT time_bucket(INTERVAL 10 MINUTE, timestamp) AS b, count(*) "
        f"FROM read_parquet('{glob}', hive_partitioning = true) WHERE timestamp >= TIMESTAMPTZ '{day_from}' "
        f"AND timestamp < TIMESTAMPTZ '{day_to}' GROUP BY b ORDER BY b",
    }

    cold_ok = True
    results = {}

    def record(name, cold, secs):
        results.setdefault(name, {"cold": [], "warm": []})["cold" if cold else "warm"].append(secs)

    for run in range(a.runs):
        # infra-query: a fresh server per run, its first request of each kind cold.
        for name, fn in [
            ("first rows", lambda s: s.first_row(search)),
            ("histogram (search)", lambda s: s.get("/api/hits", hist)[1]),
            ("histogram (all)", lambda s: s.get("/api/hits", hist_all)[1]),
        ]:
            cold_ok &= drop_caches()
            s = Server(a.bin, a.archive)
            try:
                record(("infra-query", name), True, fn(s))
                record(("infra-query", name), False, fn(s))
            finally:
                s.stop()
        for name, sql in duck.items():
            cold_ok &= drop_caches()
            c = duckdb.connect()
            t = time.perf_counter()
            c.sql(sql).to_arrow_table()
            record(("duckdb", name), True, time.perf_counter() - t)
            t = time.perf_counter()
            c.sql(sql).to_arrow_table()
            record(("duckdb", name), False, time.perf_counter() - t)
            c.close()

    if not cold_ok:
        print("note: could not drop the page cache (not root): 'cold' is a fresh process only")
    print(f"best of {a.runs}, seconds; search word {a.word!r}; DuckDB {duckdb.__version__}")
    print("| question | infra-query cold | infra-query warm | DuckDB cold | DuckDB warm |")
    print("|---|---:|---:|---:|---:|")
    for name in duck:
        iq, dd = results[("infra-query", name)], results[("duckdb", name)]
        print(
            f"| {name} | {min(iq['cold']):.3f} | {min(iq['warm']):.3f} | "
            f"{min(dd['cold']):.3f} | {min(dd['warm']):.3f} |"
        )


if __name__ == "__main__":
    sys.exit(main())
