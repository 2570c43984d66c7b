# %pre: the unprivileged system user the service runs as.
getent group starling >/dev/null || groupadd -r starling
getent passwd starling >/dev/null ||
	useradd -r -g starling -d /var/lib/starling -M -s /sbin/nologin \
		-c "Starling scrape daemon" starling
exit 0
