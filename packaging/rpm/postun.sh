# %postun: on upgrade ($1 >= 1) restart the service if it is running; on
# erase ($1 = 0) RPM has no separate purge, so do what dpkg's purge does:
# delete the state directory and the system user. A modified config is kept
# as starling.cfg.rpmsave by RPM itself.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
	if [ "$1" -ge 1 ]; then
		systemctl try-restart starling.service >/dev/null 2>&1 || :
	fi
fi
if [ "$1" -eq 0 ]; then
	rm -rf /var/lib/starling
	getent passwd starling >/dev/null && userdel starling >/dev/null 2>&1
	getent group starling >/dev/null && groupdel starling >/dev/null 2>&1
fi
exit 0
