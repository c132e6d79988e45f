"""[notify]: who hears about failures (a webhook, e-mail over SMTP); secrets are named by env var, never written."""

from __future__ import annotations

import re
from typing import Any

from drill.config.model import NotifyConfig, is_loopback_host
from drill.config.reader import TomlReader

NOTIFY_KEYS: frozenset[str] = frozenset(
    {"webhook_url_env", "email_to", "email_from", "smtp_host", "smtp_port", "smtp_user", "smtp_password_env",
     "smtp_starttls", "smtp_ssl", "on_success"})


def read_notify(reader: TomlReader, data: dict[str, Any]) -> NotifyConfig:
    reader.check_keys("notify", data, NOTIFY_KEYS)
    for key in ("webhook_url_env", "smtp_password_env"):
        if key in data and not (isinstance(data[key], str)
                                and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", data[key])):
            raise reader.error("must be the NAME of an environment variable (the secret itself never goes in "
                               "drill.toml)", "notify", key)
    for key in ("email_from", "smtp_host", "smtp_user"):
        if key in data and not (isinstance(data[key], str) and data[key]):
            raise reader.error("must be a non-empty string", "notify", key)
    for key in ("smtp_starttls", "smtp_ssl", "on_success"):
        if key in data and not isinstance(data[key], bool):
            raise reader.error("must be true or false", "notify", key)
    port = data.get("smtp_port", 25)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise reader.error("must be a TCP port number (1-65535)", "notify", "smtp_port")
    if data.get("smtp_user") and not (data.get("smtp_starttls") or data.get("smtp_ssl")) \
            and not is_loopback_host(str(data.get("smtp_host", NotifyConfig.smtp_host))):
        raise reader.error("logging in to an SMTP server that is not on this machine needs TLS, or the password "
                           "travels in clear text: set smtp_starttls = true (or smtp_ssl = true for SMTPS, port "
                           "465)", "notify", "smtp_user")
    email_to = reader.string_list("notify", data, "email_to")
    if any("@" not in address for address in email_to):
        raise reader.error("must be a list of e-mail addresses", "notify", "email_to")
    return NotifyConfig(
        webhook_url_env=data.get("webhook_url_env"), email_to=tuple(email_to),
        email_from=data.get("email_from", NotifyConfig.email_from),
        smtp_host=data.get("smtp_host", NotifyConfig.smtp_host), smtp_port=port,
        smtp_user=data.get("smtp_user"), smtp_password_env=data.get("smtp_password_env"),
        smtp_starttls=data.get("smtp_starttls", False), smtp_ssl=data.get("smtp_ssl", False),
        on_success=data.get("on_success", False))
