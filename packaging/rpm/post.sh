# %post: state directory, unit reload. Following RPM distributions' policy
# the service is not enabled or started here (use systemctl enable --now or a
# preset). Guarded so it works where systemd is not running.
if [ ! -d /var/lib/starling ]; then
	mkdir -p /var/lib/starling
	chown starling:starling /var/lib/starling
	chmod 0750 /var/lib/starling
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
