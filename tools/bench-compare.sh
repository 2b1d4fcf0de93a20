#!/usr/bin/env bash
# Compares a full `zonegit-replicate pull` with `git clone --bare` of the same data, on this machine,
# over loopback: N one-line records, a flat zone for us (2N+4 objects: one blob per record, the apex
# tree, the zone tree, the root tree, a commit) and N one-line files in one flat tree for git (N+2
# objects). Then one changed record in that zone, pulled by the CLI end to end.
#
#   tools/bench-compare.sh            # or: make bench-compare
#
# Environment:
#   RECORDS=n     records (default 100000)
#   RUNS=k        pulls per contestant, interleaved (default 5)
#   INC_RUNS=k    incremental pulls (one changed record) per binary, in a row (default RUNS): the
#                 level-0 merge comes every few pulls, so take 20 or more to see it in the mean
#   FULL=0        skip the full-pull comparison (the incremental part still makes its replicas)
#   ZR=path       a prebuilt zonegit-replicate to measure instead of building this tree
#   ZR_BEFORE=path  a second zonegit-replicate (an older build) run interleaved with ZR, as "before":
#                 it pulls from its own `serve` of the same primary, so both sides are the old code
#   BIG=m         after the comparison, measure one CLI full pull of an m-record zone for time, peak
#                 RSS and private memory with tools/measure-pull-rss.sh (e.g. BIG=1000000)
#   BIG_RUNS=k    pulls of the BIG zone per binary, interleaved (default 1)
#   KEEP=1        keep the temporary directory (printed)
#
# Each run pulls into a fresh directory; wall time is measured around the process (start, pull,
# fsync, exit), peak RSS by /usr/bin/time, CPU time of the puller and of serve meanwhile. It prints
# min/median/max per contestant and the ratio of medians to git's. It reports; it never fails on time (only on errors). git's daemon is installed
# from the distribution when `git daemon` is missing (Debian: git-daemon-sysvinit brings it in).
set -euo pipefail

n="${RECORDS:-100000}"
runs="${RUNS:-5}"
inc_runs="${INC_RUNS:-$runs}"
cd "$(dirname "$0")/.."
here="$PWD"

sudo_() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

if ! command -v /usr/bin/time >/dev/null; then
	sudo_ apt-get update -qq && sudo_ apt-get install -y -qq time >/dev/null
fi
if ! git daemon --help >/dev/null 2>&1 || [[ ! -x "$(git --exec-path)/git-daemon" ]]; then
	echo "bench-compare: installing git's daemon" >&2
	sudo_ apt-get update -qq
	sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git-daemon-sysvinit >/dev/null ||
		sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git-daemon-run >/dev/null
fi
for tool in awk git go python3 sed; do
	command -v "$tool" >/dev/null || { echo "bench-compare: $tool is required" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/bench-compare.XXXXXX")"
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [[ -n ${KEEP:-} ]]; then echo "bench-compare: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

zr="${ZR:-}"
if [[ -z $zr ]]; then
	zr="$work/zonegit-replicate"
	go build -o "$zr" ./cmd/zonegit-replicate
fi
before="${ZR_BEFORE:-}"

# The data: the same records, as a zone file and as a git tree.
zone="$work/flat.zone"
records() {
	awk -v n="$n" -v skip="${1:--1}" 'BEGIN {
		print "$ORIGIN bench.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1"
		for (i = 0; i < n; i++)
			printf "h%d IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, (i == skip ? 255 - i % 256 : i % 256)
	}'
}
records >"$zone"
"$zr" import --repo "$work/primary" --zone bench.test. --file "$zone" --json >/dev/null

git init -q --bare "$work/git/primary.git"
awk -v n="$n" 'BEGIN {
	print "commit refs/heads/main\ncommitter bench <bench@bench.test> 0 +0000\ndata 6\nbench"
	for (i = 0; i < n; i++) {
		line = sprintf("h%d IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256)
		printf "M 100644 inline h%d\ndata %d\n%s\n", i, length(line), line
	}
}' | git -C "$work/git/primary.git" fast-import --quiet
git -C "$work/git/primary.git" symbolic-ref HEAD refs/heads/main
# Packed with a bitmap: the server counts and sends as fast as it can.
git -C "$work/git/primary.git" repack -adbq

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Serving: ours polls every 100 ms so the incremental runs do not wait long for the new commit.
# ZR_BEFORE gets a serve of its own build on the same primary (two readers share a repository).
"$zr" serve --repo "$work/primary" --listen 127.0.0.1:0 --poll 100ms 2>"$work/serve.err" &
serve_pid=$!
pids+=($!)
if [[ -n $before ]]; then
	"$before" serve --repo "$work/primary" --listen 127.0.0.1:0 --poll 100ms 2>"$work/serve-before.err" &
	serve_before_pid=$!
	pids+=($!)
fi
gport="$(freeport)"
git daemon --reuseaddr --export-all --base-path="$work/git" --listen=127.0.0.1 --port="$gport" \
	"$work/git" 2>"$work/git-daemon.err" &
pids+=($!)
url=""
for _ in $(seq 100); do
	url="$(sed -n 's/.*serving .* on \(https\{0,1\}:\/\/[^ ]*\).*/\1/p' "$work/serve.err")"
	[[ -n $url ]] && git ls-remote "git://127.0.0.1:$gport/primary.git" >/dev/null 2>&1 && break
	sleep 0.1
done
if [[ -z $url ]]; then
	echo "bench-compare: serve did not start:" >&2
	cat "$work/serve.err" >&2
	exit 1
fi
url_before="$url"
if [[ -n $before ]]; then
	url_before=""
	for _ in $(seq 100); do
		url_before="$(sed -n 's/.*serving .* on \(https\{0,1\}:\/\/[^ ]*\).*/\1/p' "$work/serve-before.err")"
		[[ -n $url_before ]] && break
		sleep 0.1
	done
	if [[ -z $url_before ]]; then
		echo "bench-compare: ZR_BEFORE's serve did not start:" >&2
		cat "$work/serve-before.err" >&2
		exit 1
	fi
fi
git ls-remote "git://127.0.0.1:$gport/primary.git" >/dev/null

# serve_ticks PID prints the CPU time that serve has used so far, in clock ticks.
serve_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# timed NAME CMD...: runs CMD, appends "milliseconds maxrss_kB user_s sys_s serve_cpu_s" to
# $work/NAME.times (serve_cpu_s: what the serve it pulls from spent meanwhile, the primary's side
# of the pull; ZR_BEFORE's own serve for NAMEs starting with "before" or "inc-before").
timed() {
	local name="$1" t0 t1 s0 s1 spid="$serve_pid"
	shift
	[[ $name == before || $name == inc-before ]] && spid="$serve_before_pid"
	s0="$(serve_ticks "$spid")"
	t0="$(date +%s%N)"
	if ! /usr/bin/time -f '%M %U %S' -o "$work/rss" "$@" >"$work/out" 2>"$work/err"; then
		echo "bench-compare: $name failed:" >&2
		cat "$work/err" >&2
		exit 1
	fi
	t1="$(date +%s%N)"
	s1="$(serve_ticks "$spid")"
	echo "$(((t1 - t0) / 1000000)) $(tail -n1 "$work/rss") $(awk -v a="$s0" -v b="$s1" -v hz="$(getconf CLK_TCK)" 'BEGIN { print (b - a) / hz }')" >>"$work/$name.times"
}

# stats NAME: "min median max" of the wall seconds, the largest max RSS in MiB, the median CPU
# seconds of the pulling process (user+sys: steadier than wall time on a shared machine) and the
# median CPU seconds serve spent meanwhile.
median() { sort -n | awk '{ c[NR] = $1 } END { printf "%.2f", c[int((NR + 1) / 2)] }'; }
stats() {
	sort -n "$work/$1.times" | awk '{ t[NR] = $1; if ($2 > m) m = $2 } END {
		printf "%.3f %.3f %.3f %.0f ", t[1] / 1000, t[int((NR + 1) / 2)] / 1000, t[NR] / 1000, m / 1024 }'
	echo "$(awk '{ print $3 + $4 }' "$work/$1.times" | median) $(awk '{ print $5 }' "$work/$1.times" | median)"
}

contestants=(git zonegit)
[[ -n $before ]] && contestants+=(before)
echo "bench-compare: $n records, $runs runs each, interleaved ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
[[ ${FULL:-1} == 0 ]] && runs=0
for ((r = 1; r <= runs; r++)); do
	for c in "${contestants[@]}"; do
		rm -rf "$work/dst"
		case $c in
		git) timed git git clone -q --bare "git://127.0.0.1:$gport/primary.git" "$work/dst" ;;
		zonegit) timed zonegit "$zr" pull --primary "$url" --repo "$work/dst" ;;
		before) timed before "$before" pull --primary "$url_before" --repo "$work/dst" ;;
		esac
	done
done
rm -rf "$work/dst"

((runs > 0)) && read -r _ gmed _ _ _ _ < <(stats git)
((runs > 0)) && printf '%-44s %8s %8s %8s %8s %7s %8s %8s\n' "full pull, $n records (seconds)" min median max "RSS MiB" "× git" "CPU s" "serve s"
((runs > 0)) && for c in "${contestants[@]}"; do
	read -r lo med hi rss cpu scpu < <(stats "$c")
	[[ $c == git ]] && scpu="-"
	case $c in
	git) label="git clone --bare (git daemon)" ;;
	zonegit) label="zonegit-replicate pull (serve)" ;;
	before) label="zonegit-replicate pull (serve), ZR_BEFORE" ;;
	esac
	printf '%-44s %8s %8s %8s %8s %7s %8s %8s\n' "$label" "$lo" "$med" "$hi" "$rss" "$(awk -v a="$med" -v b="$gmed" 'BEGIN { printf "%.2f", a / b }')" "$cpu" "$scpu"
done

# Incremental: one changed record, committed on the primary by import, pulled into a replica that
# has the previous commit. Each contestant keeps its own replica.
bins=(zonegit)
[[ -n $before ]] && bins+=(before)
for c in "${bins[@]}"; do
	b="$zr" u="$url"
	[[ $c == before ]] && b="$before" u="$url_before"
	"$b" pull --primary "$u" --repo "$work/inc-$c" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
done
for ((r = 1; r <= inc_runs; r++)); do
	records "$r" >"$zone"
	"$zr" import --repo "$work/primary" --zone bench.test. --file "$zone" --json >"$work/import.json"
	commit="$(sed -n 's/.*"commit":"\([0-9a-f]*\)".*/\1/p' "$work/import.json")"
	# Wait until each serve has taken a snapshot with the new commit.
	for u in "$url" "$url_before"; do
		for _ in $(seq 100); do
			"$zr" refs --primary "$u" --json 2>/dev/null | grep -q "$commit" && break
			sleep 0.05
		done
	done
	order=("${bins[@]}")
	((r % 2 == 0 && ${#bins[@]} == 2)) && order=("${bins[1]}" "${bins[0]}")
	for c in "${order[@]}"; do
		b="$zr" u="$url"
		[[ $c == before ]] && b="$before" u="$url_before"
		timed "inc-$c" "$b" pull --primary "$u" --repo "$work/inc-$c"
	done
done
# The mean beside the median: every few pulls one merges level 0 in its Close.
printf '%-44s %8s %8s %8s %8s %7s %8s %8s\n' "one changed record, CLI end to end" min median max "RSS MiB" mean "CPU s" "serve s"
for c in "${bins[@]}"; do
	read -r lo med hi rss cpu scpu < <(stats "inc-$c")
	mean="$(awk '{ s += $1 } END { printf "%.3f", s / NR / 1000 }' "$work/inc-$c.times")"
	label="zonegit-replicate pull"
	[[ $c == before ]] && label="zonegit-replicate pull, ZR_BEFORE"
	printf '%-44s %8s %8s %8s %8s %7s %8s %8s\n' "$label" "$lo" "$med" "$hi" "$rss" "$mean" "$cpu" "$scpu"
done

if [[ -n ${BIG:-} ]]; then
	echo "full pull of $BIG records, CLI (tools/measure-pull-rss.sh; pull-before is ZR_BEFORE)"
	ZR="$zr" ZR_BEFORE="$before" RUNS="${BIG_RUNS:-1}" "$here/tools/measure-pull-rss.sh" "$BIG"
fi
