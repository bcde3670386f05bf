#!/usr/bin/env bash
# Instructions per line of the RFC 3164 and RFC 5424 parsers, counted by valgrind's
# callgrind: repeatable on a shared, loaded machine where criterion's times are not.
#
#   benches/parse_instructions.sh [REV]      # REV: a git revision to compare with
#
# Builds a scratch crate (under target/parse-instructions/) from this checkout's
# collector/src/parse/ and time.rs — and, given REV, from a worktree of REV — and prints
# (Ir(reps=b) - Ir(reps=a)) / (lines * (b - a)) for each input, so that start-up and reading
# the input cancel out. Inputs: 20,000 lines of the generated corpus (benches/corpus/, made
# by gen-corpus), loghub's Linux_2k, and the criterion bench's RFC 5424 lines.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$root/target/parse-instructions
mkdir -p "$work"
corpus=$(ls "$root"/benches/corpus/syslog-*.log 2>/dev/null | head -1)
[ -n "$corpus" ] || { echo "run target/release/gen-corpus first" >&2; exit 1; }
head -20000 "$corpus" > "$work/corpus.txt"
cp "$root/../shared/data/loghub-2k/Linux/Linux_2k.log" "$work/linux.txt"
python3 - "$root/benches/benches/parsers.rs" "$work/rfc5424.txt" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
m = re.search(r'const RFC5424: &\[&\[u8\]\] = &\[(.*?)\n\];', src, re.S)
lines = [eval('b"' + l + '"') for l in re.findall(r'b"((?:[^"\\]|\\.)*)"', m.group(1))]
open(sys.argv[2], 'wb').write(b"\n".join(lines) + b"\n")
PY

build() { # name source-root
    local d=$work/$1
    mkdir -p "$d/src"
    cat > "$d/Cargo.toml" <<EOF
[package]
name = "pi-$1"
version = "0.0.0"
edition = "2024"
publish = false
[workspace]
[dependencies]
clap = { version = "4", features = ["derive"] }
serde = { version = "1", features = ["derive"] }
libc = "0.2"
tracing = "0.1"
[profile.release]
codegen-units = 16
EOF
    cat > "$d/src/main.rs" <<EOF
#[path = "$2/collector/src/time.rs"]
pub mod time;
#[path = "$2/collector/src/parse/mod.rs"]
pub mod parse;
use parse::{ParseContext, rfc3164, rfc5424};
const CTX: ParseContext = ParseContext {
    reference_unix_secs: 1_795_341_600,
    utc_offset_secs: 3600,
    boot_unix_ns: Some(1_795_000_000_000_000_000),
};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let reps: usize = a[3].parse().unwrap();
    let text = std::fs::read(&a[2]).unwrap();
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let mut sum = 0usize;
    for _ in 0..reps {
        for l in &lines {
            let r = if a[1] == "3164" { rfc3164::parse(l, &CTX) } else { rfc5424::parse(l) };
            sum = sum.wrapping_add(r.message.len() + r.app_name.map_or(0, <[u8]>::len));
        }
    }
    println!("{} {sum}", lines.len());
}
EOF
    (cd "$d" && cargo build --release --quiet)
    echo "$d/target/release/pi-$1"
}

ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | awk '/Collected/ {print $4}'; }

per_line() { # binary format file a b
    local n a b
    n=$("$1" "$2" "$3" 1 | cut -d' ' -f1)
    a=$(ir "$1" "$2" "$3" "$4")
    b=$(ir "$1" "$2" "$3" "$5")
    echo $(( (b - a) / (n * ($5 - $4)) ))
}

bins=("now:$(build now "$root")")
if [ $# -ge 1 ]; then
    old=$work/rev-src
    rm -rf "$old"
    git -C "$root" worktree add -q --detach "$old" "$1"
    bins+=("$1:$(build rev "$old")")
    git -C "$root" worktree remove --force "$old"
fi
printf '%-12s %16s %16s %16s\n' "" "3164 corpus" "3164 linux" "5424"
for nb in "${bins[@]}"; do
    name=${nb%%:*}
    bin=${nb#*:}
    printf '%-12s %16s %16s %16s\n' "$name" \
        "$(per_line "$bin" 3164 "$work/corpus.txt" 1 3)" \
        "$(per_line "$bin" 3164 "$work/linux.txt" 2 6)" \
        "$(per_line "$bin" 5424 "$work/rfc5424.txt" 1000 3000)"
done
