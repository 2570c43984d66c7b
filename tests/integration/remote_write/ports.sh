# Port helpers for the remote-write integration tests (sourced). The same
# test may run at the same time from another build tree on this machine, so
# each run picks a random free port inside the test's own range and checks
# that the process answering on it is really the one it started.

# pick_port BASE SPAN: print a port in [BASE, BASE+SPAN) nobody listens on.
pick_port() {
	local base=$1 span=$2 i p
	for i in $(seq 0 $((span - 1))); do
		p=$((base + (RANDOM + i) % span))
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
			echo $p
			return 0
		fi
	done
	echo "no free port in $base+$span" >&2
	return 1
}

# listens PID PORT: true when process PID listens on 127.0.0.1:PORT.
listens() {
	ss -ltnpH "sport = :$2" 2>/dev/null | grep -q "pid=$1,"
}
