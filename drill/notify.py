"""Tell people when a backup, restore or drill fails (and, if configured, when it succeeds).

Two channels, both from the standard library: a webhook receiving Slack-compatible JSON
(`{"text": ..., "attachments": [...]}`, which Slack, Mattermost, Rocket.Chat and Teams' Slack
connector accept) and e-mail over SMTP. The webhook URL and the SMTP password come from
environment variables named in [notify], are registered as secrets, and every text sent is
redacted. A notification that cannot be delivered is reported, never fatal: the run's own exit
code stays what the run decided. An SMTP password never travels in clear text: logging in needs
STARTTLS or SMTPS (certificate verified) unless the server is on this machine (loopback).
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage

from drill.config import NotifyConfig, is_loopback_host
from drill.redact import redact, redact_text, register_secret, url_without_password

TIMEOUT = 20.0


@dataclass(frozen=True)
class Event:
    action: str  # backup | restore | verify | prune | drill
    status: str  # ok | failed
    subject: str  # e.g. the store name or the run id
    message: str
    details: dict[str, str] = field(default_factory=dict)
    host: str = field(default_factory=socket.gethostname)

    @property
    def title(self) -> str:
        verdict = "succeeded" if self.status == "ok" else "FAILED"
        return f"drill {self.action} of {self.subject} {verdict} on {self.host}"


def wanted(config: NotifyConfig, event: Event) -> bool:
    return config.enabled and (event.status != "ok" or config.on_success)


def send(config: NotifyConfig, event: Event) -> list[str]:
    """Deliver `event` on every configured channel; returns the problems (empty when all went out)."""
    if not wanted(config, event):
        return []
    problems: list[str] = []
    if config.webhook_url_env:
        problems += _webhook(config, event)
    if config.email_to:
        problems += _email(config, event)
    return [redact_text(p) for p in problems]


def slack_payload(event: Event) -> dict[str, object]:
    fields = [{"title": k, "value": v, "short": len(v) < 40} for k, v in event.details.items()]
    payload = {
        "text": f"{':white_check_mark:' if event.status == 'ok' else ':rotating_light:'} {event.title}",
        "attachments": [{"color": "good" if event.status == "ok" else "danger", "title": event.title,
                         "text": event.message, "fields": fields, "footer": "drill"}],
    }
    redacted: dict[str, object] = redact(payload)
    return redacted


def _webhook(config: NotifyConfig, event: Event) -> list[str]:
    assert config.webhook_url_env is not None
    url = os.environ.get(config.webhook_url_env)
    if not url:
        return [f"webhook not sent: environment variable {config.webhook_url_env} (notify.webhook_url_env) is "
                f"not set"]
    register_secret(url)
    register_secret(url_without_password(url)[1])
    shown = _shown(url)
    body = json.dumps(slack_payload(event)).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "drill"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            if response.status >= 300:
                return [f"webhook {shown} answered HTTP {response.status}"]
    except urllib.error.HTTPError as exc:
        return [f"webhook {shown} answered HTTP {exc.code}"]
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return [f"webhook {shown} could not be reached: {reason}"]
    return []


def _shown(url: str) -> str:
    """Scheme and host only: a webhook's path is its secret (Slack's /services/T../B../XXXX)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].rpartition('@')[2]}/***"


def _email(config: NotifyConfig, event: Event) -> list[str]:
    message = EmailMessage()
    message["Subject"] = redact_text(event.title)
    message["From"] = config.email_from
    message["To"] = ", ".join(config.email_to)
    lines = [event.message, "", *(f"{k}: {v}" for k, v in event.details.items())]
    message.set_content(redact_text("\n".join(lines)) + "\n")
    password = os.environ.get(config.smtp_password_env) if config.smtp_password_env else None
    register_secret(password)
    if config.smtp_password_env and not password:
        return [f"e-mail not sent: environment variable {config.smtp_password_env} (notify.smtp_password_env) is "
                f"not set"]
    if config.smtp_user and not (config.smtp_starttls or config.smtp_ssl) and not is_loopback_host(config.smtp_host):
        return [f"e-mail not sent: refusing to send the SMTP password in clear text to {config.smtp_host} (not this "
                f"machine); set smtp_starttls = true (or smtp_ssl = true for SMTPS) under [notify]"]
    context = ssl.create_default_context()  # the server's certificate is verified: no silent man in the middle
    try:
        smtp = (smtplib.SMTP_SSL(config.smtp_host, config.smtp_port, timeout=TIMEOUT, context=context)
                if config.smtp_ssl else smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=TIMEOUT))
        with smtp:
            if config.smtp_starttls and not config.smtp_ssl:
                smtp.starttls(context=context)  # raises when the server offers no STARTTLS: never a silent downgrade
            if config.smtp_user and password:
                smtp.login(config.smtp_user, password)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        return [f"e-mail to {', '.join(config.email_to)} via {config.smtp_host}:{config.smtp_port} not sent: {exc}"]
    return []
