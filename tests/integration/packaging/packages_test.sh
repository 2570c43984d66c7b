#!/bin/bash
# End-to-end test of the packages (issue 5):
#  1. configure + build a separate tree with prefix /usr (hardening flags from
#     dpkg-buildflags, as a distribution build would) and `--target package`;
#  2. check the .deb and .rpm file lists and metadata against the build;
#  3. lintian and rpmlint: no errors, no warnings (overrides are justified
#     in packaging/deb/*.lintian-overrides and packaging/rpm/rpmlintrc);
#  4. extract the .debs into a throwaway root and run the daemon from there:
#     version, check-config of the packaged config, plugins list, and `run`
#     with the unit's own ExecStart command line (ready, SIGHUP, SIGTERM);
#  5. build the example plugin out of tree against the extracted dev files
#     (Makefile and CMake) and load it with the extracted daemon;
#  6. unpack the .rpms with rpm2cpio and compare with the .debs;
#  7. systemd-analyze verify on the packaged unit;
#  8. install_test.sh: real dpkg and rpm installs, upgrade with an edited
#     config, remove and purge, in a private mount namespace.
#
# usage: packages_test.sh SOURCE_DIR WORK_DIR VERSION
# Nothing is skipped: a missing tool or daemon binary is a failure.
set -u

SRC=$(cd "$1" && pwd) || exit 1
WORK=$2
VERSION=$3
HTTP_ADDR=127.0.0.1:18945 # packaging tests' port (base 18940)

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
BUILD=$WORK/build
LOG=$WORK/log
ROOT=$WORK/root       # .deb contents
RROOT=$WORK/rpmroot   # .rpm contents
mkdir -p "$LOG"

fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
check() { # check DESCRIPTION command...
	local d=$1
	shift
	if "$@"; then ok "$d"; else bad "$d"; fi
}
die() {
	echo "FAIL - $*"
	echo "packaging: aborted after $((fails + 1)) failure(s)"
	exit 1
}
# run_out NAME command...: run, keep stdout+stderr in $LOG/NAME, return rc
run_out() {
	local name=$1
	shift
	"$@" >"$LOG/$name" 2>&1
}
show() { sed 's/^/    | /' "$LOG/$1" | head -n "${2:-40}"; }

DAEMON_PID=
cleanup() {
	if [ -n "$DAEMON_PID" ]; then
		kill -KILL "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
	fi
}
trap cleanup EXIT

for tool in cmake cpack dpkg-deb dpkg-buildflags dpkg-architecture lintian rpm rpmbuild \
	rpmlint rpm2cpio cpio pkg-config make cc curl systemd-analyze objdump nm ar gzip od; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done

# ---- 1. build the packages ----------------------------------------------------
echo "# building a separate tree with CMAKE_INSTALL_PREFIX=/usr in $BUILD"
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
LDFLAGS=$(dpkg-buildflags --get LDFLAGS)
if ! run_out configure env CFLAGS="$CFLAGS" LDFLAGS="$LDFLAGS" \
	cmake -S "$SRC" -B "$BUILD" -DCMAKE_INSTALL_PREFIX=/usr \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTARLING_TESTS=OFF; then
	show configure
	die "cmake configure failed"
fi
if ! run_out build cmake --build "$BUILD" -j2; then
	tail -n 40 "$LOG/build"
	die "build failed"
fi
[ -x "$BUILD/starling" ] ||
	die "$BUILD/starling was not built (host/main.c missing?); the packages need the daemon"
rm -rf "$BUILD/packages"
if ! run_out package cmake --build "$BUILD" --target package; then
	tail -n 40 "$LOG/package"
	die "cmake --build --target package failed"
fi
ok "cmake --build --target package"

DEB_ARCH=$(dpkg --print-architecture)
RPM_ARCH=$(uname -m)
P=$BUILD/packages
DEB=$P/starling_${VERSION}_${DEB_ARCH}.deb
DEBDEV=$P/starling-dev_${VERSION}_${DEB_ARCH}.deb
RPM=$P/starling-${VERSION}-1.${RPM_ARCH}.rpm
RPMDEV=$P/starling-devel-${VERSION}-1.${RPM_ARCH}.rpm
for f in "$DEB" "$DEBDEV" "$RPM" "$RPMDEV"; do
	[ -f "$f" ] || die "package not produced: $f (have: $(ls "$P"))"
done
ok "four packages: $(cd "$P" && ls ./*.deb ./*.rpm | tr '\n' ' ')"

LIBDIR=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$BUILD/CMakeCache.txt")
[ -n "$LIBDIR" ] || die "CMAKE_INSTALL_LIBDIR not in the cache"
PLUGINS=$(cd "$BUILD/plugins" 2>/dev/null && ls ./*.so 2>/dev/null | sed 's|^\./||')
echo "# plugins built: ${PLUGINS:-none}"

# ---- 2. file lists and metadata ------------------------------------------------
echo "# .deb metadata and file lists"
deb_files() { dpkg-deb -c "$1" | awk '$1 !~ /^d/ { print $6 }' | sed 's|^\./|/|' | sort; }
deb_files "$DEB" >"$LOG/deb.files"
deb_files "$DEBDEV" >"$LOG/debdev.files"

{
	echo /etc/starling/starling.cfg
	echo /usr/bin/starling
	echo /usr/lib/systemd/system/starling.service
	echo /usr/share/doc/starling/changelog.gz
	echo /usr/share/doc/starling/copyright
	echo /usr/share/lintian/overrides/starling
	echo /usr/share/man/man5/starling.cfg.5.gz
	echo /usr/share/man/man8/starling.8.gz
	for p in $PLUGINS; do echo "/usr/lib/starling/plugins/$p"; done
} | sort >"$LOG/deb.expected"
# Data the daemon ships under its own directories is allowed in addition.
grep -vE '^/usr/(share|lib)/starling/' "$LOG/deb.files" >"$LOG/deb.files.core"
grep -vE '^/usr/(share|lib)/starling/' "$LOG/deb.expected" >"$LOG/deb.expected.core"
check "starling.deb holds exactly the expected files outside /usr/{lib,share}/starling" \
	diff -u "$LOG/deb.expected.core" "$LOG/deb.files.core"
missing_plugins=$(comm -23 "$LOG/deb.expected" "$LOG/deb.files")
check "starling.deb holds every built plugin in /usr/lib/starling/plugins/" test -z "$missing_plugins"
dpkg-deb -c "$DEB" >"$LOG/deb.listing"
check "plugins directory /usr/lib/starling/plugins/ is in the package" \
	grep -q ' \./usr/lib/starling/plugins/$' "$LOG/deb.listing"

{
	for h in "$SRC"/sdk/include/starling/*.h; do echo "/usr/include/starling/$(basename "$h")"; done
	echo "/usr/$LIBDIR/libstarling_sdk.a"
	echo "/usr/$LIBDIR/pkgconfig/starling-plugin.pc"
	echo /usr/share/doc/starling-dev/changelog.gz
	echo /usr/share/doc/starling-dev/copyright
	[ -f "$SRC/sdk/ABI.md" ] && echo /usr/share/doc/starling-dev/ABI.md
	echo /usr/share/doc/starling-dev/examples/plugin/CMakeLists.txt
	echo /usr/share/doc/starling-dev/examples/plugin/Makefile
	echo /usr/share/doc/starling-dev/examples/plugin/sample_counter.c
	echo /usr/share/lintian/overrides/starling-dev
} | sort >"$LOG/debdev.expected"
check "starling-dev.deb holds exactly headers, static lib, .pc, docs, example" \
	diff -u "$LOG/debdev.expected" "$LOG/debdev.files"

field() { dpkg-deb -f "$1" "$2"; }
check "starling: Package/Version/Architecture/Section" \
	test "$(field "$DEB" Package) $(field "$DEB" Version) $(field "$DEB" Architecture) $(field "$DEB" Section)" \
	= "starling $VERSION $DEB_ARCH net"
check "starling-dev: Package/Version/Section" \
	test "$(field "$DEBDEV" Package) $(field "$DEBDEV" Version) $(field "$DEBDEV" Section)" \
	= "starling-dev $VERSION libdevel"
DEPENDS=$(field "$DEB" Depends)
check "starling Depends on adduser (maintainer scripts) and libc6 (shlibdeps)" \
	sh -c "echo '$DEPENDS' | grep -q 'adduser' && echo '$DEPENDS' | grep -q 'libc6 (>='"
# Every library the daemon and its plugins load must come from a dependency.
needed_sonames() {
	local f
	for f in "$BUILD/starling" "$BUILD"/plugins/*.so; do
		[ -f "$f" ] && objdump -p "$f" | awk '$1 == "NEEDED" { print $2 }'
	done | sort -u
}
NEEDED=$(needed_sonames)
for so in $NEEDED; do
	path=$(ldconfig -p | awk -v so="$so" '$1 == so && /x86-64|64bit/ { print $NF; exit }')
	[ -n "$path" ] || { bad "cannot resolve $so"; continue; }
	pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n1 | cut -d: -f1)
	[ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | head -n1 | cut -d: -f1)
	if echo "$DEPENDS" | grep -qE "(^|, )$pkg( |,|$)"; then
		ok "Depends covers $so ($pkg)"
	else
		bad "Depends lacks $pkg, which provides $so: $DEPENDS"
	fi
done
DEV_DEPENDS=$(field "$DEBDEV" Depends)
for d in libxxhash-dev libpcre2-dev libcurl4-openssl-dev libprotobuf-c-dev libsnappy-dev zlib1g-dev libdeflate-dev \
	libcjson-dev libyaml-dev libssl-dev; do
	check "starling-dev Depends on $d (linked by libstarling_sdk.a)" \
		sh -c "echo '$DEV_DEPENDS' | grep -q '$d'"
done
dpkg-deb -e "$DEB" "$WORK/control"
check "conffiles lists /etc/starling/starling.cfg" \
	grep -qx /etc/starling/starling.cfg "$WORK/control/conffiles"
for s in postinst prerm postrm; do
	check "deb maintainer script $s is executable" test -x "$WORK/control/$s"
done
check "postinst creates the system user" grep -q 'adduser --system' "$WORK/control/postinst"
check "postrm purge removes state and user" \
	sh -c "grep -q 'rm -rf \"\$STATE_DIR\"' '$WORK/control/postrm' && grep -q 'deluser' '$WORK/control/postrm'"

echo "# .rpm metadata and file lists"
rq() { rpm -qp --qf "$2" "$1" 2>/dev/null; }
check "starling.rpm: name, version, release, license, URL, packager" \
	test "$(rq "$RPM" '%{NAME} %{VERSION} %{RELEASE} %{LICENSE}')" = "starling $VERSION 1 MIT" -a \
	-n "$(rq "$RPM" '%{URL}')" -a "$(rq "$RPM" '%{PACKAGER}')" != "(none)"
check "starling-devel.rpm: name and version" \
	test "$(rq "$RPMDEV" '%{NAME} %{VERSION}')" = "starling-devel $VERSION"
rpm -qlp "$RPM" 2>/dev/null | sort >"$LOG/rpm.all"
rpm_files() { rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$1" 2>/dev/null | awk '$1 !~ /^d/ { print $2 }' | sort; }
rpm_files "$RPM" >"$LOG/rpm.files"
rpm_files "$RPMDEV" >"$LOG/rpmdev.files"
check "starling.rpm has the same files as starling.deb" diff -u "$LOG/deb.files" "$LOG/rpm.files"
check "starling-devel.rpm has the same files as starling-dev.deb" \
	diff -u "$LOG/debdev.files" "$LOG/rpmdev.files"
check "starling.rpm: /etc/starling/starling.cfg is %config(noreplace), 0640 root:starling" \
	test "$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME}\n]' "$RPM" 2>/dev/null | grep '^/etc/starling/starling.cfg ')" \
	= "/etc/starling/starling.cfg cn -rw-r----- root:starling"
check "starling.rpm owns no system directories (/etc, /usr/lib/systemd/system, ...)" \
	sh -c "! grep -qxE '/etc|/usr|/usr/bin|/usr/lib|/usr/lib/systemd(/system)?|/usr/share(/man(/man[58])?|/doc)?' '$LOG/rpm.all'"
for tag in PREIN POSTIN PREUN POSTUN; do
	check "starling.rpm has a %$tag script" test -n "$(rq "$RPM" "%{$tag}" | grep -v '^(none)$')"
done
check "%pre creates the system user" sh -c "rpm -qp --qf '%{PREIN}' '$RPM' 2>/dev/null | grep -q 'useradd -r'"
RPM_REQ=$(rpm -qp --requires "$RPM" 2>/dev/null)
for so in $NEEDED; do
	check "starling.rpm requires $so" sh -c "echo '$RPM_REQ' | grep -qF '$so()(64bit)'"
done
# 10: one pkgconfig() per module of starling-plugin.pc's Requires (xxhash,
# pcre2, curl, protobuf-c, snappy, zlib, libdeflate, cjson, yaml, libcrypto)
check "starling-devel.rpm requires the libraries of libstarling_sdk.a (pkgconfig())" \
	sh -c "rpm -qp --requires '$RPMDEV' 2>/dev/null | grep -c '^pkgconfig(' | grep -qx 10"

# ---- 3. linters ------------------------------------------------------------------
echo "# lintian"
run_out lintian lintian --fail-on error,warning --display-info "$DEB" "$DEBDEV"
lrc=$?
grep -v 'running with root privileges' "$LOG/lintian" | sed 's/^/    | /'
check "lintian: no errors or warnings (exit $lrc)" \
	sh -c "[ $lrc = 0 ] && ! grep -qE '^[EW]: ' '$LOG/lintian'"

echo "# rpmlint"
run_out rpmlint rpmlint -r "$SRC/packaging/rpm/rpmlintrc" "$RPM" "$RPMDEV"
grep -E '^(starling|[0-9]+ packages)' "$LOG/rpmlint" | sed 's/^/    | /'
check "rpmlint: 0 errors, 0 warnings" grep -q ' 0 errors, 0 warnings' "$LOG/rpmlint"

# ---- 4. throwaway root from the .debs -----------------------------------------
echo "# extract the .debs into $ROOT and run the daemon from there"
rm -rf "$ROOT"
mkdir -p "$ROOT"
dpkg-deb -x "$DEB" "$ROOT" && dpkg-deb -x "$DEBDEV" "$ROOT" || die "dpkg-deb -x failed"
S=$ROOT/usr/bin/starling
PLUGDIR=$ROOT/usr/lib/starling/plugins
CFG=$ROOT/etc/starling/starling.cfg

check "gzip -9n: man pages and changelogs carry no name or timestamp" sh -c "
	for f in '$ROOT'/usr/share/man/man*/*.gz '$ROOT'/usr/share/doc/*/changelog.gz; do
		[ \"\$(od -An -tx1 -N8 \"\$f\" | tr -d ' ')\" = 1f8b080000000000 ] || exit 1
	done"
check "changelog's newest entry is version $VERSION" \
	sh -c "gzip -dc '$ROOT/usr/share/doc/starling/changelog.gz' | head -n1 | grep -qF 'starling ($VERSION)'"
check "man pages render without warnings" sh -c "
	for f in '$ROOT'/usr/share/man/man8/starling.8.gz '$ROOT'/usr/share/man/man5/starling.cfg.5.gz; do
		out=\$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l \"\$f\" 2>&1 >/dev/null) || exit 1
		[ -z \"\$out\" ] || { echo \"\$out\"; exit 1; }
	done"
check "starling(8) documents every subcommand" sh -c "
	t=\$(MANWIDTH=200 man -l '$ROOT/usr/share/man/man8/starling.8.gz' 2>/dev/null)
	for w in 'starling run' check-config check-metrics 'plugins list' 'plugins describe' version \
		--plugins-dir --state-dir --server.http.listen-addr --log.level --cluster.; do
		echo \"\$t\" | grep -qF -- \"\$w\" || { echo \"missing \$w\"; exit 1; }
	done"

run_out version "$S" version
vrc=$?
show version 5
check "starling version exits 0 and prints $VERSION" \
	sh -c "[ $vrc = 0 ] && grep -qF '$VERSION' '$LOG/version'"

run_out checkcfg "$S" check-config --plugins-dir "$PLUGDIR" "$CFG"
crc=$?
show checkcfg 20
check "starling check-config /etc/starling/starling.cfg (packaged config) exits 0" test "$crc" = 0

# A broken copy must be refused with file:line.
sed 's/^server = {/server = {{/' "$CFG" >"$WORK/broken.cfg"
run_out checkbad "$S" check-config --plugins-dir "$PLUGDIR" "$WORK/broken.cfg"
brc=$?
show checkbad 5
check "check-config refuses a broken config with exit 1 and file:line" \
	sh -c "[ $brc = 1 ] && grep -qE 'broken\.cfg:[0-9]+' '$LOG/checkbad'"

# The documented examples must be valid configs for the packaged daemon and
# plugins: the commented example in the packaged config, and EXAMPLE in
# starling.cfg(5).
sed -n '/^\/\/ components = (/,/^\/\/ );/p' "$CFG" | sed 's|^// \{0,1\}||' >"$WORK/cfg-example.cfg"
gzip -dc "$ROOT/usr/share/man/man5/starling.cfg.5.gz" |
	sed -n '/^\.SH EXAMPLE/,/^\.fi/p' | grep -v '^\.' | sed 's/\\-/-/g' >"$WORK/man-example.cfg"
for ex in cfg-example man-example; do
	run_out "check-$ex" "$S" check-config --plugins-dir "$PLUGDIR" "$WORK/$ex.cfg"
	erc=$?
	show "check-$ex" 5
	check "documented example ($ex) passes check-config with the packaged plugins" \
		sh -c "[ $erc = 0 ] && [ -s '$WORK/$ex.cfg' ]"
done

run_out pluginslist "$S" plugins list --plugins-dir "$PLUGDIR"
prc=$?
show pluginslist 30
check "starling plugins list over the packaged plugins exits 0" test "$prc" = 0

# ---- 5. example plugin, out of tree -----------------------------------------
echo "# build the example plugin against the extracted dev files"
export PKG_CONFIG_PATH=$ROOT/usr/$LIBDIR/pkgconfig
PC="pkg-config --define-variable=prefix=$ROOT/usr"
PCFLAGS=$($PC --cflags --libs starling-plugin 2>&1)
echo "    | pkg-config --cflags --libs starling-plugin: $PCFLAGS"
check "starling-plugin.pc: version $VERSION" test "$($PC --modversion starling-plugin)" = "$VERSION"
check "starling-plugin.pc: plugindir is /usr/lib/starling/plugins" \
	test "$(pkg-config --variable=plugindir starling-plugin)" = /usr/lib/starling/plugins
for w in "-I$ROOT/usr/include" "-L$ROOT/usr/$LIBDIR" -lstarling_sdk -lxxhash -lpcre2-8 -lcurl \
	-lprotobuf-c -lsnappy -lz -ldeflate -lcjson -lyaml -lcrypto -lpthread -lm; do
	check "pkg-config --cflags --libs has $w" sh -c "echo ' $PCFLAGS ' | grep -qF -- ' $w '"
done
sdk_objs=$(ar t "$ROOT/usr/$LIBDIR/libstarling_sdk.a" | sort | tr '\n' ' ')
for c in "$SRC"/sdk/lib/*.c; do
	check "libstarling_sdk.a contains $(basename "$c")" \
		sh -c "echo ' $sdk_objs' | grep -qF ' $(basename "$c").o '"
done

# Every installed header must compile on its own with the .pc's flags (a
# header that needs a generated or private header would break plugin builds).
for h in "$ROOT"/usr/include/starling/*.h; do
	hn=$(basename "$h")
	printf '#include <starling/%s>\nint starling_header_test;\n' "$hn" >"$WORK/hdr.c"
	check "installed header starling/$hn compiles on its own (C11, -Wall -Wextra -Werror)" \
		sh -c "cc -std=c11 -Wall -Wextra -Werror -fsyntax-only $($PC --cflags starling-plugin) '$WORK/hdr.c' >'$LOG/hdr-$hn' 2>&1"
done

# The .pc's Libs must satisfy everything in libstarling_sdk.a, not only
# what the example happens to use: link the whole archive with --no-undefined.
printf 'int starling_whole_archive_test;\n' >"$WORK/wa.c"
check "Libs of starling-plugin.pc satisfy the whole libstarling_sdk.a (--whole-archive, --no-undefined)" \
	sh -c "cc -shared -fPIC -o '$WORK/wa.so' '$WORK/wa.c' -Wl,--no-undefined -Wl,--whole-archive \
		'$ROOT/usr/$LIBDIR/libstarling_sdk.a' -Wl,--no-whole-archive \
		$($PC --libs starling-plugin) >'$LOG/whole-archive' 2>&1"

EX=$WORK/example
rm -rf "$EX"
cp -r "$ROOT/usr/share/doc/starling-dev/examples/plugin" "$EX"
if run_out example-make make -C "$EX" PKG_CONFIG="$PC"; then
	ok "example plugin builds with its Makefile"
else
	show example-make
	bad "example plugin does not build with its Makefile"
fi
check "example Makefile build has no compiler warnings" sh -c "! grep -q 'warning:' '$LOG/example-make'"
check "example plugin exports only starling_plugin_entry" \
	test "$(nm -D --defined-only "$EX/sample_counter.so" 2>/dev/null | awk '{print $3}' | grep -v '^_' | tr '\n' ' ')" \
	= "starling_plugin_entry "
if run_out example-cmake sh -c "cmake -S '$EX' -B '$EX/build' '-DPKG_CONFIG_ARGN=--define-variable=prefix=$ROOT/usr' && cmake --build '$EX/build'"; then
	ok "example plugin builds with its CMakeLists.txt"
else
	show example-cmake
	bad "example plugin does not build with its CMakeLists.txt"
fi
check "CMake build produced sample_counter.so" test -f "$EX/build/sample_counter.so"

# A plugins directory as an operator would have it after dropping the plugin in.
DROP=$WORK/plugins
rm -rf "$DROP"
cp -a "$PLUGDIR" "$DROP"
cp "$EX/sample_counter.so" "$DROP/"
run_out droplist "$S" plugins list --plugins-dir "$DROP"
drc=$?
show droplist 30
check "plugins list with the dropped-in example shows example.sample_counter" \
	sh -c "[ $drc = 0 ] && grep -qF 'example.sample_counter' '$LOG/droplist'"
run_out describe "$S" plugins describe --plugins-dir "$DROP" example.sample_counter
drc=$?
show describe 10
check "plugins describe example.sample_counter lists its arguments" \
	sh -c "[ $drc = 0 ] && grep -q 'log_every' '$LOG/describe' && grep -q 'verify_hash' '$LOG/describe'"

cat >"$WORK/example.cfg" <<'EOF'
server = { http_listen_addr = "127.0.0.1:18945"; };
components = (
  { type = "example.sample_counter"; name = "c"; log_every = 10; }
);
EOF
run_out excfg "$S" check-config --plugins-dir "$DROP" "$WORK/example.cfg"
erc=$?
show excfg 10
check "check-config accepts a config using example.sample_counter" test "$erc" = 0
sed 's/log_every = 10;/log_every = "often";/' "$WORK/example.cfg" >"$WORK/example-bad.cfg"
run_out excfgbad "$S" check-config --plugins-dir "$DROP" "$WORK/example-bad.cfg"
erc=$?
show excfgbad 5
check "check-config refuses a wrongly typed example argument (exit 1, file:line)" \
	sh -c "[ $erc = 1 ] && grep -qE 'example-bad\.cfg:[0-9]+' '$LOG/excfgbad'"

# ---- 4b. run the daemon with the unit's ExecStart -----------------------------
echo "# run the extracted daemon with the unit's command line"
UNIT=$ROOT/usr/lib/systemd/system/starling.service
EXEC=$(sed -n 's/^ExecStart=//p' "$UNIT")
STATE=$WORK/state
rm -rf "$STATE"
mkdir -p "$STATE"
# Same command line, with the packaged paths mapped into the throwaway root.
EXEC=${EXEC//\/usr\/bin\/starling/$S}
EXEC=${EXEC//\/etc\/starling\/starling.cfg/$CFG}
EXEC=${EXEC//\/var\/lib\/starling/$STATE}
echo "    | $EXEC --plugins-dir $DROP --server.http.listen-addr $HTTP_ADDR"
read -r -a argv <<<"$EXEC"
"${argv[@]}" --plugins-dir "$DROP" --server.http.listen-addr "$HTTP_ADDR" >"$LOG/run" 2>&1 &
DAEMON_PID=$!
ready=0
for _ in $(seq 1 100); do # 20 s
	if curl -fsS -o /dev/null "http://$HTTP_ADDR/-/ready" 2>/dev/null; then
		ready=1
		break
	fi
	kill -0 "$DAEMON_PID" 2>/dev/null || break
	sleep 0.2
done
check "daemon started with the unit's ExecStart is ready on $HTTP_ADDR" test "$ready" = 1
check "GET /metrics answers with self-metrics" \
	sh -c "curl -fsS 'http://$HTTP_ADDR/metrics' 2>/dev/null | grep -q '^[a-z_]'"
# ExecReload sends SIGHUP: the daemon must survive it and stay ready.
kill -HUP "$DAEMON_PID" 2>/dev/null
sleep 1
check "daemon survives ExecReload (SIGHUP) and is still ready" \
	sh -c "kill -0 $DAEMON_PID 2>/dev/null && curl -fsS -o /dev/null 'http://$HTTP_ADDR/-/ready' 2>/dev/null"
kill -TERM "$DAEMON_PID" 2>/dev/null
stopped=0
for _ in $(seq 1 100); do # 20 s
	if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
		stopped=1
		break
	fi
	sleep 0.2
done
if [ "$stopped" = 1 ]; then
	wait "$DAEMON_PID"
	rc=$?
	DAEMON_PID=
	check "daemon exits 0 on SIGTERM within 20 s" test "$rc" = 0
	# ProtectSystem=strict leaves only the StateDirectory writable: the
	# packaged config's components must keep their files under --state-dir.
	check "packaged config's components write under the unit's --state-dir" \
		test -n "$(find "$STATE" -mindepth 2 -type f 2>/dev/null | head -n1)"
else
	bad "daemon did not exit within 20 s of SIGTERM"
fi
show run 20

# ---- 6. the .rpms ----------------------------------------------------------------
echo "# unpack the .rpms with rpm2cpio"
rm -rf "$RROOT"
mkdir -p "$RROOT"
(cd "$RROOT" && rpm2cpio "$RPM" | cpio -idm --quiet && rpm2cpio "$RPMDEV" | cpio -idm --quiet) ||
	bad "rpm2cpio | cpio failed"
(cd "$RROOT" && find . -type f | sed 's|^\./|/|' | sort) >"$LOG/rpmroot.files"
sort -m "$LOG/deb.files" "$LOG/debdev.files" >"$LOG/debroot.files"
check "unpacked .rpms hold the same files as the .debs" diff -u "$LOG/debroot.files" "$LOG/rpmroot.files"
for f in /etc/starling/starling.cfg /usr/lib/systemd/system/starling.service \
	"/usr/$LIBDIR/pkgconfig/starling-plugin.pc" /usr/include/starling/plugin.h; do
	check "rpm and deb ship the same $f" cmp -s "$ROOT$f" "$RROOT$f"
done
check "starling from the .rpm runs (version $VERSION)" \
	sh -c "'$RROOT/usr/bin/starling' version 2>&1 | grep -qF '$VERSION'"
run_out rpmcheckcfg "$RROOT/usr/bin/starling" check-config \
	--plugins-dir "$RROOT/usr/lib/starling/plugins" "$RROOT/etc/starling/starling.cfg"
check "check-config with the .rpm's daemon, plugins and config exits 0" test $? = 0

# ---- 7. systemd unit -----------------------------------------------------------
echo "# systemd-analyze verify"
UV=$WORK/unit
rm -rf "$UV"
mkdir -p "$UV"
# verify checks that ExecStart exists: point it at the extracted binary; and
# with MANPATH it checks that the Documentation= man pages exist.
sed "s#/usr/bin/starling#$S#g" "$UNIT" >"$UV/starling.service"
MANPATH=$ROOT/usr/share/man run_out verify systemd-analyze verify "$UV/starling.service"
vrc=$?
show verify
check "systemd-analyze verify accepts starling.service (no output)" \
	sh -c "[ $vrc = 0 ] && [ ! -s '$LOG/verify' ]"
for kv in 'User=starling' 'StateDirectory=starling' 'ProtectSystem=strict' 'ProtectHome=yes' \
	'NoNewPrivileges=yes' 'CapabilityBoundingSet=' 'Restart=on-failure' \
	'ExecReload=/bin/kill -HUP $MAINPID'; do
	check "unit has $kv" grep -qxF "$kv" "$UNIT"
done
run_out security systemd-analyze security --offline=yes "$UV/starling.service"
exposure=$(sed -n 's/.*Overall exposure level for starling.service: \([0-9.]*\).*/\1/p' "$LOG/security")
echo "    | systemd-analyze security: exposure $exposure"
check "systemd-analyze security exposure <= 2.0 (OK)" \
	awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 2.0) }'

# ---- 8. real installs ------------------------------------------------------
echo "# install with dpkg and rpm in a private mount namespace (overlays on /etc /usr /var)"
bash "$(dirname "$0")/install_test.sh" "$WORK/install" "$DEB" "$DEBDEV" "$RPM" "$RPMDEV" "$VERSION" \
	>"$LOG/install" 2>&1
irc=$?
grep -E '^(ok|FAIL|#)' "$LOG/install"
check "real dpkg and rpm installs: all checks passed" test "$irc" = 0

echo
if [ "$fails" -ne 0 ]; then
	echo "packaging: $fails check(s) failed (logs in $LOG)"
	exit 1
fi
echo "packaging: all checks passed"
exit 0
