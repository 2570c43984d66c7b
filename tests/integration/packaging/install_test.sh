#!/bin/bash
# Installs the built packages for real, with dpkg and with rpm, inside a
# private mount namespace in which /etc, /usr and /var are overlays whose
# writes go to WORK_DIR: the package managers, maintainer scripts and
# scriptlets run unmodified against what looks like this machine, and the
# machine itself is left untouched. Checks what an operator sees after
# install, after upgrading with a locally edited config, after remove and
# after purge; and the README's out-of-tree plugin recipe with plain
# `pkg-config` and `make` against the installed starling-dev.
#
# usage: install_test.sh WORK_DIR DEB DEBDEV RPM RPMDEV VERSION
set -u

WORK=$1
DEB=$2
DEBDEV=$3
RPM=$4
RPMDEV=$5
VERSION=$6

if [ "$(id -u)" != 0 ]; then
	echo "FAIL - needs root"
	exit 1
fi
if [ "${STARLING_INSTALL_INNER:-}" != 1 ]; then
	rm -rf "$WORK"
	mkdir -p "$WORK"
	STARLING_INSTALL_INNER=1 exec unshare --mount --propagation private \
		bash "$0" "$(cd "$WORK" && pwd)" "$DEB" "$DEBDEV" "$RPM" "$RPMDEV" "$VERSION"
fi

# ---- inside the private mount namespace ------------------------------------
fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
check() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else bad "$d"; fi
}
overlay() { # overlay DIR NAME: writes below DIR go to $WORK/NAME
	mkdir -p "$WORK/$2.upper" "$WORK/$2.work"
	mount -t overlay overlay \
		-o "lowerdir=$1,upperdir=$WORK/$2.upper,workdir=$WORK/$2.work" "$1"
}
for d in /etc:etc /usr:usr /var:var; do
	overlay "${d%%:*}" "${d##*:}" || { echo "FAIL - cannot overlay ${d%%:*}"; exit 1; }
done
mount -t tmpfs tmpfs /run || exit 1 # no systemd running in here
mkdir -p /run/lock
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
LOG=$WORK/log
mkdir -p "$LOG"

if getent passwd starling >/dev/null || [ -e /usr/bin/starling ]; then
	echo "FAIL - starling is already installed on this machine; cannot test installation"
	exit 1
fi
# Leftovers of a daemon run by hand (e.g. `starling run` as root creates
# /var/lib/starling) would hide what the package creates. Remove them from
# this namespace's view only: /etc and /var are overlays here (checked), so
# this writes whiteouts into WORK_DIR and leaves the machine alone.
for d in /var/lib/starling /etc/starling; do
	if [ -e "$d" ]; then
		[ "$(findmnt -n -o FSTYPE --target "$d")" = overlay ] ||
			{ echo "FAIL - $d is not on an overlay; refusing to touch it"; exit 1; }
		echo "# note: this machine has $d (not from a package); hidden in the test namespace"
		rm -rf "$d"
	fi
done

user_ok() { getent passwd starling >/dev/null && getent group starling >/dev/null; }
no_user() { ! getent passwd starling >/dev/null && ! getent group starling >/dev/null; }
conf_perms() { [ "$(stat -c '%U:%G %a' /etc/starling/starling.cfg 2>/dev/null)" = "root:starling 640" ]; }
state_ok() { [ "$(stat -c '%U:%G %a' /var/lib/starling 2>/dev/null)" = "starling:starling 750" ]; }
installed_checks() { # installed_checks PREFIX
	local p=$1
	check "$p: starling version prints $VERSION" \
		sh -c "/usr/bin/starling version | grep -qF '$VERSION'"
	check "$p: starling check-config /etc/starling/starling.cfg (packaged paths, no flags)" \
		sh -c "/usr/bin/starling check-config /etc/starling/starling.cfg >'$LOG/$p-checkcfg' 2>&1"
	check "$p: starling plugins list finds the packaged plugins in the default directory" \
		sh -c "/usr/bin/starling plugins list 2>&1 | grep -q 'local.file_sink\|/usr/lib/starling/plugins/'"
	check "$p: system user and group starling" user_ok
	check "$p: /etc/starling/starling.cfg is root:starling 0640" conf_perms
	check "$p: /var/lib/starling is starling:starling 0750" state_ok
	check "$p: the starling user can read the config (what the service needs)" \
		sh -c "setpriv --reuid=starling --regid=starling --init-groups \
		/usr/bin/starling check-config /etc/starling/starling.cfg >/dev/null 2>&1"
}

echo "# dpkg: install starling and starling-dev (dependencies checked for real)"
if dpkg -i "$DEB" "$DEBDEV" >"$LOG/dpkg-install" 2>&1; then
	ok "dpkg -i starling starling-dev"
else
	sed 's/^/    | /' "$LOG/dpkg-install" | tail -n 20
	bad "dpkg -i failed"
fi
check "dpkg: both packages are installed" sh -c \
	"dpkg-query -W -f='\${Status}\n' starling starling-dev | grep -c '^install ok installed' | grep -qx 2"
installed_checks deb
check "deb: service enabled for multi-user.target" \
	test -L /etc/systemd/system/multi-user.target.wants/starling.service

echo "# deb: the service's command line, run as the unprivileged user starling"
# What systemd would run (minus the sandbox): the unit's ExecStart as
# User=starling. Config readable, plugins loadable, state writable.
exec_start=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/starling.service)
read -r -a argv <<<"$exec_start"
setpriv --reuid=starling --regid=starling --init-groups \
	"${argv[@]}" --server.http.listen-addr 127.0.0.1:18946 >"$LOG/run-as-starling" 2>&1 &
pid=$!
ready=0
for _ in $(seq 1 100); do # 20 s
	if curl -fsS -o /dev/null http://127.0.0.1:18946/-/ready 2>/dev/null; then
		ready=1
		break
	fi
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.2
done
check "deb: ExecStart as user starling gets ready" test "$ready" = 1
kill -TERM "$pid" 2>/dev/null
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
check "deb: its state is written under /var/lib/starling, owned by starling" \
	sh -c "[ -n \"\$(find /var/lib/starling -mindepth 2 -type f -user starling | head -n1)\" ]"
[ "$ready" = 1 ] || sed 's/^/    | /' "$LOG/run-as-starling" | tail -n 10

echo "# README recipe: build the example plugin against the installed SDK and drop it in"
cp -r /usr/share/doc/starling-dev/examples/plugin "$WORK/example"
if make -C "$WORK/example" >"$LOG/make" 2>&1; then
	ok "make (plain pkg-config) builds the example plugin"
else
	sed 's/^/    | /' "$LOG/make" | tail -n 20
	bad "make failed"
fi
plugindir=$(pkg-config --variable=plugindir starling-plugin)
install -m 0644 "$WORK/example/sample_counter.so" "$plugindir/" 2>/dev/null
check "the dropped-in plugin shows in starling plugins list" \
	sh -c "/usr/bin/starling plugins list | grep -q example.sample_counter"

echo "# dpkg: upgrade (reinstall) keeps a locally edited config"
echo '// local change by the operator' >>/etc/starling/starling.cfg
sum_before=$(md5sum </etc/starling/starling.cfg)
if dpkg -i "$DEB" >"$LOG/dpkg-upgrade" 2>&1; then
	ok "dpkg -i over the installed version"
else
	sed 's/^/    | /' "$LOG/dpkg-upgrade" | tail -n 20
	bad "dpkg upgrade failed"
fi
check "dpkg: the edited config is untouched" test "$(md5sum </etc/starling/starling.cfg)" = "$sum_before"
check "dpkg: config still root:starling 0640 after the upgrade" conf_perms
check "dpkg: still exactly one starling user" test "$(getent passwd | grep -c '^starling:')" = 1

echo "# dpkg: remove"
rm -f "$plugindir/sample_counter.so"
echo data >/var/lib/starling/queue
if dpkg -r starling-dev starling >"$LOG/dpkg-remove" 2>&1; then ok "dpkg -r"; else bad "dpkg -r failed"; fi
check "remove: /usr/bin/starling is gone" test ! -e /usr/bin/starling
check "remove: the config, the state and the user stay" \
	sh -c "[ -f /etc/starling/starling.cfg ] && [ -f /var/lib/starling/queue ] && getent passwd starling >/dev/null"

echo "# dpkg: purge"
if dpkg -P starling >"$LOG/dpkg-purge" 2>&1; then ok "dpkg -P"; else bad "dpkg -P failed"; fi
check "purge: /etc/starling is gone" test ! -e /etc/starling
check "purge: /var/lib/starling is gone" test ! -e /var/lib/starling
check "purge: user and group starling are gone" no_user
check "purge: no stat override left" sh -c "! dpkg-statoverride --list | grep -q starling"
check "purge: dpkg no longer knows starling" \
	sh -c "! dpkg-query -W -f='\${Status}' starling 2>/dev/null | grep -q installed"

echo "# rpm: install, upgrade with an edited config, erase"
# The rpm database here knows nothing of Debian's libraries: --nodeps.
if rpm -i --nodeps "$RPM" "$RPMDEV" >"$LOG/rpm-install" 2>&1; then
	ok "rpm -i starling starling-devel"
else
	sed 's/^/    | /' "$LOG/rpm-install" | tail -n 20
	bad "rpm -i failed"
fi
check "rpm: both packages are installed" sh -c "rpm -q starling starling-devel >/dev/null"
installed_checks rpm
check "rpm: rpm -V finds the installed files intact" \
	sh -c "rpm -V --nodeps starling starling-devel >'$LOG/rpm-verify' 2>&1"
echo '// local change by the operator' >>/etc/starling/starling.cfg
sum_before=$(md5sum </etc/starling/starling.cfg)
if rpm -U --replacepkgs --nodeps "$RPM" >"$LOG/rpm-upgrade" 2>&1; then
	ok "rpm -U --replacepkgs"
else
	sed 's/^/    | /' "$LOG/rpm-upgrade" | tail -n 20
	bad "rpm upgrade failed"
fi
check "rpm: the edited config is untouched (%config(noreplace))" \
	test "$(md5sum </etc/starling/starling.cfg)" = "$sum_before"
if rpm -e starling-devel starling >"$LOG/rpm-erase" 2>&1; then ok "rpm -e"; else bad "rpm -e failed"; fi
check "rpm erase: /usr/bin/starling is gone" test ! -e /usr/bin/starling
check "rpm erase: the edited config is kept as starling.cfg.rpmsave" \
	test -f /etc/starling/starling.cfg.rpmsave
check "rpm erase: /var/lib/starling and the user are gone" \
	sh -c "[ ! -e /var/lib/starling ] && ! getent passwd starling >/dev/null"

echo
if [ "$fails" -ne 0 ]; then
	echo "install: $fails check(s) failed (logs in $LOG)"
	exit 1
fi
echo "install: all checks passed"
exit 0
