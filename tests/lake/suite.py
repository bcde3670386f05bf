#!/usr/bin/env python3
"""The reader suite of the lake tests, in one engine: reads the archive at ARCHIVE as that
engine reads hive-partitioned Parquet by default and prints the answers of the five
queries as JSON: {"q1": [[cell, ...], ...], ...}, every cell a string ("" for null).

usage: suite.py ENGINE ARCHIVE LO HI
  ENGINE  duckdb | duckdb-cast | pyarrow | polars | spark
  LO, HI  the inclusive time range of q4, RFC 3339 with microseconds and "Z"

duckdb-cast reads through a view that declares the current table types, which is how
DuckDB reads an archive that still holds schema version 1 files (nanoseconds, unsigned).
The queries (infra-query runs the same ones, in tests/tests/lake.rs):
  q1 rows per host and day; q2 severity histogram; q3 top 10 processes;
  q4 per host: rows in [LO, HI], of which priority <= 3, min and max timestamp (µs);
  q5 rows per value of extra['req@32473.zone'].
"""
import datetime as dt
import json
import sys

ZONE_KEY = "req@32473.zone"


def cell(v):
    if v is None:
        return ""
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return str(v)


def rows(it):
    return [[cell(v) for v in r] for r in it]


def parse_ts(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def micros(t):
    return (t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)


def duckdb_suite(archive, lo, hi, cast):
    import duckdb

    con = duckdb.connect()
    glob = f"{archive}/logs/**/*.parquet"
    if cast:
        con.execute("SET TimeZone = 'UTC'")
        # DuckDB's own ns -> µs cast rounds to the nearest microsecond; the archive's rule
        # (infra-query, migrate) truncates, so go through the epoch.
        con.execute(f"""CREATE VIEW logs AS SELECT * REPLACE (
            make_timestamp(epoch_ns(timestamp) // 1000)::TIMESTAMPTZ AS timestamp,
            make_timestamp(epoch_ns(ingested_at) // 1000)::TIMESTAMPTZ AS ingested_at,
            CAST(priority AS TINYINT) AS priority,
            CAST(uid AS BIGINT) AS uid,
            CAST(template_id AS BIGINT) AS template_id)
            FROM read_parquet('{glob}', union_by_name = true)""")
    else:
        con.execute(f"CREATE VIEW logs AS SELECT * FROM read_parquet('{glob}')")
    lo_s, hi_s = (s.replace("T", " ").replace("Z", "+00") for s in (lo, hi))
    q = {
        "q1": "SELECT hostname, CAST(log_date AS VARCHAR), count(*) FROM logs GROUP BY ALL",
        "q2": "SELECT priority, severity, count(*) FROM logs GROUP BY ALL",
        "q3": """SELECT process_name, count(*) AS n FROM logs WHERE process_name IS NOT NULL
                 GROUP BY ALL ORDER BY n DESC, process_name LIMIT 10""",
        "q4": f"""SELECT hostname, count(*), count(*) FILTER (WHERE priority <= 3),
                  epoch_us(min(timestamp)), epoch_us(max(timestamp)) FROM logs
                  WHERE timestamp >= TIMESTAMPTZ '{lo_s}' AND timestamp <= TIMESTAMPTZ '{hi_s}'
                  GROUP BY ALL""",
        "q5": f"SELECT extra['{ZONE_KEY}'], count(*) FROM logs GROUP BY ALL",
    }
    return {k: rows(con.sql(v).fetchall()) for k, v in q.items()}


def pyarrow_suite(archive, lo, hi):
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(f"{archive}/logs")
    t = t.set_column(t.schema.get_field_index("hostname"), "hostname",
                     pc.cast(t["hostname"], pa.string()))
    t = t.set_column(t.schema.get_field_index("log_date"), "log_date",
                     pc.cast(t["log_date"], pa.string()))

    def grouped(table, keys):
        g = table.group_by(keys).aggregate([([], "count_all")])
        return [[r[k] for k in keys] + [r["count_all"]] for r in g.to_pylist()]

    out = {
        "q1": grouped(t, ["hostname", "log_date"]),
        "q2": grouped(t, ["priority", "severity"]),
    }
    named = t.filter(pc.is_valid(t["process_name"]))
    top = sorted(grouped(named, ["process_name"]), key=lambda r: (-r[1], r[0]))[:10]
    out["q3"] = top
    unit = t.schema.field("timestamp").type
    lo_v, hi_v = (pa.scalar(parse_ts(s), type=unit) for s in (lo, hi))
    sel = t.filter(pc.and_(pc.greater_equal(t["timestamp"], lo_v),
                           pc.less_equal(t["timestamp"], hi_v)))
    sel = sel.append_column("urgent", pc.cast(pc.less_equal(sel["priority"], 3), pa.int64()))
    sel = sel.append_column("us", pc.cast(sel["timestamp"], pa.int64()))
    g = sel.group_by("hostname").aggregate(
        [([], "count_all"), ("urgent", "sum"), ("us", "min"), ("us", "max")])
    out["q4"] = [[r["hostname"], r["count_all"], r["urgent_sum"], r["us_min"], r["us_max"]]
                 for r in g.to_pylist()]
    zone = pc.map_lookup(t["extra"], ZONE_KEY, "first")
    z = pa.table({"zone": zone})
    out["q5"] = grouped(z, ["zone"])
    return {k: rows(v) for k, v in out.items()}


def polars_suite(archive, lo, hi):
    import polars as pl

    lf = pl.scan_parquet(f"{archive}/logs/")
    cnt = pl.len().alias("n")
    lo_v, hi_v = parse_ts(lo), parse_ts(hi)
    # polars 2 reads a Parquet MAP as its own map type.
    zone = pl.col("extra").map.get(ZONE_KEY)
    q = {
        "q1": lf.group_by(pl.col("hostname"), pl.col("log_date").cast(pl.String)).agg(cnt),
        "q2": lf.group_by("priority", "severity").agg(cnt),
        "q3": lf.filter(pl.col("process_name").is_not_null()).group_by("process_name")
              .agg(cnt).sort(["n", "process_name"], descending=[True, False]).head(10),
        "q4": lf.filter((pl.col("timestamp") >= lo_v) & (pl.col("timestamp") <= hi_v))
              .group_by("hostname").agg(
                  cnt, (pl.col("priority") <= 3).sum().alias("urgent"),
                  pl.col("timestamp").min().dt.epoch("us").alias("min"),
                  pl.col("timestamp").max().dt.epoch("us").alias("max")),
        "q5": lf.group_by(zone.alias("zone")).agg(cnt),
    }
    return {k: rows(v.collect().iter_rows()) for k, v in q.items()}


def spark_suite(archive, lo, hi):
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("infralog-lake")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "2")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        spark.read.parquet(f"{archive}/logs").createOrReplaceTempView("logs")
        lo_us, hi_us = micros(parse_ts(lo)), micros(parse_ts(hi))
        q = {
            "q1": """SELECT hostname, CAST(log_date AS STRING), count(*) FROM logs
                     GROUP BY 1, 2""",
            "q2": "SELECT priority, severity, count(*) FROM logs GROUP BY 1, 2",
            "q3": """SELECT process_name, count(*) AS n FROM logs WHERE process_name IS NOT NULL
                     GROUP BY 1 ORDER BY n DESC, process_name LIMIT 10""",
            "q4": f"""SELECT hostname, count(*), count_if(priority <= 3),
                      unix_micros(min(timestamp)), unix_micros(max(timestamp)) FROM logs
                      WHERE timestamp >= timestamp_micros({lo_us})
                        AND timestamp <= timestamp_micros({hi_us})
                      GROUP BY 1""",
            "q5": f"SELECT extra['{ZONE_KEY}'], count(*) FROM logs GROUP BY 1",
        }
        return {k: rows(tuple(r) for r in spark.sql(v).collect()) for k, v in q.items()}
    finally:
        spark.stop()


def main():
    engine, archive, lo, hi = sys.argv[1:5]
    if engine == "duckdb":
        out = duckdb_suite(archive, lo, hi, cast=False)
    elif engine == "duckdb-cast":
        out = duckdb_suite(archive, lo, hi, cast=True)
    elif engine == "pyarrow":
        out = pyarrow_suite(archive, lo, hi)
    elif engine == "polars":
        out = polars_suite(archive, lo, hi)
    elif engine == "spark":
        out = spark_suite(archive, lo, hi)
    else:
        sys.exit(f"unknown engine {engine}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
