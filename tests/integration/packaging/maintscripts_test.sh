#!/bin/bash
# Runs the deb and rpm maintainer scripts of the starling package through
# install, upgrade, remove and purge, as root, inside a private mount
# namespace whose /etc, /var/lib, /run and /usr/lib/systemd/system are
# throwaway copies: users, state directory, dpkg stat overrides and systemd
# enablement are really created and removed, but only in the copies.
# systemctl is a stub that logs its calls (systemd is not running here).
#
# usage: maintscripts_test.sh SOURCE_DIR WORK_DIR
set -u

SRC=$(cd "$1" && pwd) || exit 1
WORK=$2
PKG=$SRC/packaging

if [ "$(id -u)" != 0 ]; then
	echo "FAIL: needs root (user namespaces are not enough for adduser)" >&2
	exit 1
fi
for tool in unshare mount adduser deluser useradd userdel dpkg-statoverride deb-systemd-helper deb-systemd-invoke; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "FAIL: $tool not installed" >&2
		exit 1
	fi
done

rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

if [ "${STARLING_MAINT_INNER:-}" != 1 ]; then
	STARLING_MAINT_INNER=1 exec unshare --mount --propagation private \
		bash "$0" "$SRC" "$WORK"
fi

# ---- inside the private mount namespace ------------------------------------
T=$WORK
mkdir -p "$T/etc" "$T/varlib/dpkg" "$T/run" "$T/units" "$T/bin"
cp -a /etc/. "$T/etc/"
cp -a /var/lib/dpkg/statoverride "$T/varlib/dpkg/"
cp -a /usr/lib/systemd/system/. "$T/units/"
cp "$PKG/starling.service" "$T/units/"
CALLS=$T/systemctl.calls
: >"$CALLS"
cat >"$T/bin/systemctl" <<STUB
#!/bin/sh
# stub: offline operations on a root directory (what deb-systemd-helper
# uses to enable units) run for real; calls to a running manager are logged,
# and the unit is reported as enabled and running.
case " \$* " in
*" --root="*) exec /usr/bin/systemctl "\$@" ;;
esac
echo "systemctl \$*" >>"$CALLS"
case " \$* " in
*" is-enabled "*) echo enabled ;;
esac
exit 0
STUB
chmod 0755 "$T/bin/systemctl"

mount --bind "$T/etc" /etc || exit 1
mount --bind "$T/varlib" /var/lib || exit 1
mount --bind "$T/units" /usr/lib/systemd/system || exit 1
mount -t tmpfs tmpfs /run || exit 1
# A policy-rc.d that forbids service actions (containers, chroots) would hide
# what the scripts ask for; allow everything in here.
if [ -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 0\n' >"$T/policy-rc.d"
	chmod 0755 "$T/policy-rc.d"
	mount --bind "$T/policy-rc.d" /usr/sbin/policy-rc.d || exit 1
fi
export PATH="$T/bin:/usr/sbin:/usr/bin:/sbin:/bin"

fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
check() { # check DESCRIPTION command...
	local d=$1
	shift
	if "$@"; then ok "$d"; else bad "$d"; fi
}
run_script() { # run_script SCRIPT ARGS...: must exit 0
	local out
	# deb-systemd-helper only acts when called from dpkg.
	if out=$(DPKG_MAINTSCRIPT_PACKAGE=starling DPKG_MAINTSCRIPT_ARCH=amd64 \
		DPKG_MAINTSCRIPT_NAME=$(basename "$1") "$@" 2>&1); then
		ok "$(basename "$1") ${*:2} exits 0"
	else
		bad "$(basename "$1") ${*:2} exited $?: $out"
	fi
}
calls_have() { grep -qF -- "$1" "$CALLS"; }
user_ok() {
	local ent
	ent=$(getent passwd starling) || return 1
	IFS=: read -r _ _ uid _ _ home shell <<<"$ent"
	[ "$uid" -lt 1000 ] && [ "$home" = /var/lib/starling ] &&
		case $shell in */nologin) true ;; *) false ;; esac
}
no_user() { ! getent passwd starling >/dev/null && ! getent group starling >/dev/null; }
state_ok() { [ "$(stat -c '%U:%G %a' /var/lib/starling 2>/dev/null)" = "starling:starling 750" ]; }
conf_ok() { [ "$(stat -c '%U:%G %a' /etc/starling/starling.cfg)" = "root:starling 640" ]; }
wants=/etc/systemd/system/multi-user.target.wants/starling.service

if getent passwd starling >/dev/null; then
	echo "FAIL: a user starling already exists in the copy of /etc; cannot test creation"
	exit 1
fi

# The package's files, as dpkg would have unpacked them.
mkdir -p /etc/starling
install -m 0644 "$PKG/starling.cfg" /etc/starling/starling.cfg

echo "# deb: fresh install, systemd not running"
run_script "$PKG/deb/postinst" configure
check "system user starling (uid < 1000, home /var/lib/starling, nologin)" user_ok
check "group starling exists" sh -c "getent group starling >/dev/null"
check "/var/lib/starling is starling:starling 0750" state_ok
check "config is root:starling 0640 (may hold secrets)" conf_ok
check "stat override recorded for the config" \
	grep -qx "root starling 640 /etc/starling/starling.cfg" /var/lib/dpkg/statoverride
check "service enabled for multi-user.target" test -L "$wants"
check "no systemctl call while systemd is not running" test ! -s "$CALLS"

echo "# deb: upgrade while the service runs (systemd running)"
mkdir -p /run/systemd/system
dpkg-statoverride --remove /etc/starling/starling.cfg >/dev/null
dpkg-statoverride --update --add root starling 0600 /etc/starling/starling.cfg
: >"$CALLS"
run_script "$PKG/deb/prerm" upgrade 0.0.9
check "prerm upgrade does not stop the service" test ! -s "$CALLS"
run_script "$PKG/deb/postinst" configure 0.0.9
check "postinst upgrade reloads systemd" calls_have "daemon-reload"
check "postinst upgrade restarts the service only if running (try-restart)" \
	calls_have "try-restart starling.service"
check "postinst upgrade does not start a stopped service" \
	sh -c "! grep -qE 'systemctl (--quiet )?(--system )?start ' '$CALLS'"
check "admin's permission choice (0600) kept on upgrade" \
	test "$(stat -c %a /etc/starling/starling.cfg)" = 600
check "service still enabled" test -L "$wants"
check "still exactly one starling user" test "$(getent passwd | grep -c '^starling:')" = 1

echo "# deb: fresh install with systemd running starts the service"
: >"$CALLS"
echo scratch >/var/lib/starling/queue
run_script "$PKG/deb/postinst" configure
check "service started on first install" calls_have "start starling.service"

echo "# deb: remove"
: >"$CALLS"
run_script "$PKG/deb/prerm" remove
check "prerm remove stops the service" calls_have "stop starling.service"
run_script "$PKG/deb/postrm" remove
check "remove keeps the user" sh -c "getent passwd starling >/dev/null"
check "remove keeps the state" test -f /var/lib/starling/queue

echo "# deb: purge"
run_script "$PKG/deb/postrm" purge
check "purge removes /var/lib/starling" test ! -e /var/lib/starling
check "purge removes user and group starling" no_user
check "purge removes the stat override" \
	sh -c "! grep -q starling.cfg /var/lib/dpkg/statoverride"
check "purge removes the enablement symlink" test ! -e "$wants"

echo "# deb: scripts reject unknown actions"
if "$PKG/deb/postinst" bogus >/dev/null 2>&1; then bad "postinst bogus should fail"; else ok "postinst bogus fails"; fi
if "$PKG/deb/postrm" bogus >/dev/null 2>&1; then bad "postrm bogus should fail"; else ok "postrm bogus fails"; fi

echo "# rpm: install, upgrade, erase"
rm -rf /run/systemd
: >"$CALLS"
run_script sh "$PKG/rpm/pre.sh" 1
run_script sh "$PKG/rpm/post.sh" 1
check "rpm: system user starling" user_ok
check "rpm: /var/lib/starling is starling:starling 0750" state_ok
check "rpm: no systemctl call while systemd is not running" test ! -s "$CALLS"
mkdir -p /run/systemd/system
run_script sh "$PKG/rpm/pre.sh" 2
run_script sh "$PKG/rpm/post.sh" 2
run_script sh "$PKG/rpm/preun.sh" 1
check "rpm upgrade: preun does not stop" sh -c "! grep -q 'disable' '$CALLS'"
run_script sh "$PKG/rpm/postun.sh" 1
check "rpm upgrade: try-restart" calls_have "try-restart starling.service"
check "rpm upgrade keeps the user" user_ok
: >"$CALLS"
run_script sh "$PKG/rpm/preun.sh" 0
check "rpm erase: stop and disable" calls_have "disable --now starling.service"
run_script sh "$PKG/rpm/postun.sh" 0
check "rpm erase removes /var/lib/starling" test ! -e /var/lib/starling
check "rpm erase removes user and group" no_user

echo
if [ "$fails" -ne 0 ]; then
	echo "maintainer scripts: $fails check(s) failed"
	exit 1
fi
echo "maintainer scripts: all checks passed"
exit 0
