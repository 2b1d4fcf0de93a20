# Shared by the demos (examples/quickstart, examples/fleet, examples/pulumi):
# sourced, never run. It makes the work directory, stops what the demo
# started and removes the work directory on exit (ZONEGIT_DEMO_KEEP=1 keeps
# it), and starts zonegit-replicate servers.
#
# Usage: root=<repository root>; source "$root/examples/demo-lib.sh"; demo_init NAME
# then: zr=<path of zonegit-replicate>; start_zr NAME LOG ARGS...; url="$started_url".

# demo_init NAME: sets work (a new temporary directory) and the exit trap.
demo_init() {
	work="$(mktemp -d "${TMPDIR:-/tmp}/zonegit-$1.XXXXXX")"
	pids=()
	trap demo_cleanup EXIT
	# No download or checkpoint site is needed (or reachable).
	export CHECKPOINT_DISABLE=1
}

demo_cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	if [[ ${ZONEGIT_DEMO_KEEP-} == 1 ]]; then
		echo "kept $work"
	else
		rm -rf "$work"
	fi
}

step() { printf '\n==> %s\n' "$*"; }

# start_zr NAME LOG ARGS...: runs "$zr" ARGS in the background (stopped on
# exit) and sets started_url to the URL it serves on once its log says so.
# Not for $(...): the process must be recorded in this shell's pids, or
# nothing stops it.
start_zr() {
	local name="$1" log="$2" url="" pid
	shift 2
	"$zr" "$@" >"$log" 2>&1 &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 1 100); do
		url="$(sed -n 's/.*serving .* on \(https\{0,1\}:\/\/[0-9.:]*\).*/\1/p' "$log" | sed -n 1p)"
		[[ -n $url ]] && break
		if ! kill -0 "$pid" 2>/dev/null; then
			cat "$log" >&2
			echo "$name exited" >&2
			exit 1
		fi
		sleep 0.1
	done
	[[ -n $url ]] || { cat "$log" >&2; echo "no address from $name" >&2; exit 1; }
	started_url="$url"
}

# import_quickstart REPO: imports examples/quickstart/*.zone into REPO.
import_quickstart() {
	local f zone
	for f in "$root"/examples/quickstart/*.zone; do
		zone="$(basename "$f" .zone)."
		"$zr" import --repo "$1" --zone "$zone" --file "$f" >/dev/null
	done
}

# stop_all: stops everything start_zr started, now rather than on exit.
stop_all() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	pids=()
}
