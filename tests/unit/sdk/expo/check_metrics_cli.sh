#!/bin/bash
# check-metrics CLI contract: exit 0 valid, 1 + "LINE:COL: message" on the
# first error, 2 on usage/I-O errors; --format auto picks OpenMetrics when
# the document ends with "# EOF".
set -u
cli=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
expect() { # expect RC STDERR_REGEX -- args... [< input via $IN]
	local want=$1 re=$2
	shift 2
	local err rc
	err=$("$cli" "$@" 2>&1 >/dev/null <"${IN:-/dev/null}")
	rc=$?
	if [ "$rc" != "$want" ] || ! [[ "$err" =~ $re ]]; then
		echo "FAIL: check-metrics $* -> rc=$rc stderr='$err' (want rc=$want, /$re/)"
		fails=$((fails + 1))
	fi
}
printf '# TYPE a counter\na_total 1\n# EOF\n' >"$tmp/om.txt"
printf '# TYPE a counter\na_total -1\n# EOF\n' >"$tmp/om_bad.txt"
printf '# TYPE a gauge\na{b="c"} 1 1700000000000\nb 2\n' >"$tmp/prom.txt"
printf 'a 1\nb{c="d} 2\n' >"$tmp/prom_bad.txt"
printf 'a 1\n# EOF\n' >"$tmp/om_prom.txt"

expect 0 '^$' "$tmp/om.txt"
expect 0 '^$' --format openmetrics "$tmp/om.txt"
expect 1 '^2:9: counter a: value must not be NaN or negative$' "$tmp/om_bad.txt"
expect 0 '^$' --lenient "$tmp/om_bad.txt"
expect 0 '^$' "$tmp/prom.txt"
expect 0 '^$' --format=prometheus "$tmp/prom.txt"
expect 1 '^2:10: unterminated label value$' "$tmp/prom_bad.txt"
# Forced OpenMetrics on a Prometheus document: no # EOF.
expect 1 '^4:1: missing # EOF at the end$' --format openmetrics "$tmp/prom.txt"
# auto: "# EOF" at the end means OpenMetrics; as Prometheus text it is a comment.
expect 0 '^$' "$tmp/om_prom.txt"
expect 0 '^$' --format prometheus "$tmp/om_prom.txt"
IN="$tmp/prom.txt" expect 0 '^$' -
IN="$tmp/prom_bad.txt" expect 1 '^2:' 
expect 2 'No such file' "$tmp/missing.txt"
expect 2 'unknown format' --format json "$tmp/om.txt"
expect 2 'unknown option' --bogus "$tmp/om.txt"
expect 2 'more than one file' "$tmp/om.txt" "$tmp/om.txt"
expect 2 'usage' --format
# Quoted UTF-8 names: refused with a hint under the default (legacy)
# scheme, taken with --metric-name-validation-scheme utf8 in strict mode,
# as prometheus.scrape takes them with metric_name_validation_scheme "utf8".
printf '# TYPE "my.metric" gauge\n{"my.metric","utf-8.label"="v"} 1\n# EOF\n' >"$tmp/om_utf8.txt"
printf '# TYPE "my.metric" gauge\n{"my.metric", "utf-8.label"="v"} 1\n' >"$tmp/prom_utf8.txt"
expect 1 '^1:8: quoted metric names need UTF-8 names enabled \(--metric-name-validation-scheme utf8\)$' "$tmp/om_utf8.txt"
expect 1 'UTF-8 names enabled' "$tmp/prom_utf8.txt"
expect 0 '^$' --metric-name-validation-scheme utf8 "$tmp/om_utf8.txt"
expect 0 '^$' --metric-name-validation-scheme=utf8 "$tmp/prom_utf8.txt"
expect 0 '^$' --lenient --metric-name-validation-scheme utf8 "$tmp/om_utf8.txt"
# OpenMetrics allows no blank inside the braces, quoted names or not.
printf '{"my.metric", "utf-8.label"="v"} 1\n# EOF\n' >"$tmp/om_utf8_blank.txt"
expect 1 '^1:14: ' --metric-name-validation-scheme utf8 "$tmp/om_utf8_blank.txt"
expect 2 'unknown metric name validation scheme' --metric-name-validation-scheme ascii "$tmp/om.txt"
# The success line names the format and counts samples.
out=$("$cli" "$tmp/prom.txt")
[[ "$out" == *"valid Prometheus text 0.0.4: 2 samples"* ]] || { echo "FAIL: summary '$out'"; fails=$((fails + 1)); }
[ "$fails" = 0 ] && echo "check-metrics CLI: all cases passed"
exit "$fails"
