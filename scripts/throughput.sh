#!/usr/bin/env bash
# throughput.sh: end-to-end throughput of e2e-aggregator against `cat`, in one run.
#
# Usage: scripts/throughput.sh [MODE] [OPTIONS] [-- EXTRA AGGREGATOR ARGS]
#
#   MODE        default    ~2 M lines shaped like the yardstick's medium.lp (20 SFRs,
#                          40 paths, 3 instances, 1 Hz, half system metrics)
#               large      10 M lines shaped like large.lp (50 SFRs, 100 paths,
#                          4 instances, 2 Hz)
#               explosion  2 M lines, every delay point a new series
#                          (--series-explosion 1000000), aggregator run with
#                          --max-series 100000: peak RSS must stay bounded
#   --lines N   lines to generate (default 2000000; large: 10000000)
#   --rounds N  counted rounds (default 5), after 1 warm-up round
#   --seed N    generator seed (default 1)
#   --file F    measure on an existing file instead of generating one
#   --keep      keep the generated file (its path is printed)
#
# It builds release (`cargo build --release --bins --examples`), writes the data
# with `examples/workload.rs` into a temp dir ($TMPDIR, default /tmp), then runs,
# alternating and with the order swapped every round:
#   e2e-aggregator   cat FILE | e2e-aggregator --replay [EXTRA] > /dev/null
#   cat              cat FILE | cat > /dev/null
# and prints per command the medians of wall time, lines/s, MB/s (1e6 bytes) and
# CPU s, the peak RSS (max over rounds, GNU time's %M of the command after the
# pipe), and the ratio of e2e-aggregator's throughput to cat's (paired per round,
# median; 1.0 = as fast as the pipe itself). The header gives the git commit
# (`-dirty` when `git status --porcelain` is not empty: tracked changes or
# untracked files), the date and the machine, so a README can quote the run.
# The last line reads:  ratio_vs_cat=X.XX  (e2e-aggregator lines/s over cat's).
#
# Needs: bash >= 5, cargo, awk, GNU time (/usr/bin/time, Debian package "time").
# Self-contained: does not need ../shared. Binaries are taken from cargo's
# target directory (target/ unless CARGO_TARGET_DIR says otherwise).
#
# Examples:
#   scripts/throughput.sh
#   scripts/throughput.sh large --rounds 7
#   scripts/throughput.sh explosion
#   scripts/throughput.sh --file ../shared/bench/data/medium.lp -- --drop-original
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }

MODE=default LINES= ROUNDS=5 SEED=1 FILE= KEEP= EXTRA=()
while [ $# -gt 0 ]; do
  case $1 in
    default|large|explosion) MODE=$1 ;;
    --lines) LINES=${2:?--lines needs a value}; shift ;;
    --rounds) ROUNDS=${2:?--rounds needs a value}; shift ;;
    --seed) SEED=${2:?--seed needs a value}; shift ;;
    --file) FILE=${2:?--file needs a value}; shift ;;
    --keep) KEEP=1 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) usage 0 ;;
    *) echo "throughput.sh: unknown argument $1" >&2; usage ;;
  esac
  shift
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "throughput.sh: --rounds must be >= 1" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "throughput.sh: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }

[ -z "$FILE" ] || FILE=$(realpath -- "$FILE")  # before the cd below
cd "$(dirname "${BASH_SOURCE[0]}")/.."

case $MODE in
  default)   GEN=(--sfrs 20 --paths 40 --instances 3 --rate 1); : "${LINES:=2000000}" ;;
  large)     GEN=(--sfrs 50 --paths 100 --instances 4 --rate 2); : "${LINES:=10000000}" ;;
  explosion) GEN=(--sfrs 20 --paths 40 --instances 3 --rate 1 --series-explosion 1000000)
             : "${LINES:=2000000}"; EXTRA=(--max-series 100000 "${EXTRA[@]}") ;;
esac
GEN+=(--lines "$LINES" --other-ratio 0.5 --jitter-ms 500 --seed "$SEED")

echo "== building (cargo build --release --bins --examples)" >&2
cargo build --release --bins --examples >&2
TARGET=$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
AGG="$TARGET/release/e2e-aggregator"
WORKLOAD="$TARGET/release/examples/workload"
[ -x "$AGG" ] && [ -x "$WORKLOAD" ] || { echo "throughput.sh: binaries not found under $TARGET/release" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/throughput.XXXXXX")
cleanup() {
  if [ -n "$KEEP" ] && [ -z "$FILE_GIVEN" ]; then rm -f "$WORK"/*.time "$WORK"/*.err; echo "kept $DATA" >&2
  else rm -rf "$WORK"; fi
}
FILE_GIVEN=$FILE
DATA=${FILE:-$WORK/workload.lp}
trap cleanup EXIT

if [ -z "$FILE" ]; then
  echo "== generating: workload ${GEN[*]} > $DATA" >&2
  "$WORKLOAD" "${GEN[@]}" > "$DATA"
  GEN_DESC="examples/workload ${GEN[*]}"
else
  [ -r "$FILE" ] || { echo "throughput.sh: cannot read $FILE" >&2; exit 2; }
  GEN_DESC="file $FILE"
fi
BYTES=$(stat -c %s "$DATA")
NLINES=$(wc -l < "$DATA")
cat "$DATA" > /dev/null  # into the page cache

# run NAME: one timed pipeline; appends "wall_s rss_kib cpu_s" to $WORK/NAME.runs
run() {
  local name=$1 t0 t1 rc=0
  local tf="$WORK/$name.time"
  t0=$EPOCHREALTIME
  if [ "$name" = agg ]; then
    cat "$DATA" | /usr/bin/time -f '%M %U %S' -o "$tf" "$AGG" --replay "${EXTRA[@]}" > /dev/null 2> "$WORK/agg.err" || rc=$?
  else
    cat "$DATA" | /usr/bin/time -f '%M %U %S' -o "$tf" cat > /dev/null || rc=$?
  fi
  t1=$EPOCHREALTIME
  if [ "$rc" -ne 0 ]; then
    echo "throughput.sh: $name failed (status $rc)" >&2
    [ "$name" = agg ] && tail -n 5 "$WORK/agg.err" >&2
    exit 1
  fi
  awk -v t0="$t0" -v t1="$t1" '{ printf "%.6f %d %.2f\n", t1 - t0, $1, $2 + $3 }' "$tf" >> "$WORK/$name.runs"
}

echo "== $ROUNDS rounds (+1 warm-up), alternating" >&2
for ((r = 0; r <= ROUNDS; r++)); do
  if ((r % 2)); then order=(cat agg); else order=(agg cat); fi
  for name in "${order[@]}"; do run "$name"; done
  if ((r == 0)); then rm -f "$WORK"/*.runs; fi  # the warm-up round is not counted
  printf '.' >&2
done
echo >&2

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$COMMIT" != unknown ] && [ -n "$(git status --porcelain 2>/dev/null)" ]; then COMMIT+=-dirty; fi
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)

echo "# throughput.sh $MODE: commit $COMMIT, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores${CPU:+ ($CPU)}, $(uname -sr)"
echo "# data: $GEN_DESC"
printf '# %d lines, %.1f MB; %d rounds (+1 warm-up), alternating; medians; peak RSS = max over rounds\n' \
  "$NLINES" "$(awk -v b="$BYTES" 'BEGIN { print b / 1e6 }')" "$ROUNDS"
echo "# e2e-aggregator: cat FILE | $AGG --replay${EXTRA[*]:+ ${EXTRA[*]}} > /dev/null"
echo "# cat:            cat FILE | cat > /dev/null"
echo "# e2e-aggregator (last round): $(grep -a 'stopped' "$WORK/agg.err" | tail -n 1 || true)"
awk -v lines="$NLINES" -v bytes="$BYTES" -v agg="$WORK/agg.runs" -v cat="$WORK/cat.runs" '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function load(file, w, rss, cpu,   n) {
    n = 0
    while ((getline line < file) > 0) { split(line, f, " "); n++; w[n] = f[1]; rss[n] = f[2]; cpu[n] = f[3] }
    close(file)
    return n
  }
  function row(name, n, w, rss, cpu,   i, ww, cc, m, peak) {
    peak = 0
    for (i = 1; i <= n; i++) { ww[i] = w[i]; cc[i] = cpu[i]; if (rss[i] > peak) peak = rss[i] }
    m = median(ww, n)
    printf "%-16s %8.3f %12.0f %9.1f %7.2f %11.1f\n", name, m, lines / m, bytes / 1e6 / m, median(cc, n), peak / 1024
  }
  BEGIN {
    na = load(agg, aw, ar, ac); nc = load(cat, cw, cr, cc)
    printf "%-16s %8s %12s %9s %7s %11s\n", "command", "wall_s", "lines/s", "MB/s", "cpu_s", "peak_RSS_MiB"
    row("e2e-aggregator", na, aw, ar, ac)
    row("cat", nc, cw, cr, cc)
    for (i = 1; i <= na; i++) ratio[i] = cw[i] / aw[i]
    printf "ratio_vs_cat=%.3f\n", median(ratio, na)
  }'
