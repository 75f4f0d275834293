"""gunicorn reads this file from the working directory by itself (Procfile, systemd unit, bench).

The access log leaves out query strings (the webhook handshake carries `hub.verify_token` there, a
dashboard search a customer's number), and the contact API's paths lose the customer's number:
after an LGPD erasure no log we write may still hold it.
"""

from gunicorn.glogging import Logger

from chatbot.logs import redact_path

access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'


class AccessLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = redact_path(atoms["U"] or "")
        return atoms


logger_class = AccessLogger
