#!/usr/bin/env bash
# Measures the client's memory on a full pull of a flat N-RRset zone (DESIGN §9: a 1M-RRset pull
# stays under 256 MiB RSS), and the import that builds the primary.
#
#   tools/measure-pull-rss.sh [N]          # N defaults to 1000000 (2N+4 objects)
#
# It builds zonegit-replicate into a temporary directory, writes the zone with awk, imports it into
# a primary, serves that on loopback and pulls it into an empty replica under /usr/bin/time -v.
# While each measured process runs, /proc/<pid>/status is polled every 100 ms for the maxima of
# VmHWM, RssAnon (private memory: Go heap, Badger's Go-allocated buffers) and RssFile (file-backed
# pages: Badger's memory-mapped tables, memtables and value logs). Total RSS is their sum (plus
# RssShmem, which is zero here); the kernel can drop clean file pages under memory pressure, but
# they count against a cgroup's limit and in "max RSS", so both are reported.
#
# Environment:
#   RUNS=k          pull k times (fresh replica each time) against the same primary; default 1
#   PRIMARY=dir     reuse an existing primary repository instead of importing (skips the import)
#   KEEP=1          keep the temporary directory (printed) for inspection
#   ZR=path         measure this zonegit-replicate binary instead of building this tree
#   ZR_BEFORE=path  also pull with this binary (an older build), interleaved run by run with ZR,
#                   from a serve of its own build (so "before" is the old code on both sides);
#                   its lines are labelled pull-before
#   GOMEMLIMIT etc. are passed through to the measured processes.
#
# Output: one summary line per measured run, e.g.
#   pull objects=2000004 seconds=31.2 obj/s=64102 maxrss=420MiB rssanon=190MiB rssfile=230MiB
set -euo pipefail

n="${1:-1000000}"
runs="${RUNS:-1}"
cd "$(dirname "$0")/.."

for tool in awk go; do
	command -v "$tool" >/dev/null || { echo "measure-pull-rss: $tool is required" >&2; exit 1; }
done
if [[ ! -x /usr/bin/time ]]; then
	echo "measure-pull-rss: /usr/bin/time is required (apt-get install -y time)" >&2
	exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/measure-pull-rss.XXXXXX")"
serve_pids=()
cleanup() {
	for p in "${serve_pids[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [[ -n ${KEEP:-} ]]; then
		echo "measure-pull-rss: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

zr="${ZR:-}"
if [[ -z $zr ]]; then
	zr="$work/zonegit-replicate"
	go build -o "$zr" ./cmd/zonegit-replicate
fi

# status_kb FILE FIELD prints FIELD's value in kB from a /proc/<pid>/status copy (0 if absent).
status_kb() { awk -v f="$2:" '$1 == f { print $2; found = 1 } END { if (!found) print 0 }' "$1"; }

# measure NAME CMD... runs CMD under /usr/bin/time -v, polls the child's /proc status, and leaves
# NAME.time (time's report), NAME.out, NAME.err and NAME.peaks ("hwm anon file" in kB) in $work.
measure() {
	local name="$1"
	shift
	/usr/bin/time -v -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err" &
	local tpid=$! pid="" hwm=0 anon=0 file=0 v
	while kill -0 "$tpid" 2>/dev/null; do
		if [[ -z $pid ]]; then
			pid="$(cat "/proc/$tpid/task/$tpid/children" 2>/dev/null | awk '{ print $1 }')" || true
		fi
		if [[ -n $pid ]] && cp "/proc/$pid/status" "$work/status" 2>/dev/null; then
			v="$(status_kb "$work/status" VmHWM)" && ((v > hwm)) && hwm=$v
			v="$(status_kb "$work/status" RssAnon)" && ((v > anon)) && anon=$v
			v="$(status_kb "$work/status" RssFile)" && ((v > file)) && file=$v
		fi
		sleep 0.1
	done
	local rc=0
	wait "$tpid" || rc=$?
	echo "$hwm $anon $file" >"$work/$name.peaks"
	if ((rc != 0)); then
		echo "measure-pull-rss: $name failed (exit $rc):" >&2
		cat "$work/$name.err" >&2
		exit 1
	fi
}

# summary LABEL NAME OBJECTS prints the summary line of a measured run.
summary() {
	local label="$1" name="$2" objects="$3" wall maxrss hwm anon file
	wall="$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$work/$name.time")"
	maxrss="$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/$name.time")"
	read -r hwm anon file <"$work/$name.peaks"
	awk -v l="$label" -v o="$objects" -v w="$wall" -v m="$maxrss" -v h="$hwm" -v a="$anon" -v f="$file" 'BEGIN {
		printf "%s objects=%d seconds=%.1f obj/s=%.0f maxrss=%.0fMiB vmhwm=%.0fMiB rssanon=%.0fMiB rssfile=%.0fMiB\n",
			l, o, w, (w > 0 ? o / w : 0), m / 1024, h / 1024, a / 1024, f / 1024 }'
}

primary="${PRIMARY:-}"
if [[ -z $primary ]]; then
	zone="$work/flat.zone"
	awk -v n="$n" 'BEGIN {
		print "$ORIGIN bench.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1"
		for (i = 0; i < n; i++)
			printf "h%d IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256
	}' >"$zone"
	primary="$work/primary"
	measure import "$zr" import --repo "$primary" --zone bench.test. --file "$zone" --json
	summary import import "$(sed -n 's/.*"objects":\([0-9]*\).*/\1/p' "$work/import.out")"
	rm -f "$zone"
fi

# serve BINARY NAME: starts BINARY's serve of the primary and prints its URL.
serve() {
	local err="$work/$2.err" u="" pid
	: >"$err"
	"$1" serve --repo "$primary" --listen 127.0.0.1:0 2>>"$err" &
	pid=$!
	serve_pids+=("$pid")
	for _ in $(seq 100); do
		u="$(sed -n 's/.*serving .* on \(https\{0,1\}:\/\/[^ ]*\).*/\1/p' "$err")"
		[[ -n $u ]] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [[ -z $u ]]; then
		echo "measure-pull-rss: $2 did not start:" >&2
		cat "$err" >&2
		return 1
	fi
	url_out="$u"
}
serve "$zr" serve
url="$url_out"
if [[ -n ${ZR_BEFORE:-} ]]; then
	serve "$ZR_BEFORE" serve-before
	url_before="$url_out"
fi

for ((run = 1; run <= runs; run++)); do
	rm -rf "$work/replica"
	measure pull "$zr" pull --primary "$url" --repo "$work/replica" --json
	summary pull pull "$(sed -n 's/^  "objects": \([0-9]*\),$/\1/p' "$work/pull.out")"
	if [[ -n ${ZR_BEFORE:-} ]]; then
		rm -rf "$work/replica"
		measure pull "$ZR_BEFORE" pull --primary "$url_before" --repo "$work/replica" --json
		summary pull-before pull "$(sed -n 's/^  "objects": \([0-9]*\),$/\1/p' "$work/pull.out")"
	fi
done
