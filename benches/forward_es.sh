#!/usr/bin/env bash
# Forwarding into an OpenSearch API: infra-collector's elasticsearch sink against Debian's
# rsyslog with omelasticsearch, the same JSON lines to the same kind of server (PyPI
# osmem-server, one fresh instance per sender), in one run. Each sender reads the lines
# from a file (collector: the file source, format json; rsyslog: imfile + mmjsonparse),
# writes them with _bulk into logs-<tenant>-<yyyy.mm>, and is measured until the server
# holds every line: rows/s, CPU-seconds of the sender (utime + stime from /proc) and its
# peak RSS. The collector also runs the same file without a sink (archive only), for
# the CPU and RSS that forwarding adds.
#
#   benches/forward_es.sh [LINES] [COLLECTOR]   (defaults: 40000, target/release/infra-collector)
#   GZIP=false benches/forward_es.sh ...        (the sink's request bodies uncompressed, as rsyslog sends)
#
# Needs osmem-server (pip) and rsyslog + rsyslog-elasticsearch unpacked into
# /opt/infralog-peers/rsyslog (cargo xtask setup).
set -euo pipefail
LINES=${1:-40000}
COLLECTOR=$(readlink -f "${2:-target/release/infra-collector}")
RS=/opt/infralog-peers/rsyslog
OSMEM=$(python3 -c "import osmem_server, os; print(os.path.dirname(osmem_server.__file__))")/bin/osmem-server
W=$(mktemp -d /tmp/forward-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
TICK=$(getconf CLK_TCK)

python3 - "$LINES" > "$W/app.log" <<'EOF'
import sys
n = int(sys.argv[1])
tenants = ["alpha", "beta", "gamma"]
for i in range(n):
    print('{"time":"2026-12-07T10:%02d:%02d.%03dZ","level":"info","message":"request %d served in %d ms for user u%d path /api/v1/items/%d","tenant_id":"%s"}'
          % (i // 60 % 60, i % 60, i % 1000, i, i % 997, i % 101, i, tenants[i % 3]))
EOF

port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
count() { curl -s "127.0.0.1:$1/_cat/indices?format=json" | python3 -c "import json,sys; print(sum(int(i['docs.count']) for i in json.load(sys.stdin)))" 2>/dev/null || echo 0; }
cpu() { awk -v t="$TICK" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"; }
hwm() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
start_osmem() {
    local p; p=$(port)
    "$OSMEM" -addr "127.0.0.1:$p" -no-stdin-watch > "$W/osmem-$p.log" 2>&1 &
    until curl -s "127.0.0.1:$p/" > /dev/null; do sleep 0.1; done
    echo "$p $!"
}
# Waits until the server on $1 holds $LINES documents; prints seconds, CPU-s, peak RSS MB of $2.
measure() {
    local port=$1 pid=$2 t0=$3
    until [ "$(count "$port")" -ge "$LINES" ]; do sleep 0.2; done
    echo "$(python3 -c "import time; print(round(time.time() - $t0, 2))") $(cpu "$pid") $(hwm "$pid")"
}

collector_config() { # $1: dir, $2: forward section
    cat > "$1/c.toml" <<EOF
[collector]
hostname = "bench"
state_dir = "$1/state"
[archive]
path = "$1/archive"
[retention]
days = 0
[spool]
seal_secs = 1
[sources.kmsg]
enabled = false
[sources.ebpf]
enabled = false
[sources.journald]
enabled = false
[sources.file]
enabled = true
[[sources.file.inputs]]
paths = ["$W/app.log"]
format = "json"
[sources.containers]
docker = false
cri = false
$2
EOF
}

echo "lines: $LINES; machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. The collector, archive only (its file source reads to the end, archives, exits).
mkdir -p "$W/plain"
collector_config "$W/plain" ""
/usr/bin/time -f "%e %U %S %M" -o "$W/plain.time" "$COLLECTOR" run --once --config "$W/plain/c.toml" 2> "$W/plain.log"
read -r e u s m < "$W/plain.time"
echo "collector, archive only:        $e s wall, $(echo "$u + $s" | bc) CPU-s, peak RSS $((m / 1024)) MB"

# 2. The collector with the elasticsearch sink.
read -r P OSPID < <(start_osmem)
mkdir -p "$W/fwd"
collector_config "$W/fwd" "[[forward]]
name = \"es\"
kind = \"elasticsearch\"
url = \"http://127.0.0.1:$P\"
index = \"logs-{tenant}-{%Y.%m}\"
gzip = ${GZIP:-true}"
T0=$(date +%s.%N)
"$COLLECTOR" run --config "$W/fwd/c.toml" 2> "$W/fwd.log" &
CPID=$!
read -r secs cpus rss < <(measure "$P" "$CPID" "$T0")
kill -TERM "$CPID"; wait "$CPID" || true
kill "$OSPID"; wait "$OSPID" 2>/dev/null || true
echo "collector + elasticsearch sink: $secs s to the last document, $cpus CPU-s, peak RSS $rss MB," \
     "$(python3 -c "print(round($LINES / $cpus))") rows per CPU-s"

# 3. rsyslog: imfile + mmjsonparse + omelasticsearch (bulk mode) into the same index names.
read -r P OSPID < <(start_osmem)
mkdir -p "$W/rs"
cat > "$W/rs/rsyslog.conf" <<EOF
global(workDirectory="$W/rs")
module(load="imfile")
module(load="mmjsonparse")
module(load="omelasticsearch")
template(name="doc" type="list" option.json="on") {
    constant(value="{\"@timestamp\":\"") property(name="\$!time") constant(value="\",\"message\":\"")
    property(name="\$!message") constant(value="\",\"severity\":\"") property(name="\$!level")
    constant(value="\",\"tenant_id\":\"") property(name="\$!tenant_id")
    constant(value="\",\"hostname\":\"") property(name="hostname") constant(value="\"}")
}
template(name="index" type="string" string="logs-%\$!tenant_id%-2026.12")
input(type="imfile" File="$W/app.log" Tag="app" ruleset="fwd")
ruleset(name="fwd") {
    action(type="mmjsonparse" cookie="")
    action(type="omelasticsearch" server="127.0.0.1" serverport="$P" template="doc"
           searchIndex="index" dynSearchIndex="on" bulkmode="on" esVersion.major="8" maxbytes="5m"
           queue.type="linkedlist" queue.size="100000" queue.dequeuebatchsize="1000")
}
EOF
T0=$(date +%s.%N)
"$RS/usr/sbin/rsyslogd" -n -f "$W/rs/rsyslog.conf" -i "$W/rs/pid" -M "$RS/usr/lib/x86_64-linux-gnu/rsyslog" 2> "$W/rs.log" &
RPID=$!
read -r secs cpus rss < <(measure "$P" "$RPID" "$T0")
kill "$RPID"; wait "$RPID" 2>/dev/null || true
kill "$OSPID"; wait "$OSPID" 2>/dev/null || true
echo "rsyslog + omelasticsearch:      $secs s to the last document, $cpus CPU-s, peak RSS $rss MB," \
     "$(python3 -c "print(round($LINES / $cpus))") rows per CPU-s"
