# Sourced by tests that mount filesystems: re-runs the calling script in a
# private mount namespace of its own, so its mounts never reach the host.
#   enter_mount_namespace "$0" "$@"   (returns only inside the namespace)
# Exits 77 (skip) where a mount namespace cannot be made.
enter_mount_namespace() {
	[ -n "${STARLING_IN_MNTNS:-}" ] && return 0
	if ! unshare -m --propagation private true 2>/dev/null; then
		echo "SKIP: cannot create a mount namespace (unshare -m)"
		exit 77
	fi
	STARLING_IN_MNTNS=1 exec unshare -m --propagation private bash "$@"
}
