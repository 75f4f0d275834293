"""gunicorn reads this file from the working directory by itself (Procfile, systemd unit, bench).

The access log leaves out query strings: the webhook handshake carries `hub.verify_token` there.
"""

access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
