"""Notifications received for real: a local HTTP server takes the webhook, a local SMTP server the
e-mail, both started here. Failures notify, successes only with on_success, secrets never travel."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from drill import notify
from drill.config import NotifyConfig
from drill.redact import register_secret
from tests.conftest import closed_port, run_drill
from tests.live_servers import secrets_in, secrets_in_files

WEBHOOK_TOKEN = "T0000/B0000/hook-s3cret-token"
PASSWORD = "Db-S3cret-pw-notify"


class Webhook:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.paths.append(self.path)
                owner.received.append(json.loads(body))
                self.send_response(owner.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/{WEBHOOK_TOKEN}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Smtp:
    """A minimal SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.commands: list[str] = []  # every command line received (an AUTH line carries the password)
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.reply("220 test SMTP ready")
                sender, rcpts = "", []
                while line := self.rfile.readline():
                    command = line.decode().strip()
                    owner.commands.append(command)
                    verb = command.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.reply("250-test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME")  # no STARTTLS offered
                    elif verb == "AUTH":
                        self.reply("235 accepted")
                    elif verb in ("HELO", "NOOP", "RSET"):
                        self.reply("250 ok")
                    elif verb == "MAIL":
                        sender = command.split(":", 1)[1].strip().strip("<>").split(">")[0]
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        rcpts.append(command.split(":", 1)[1].strip().strip("<>"))
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 end with .")
                        data = b""
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data += chunk[1:] if chunk.startswith(b"..") else chunk
                        owner.messages.append((sender, rcpts, data))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

            def reply(self, text: str) -> None:
                self.wfile.write(text.encode() + b"\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _config(directory: Path, smtp: Smtp, on_success: bool = False) -> None:
    (directory / "drill.toml").write_text(f'''
[repository]
path = "repo"

[notify]
webhook_url_env = "DRILL_WEBHOOK"
email_to = ["oncall@example.com", "dba@example.com"]
email_from = "drill@example.com"
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
on_success = {str(on_success).lower()}

[stores.userdb]
kind = "postgres"
provision = "live"
url_env = "USERDB_URL"
''')


def test_a_failed_backup_is_announced_by_webhook_and_email(drill_dir: Path, webhook: Webhook, smtp: Smtp) -> None:
    _config(drill_dir, smtp)
    with closed_port() as closed:
        env = {"DRILL_WEBHOOK": webhook.url,
               "USERDB_URL": f"postgresql://postgres:{PASSWORD}@127.0.0.1:{closed.port}/userdb"}
        done = run_drill(drill_dir, "backup", "userdb", env=env)
    assert done.code == 1, done.output
    assert "cannot connect to PostgreSQL" in done.stderr and "notification failed" not in done.stderr

    [payload] = webhook.received
    assert webhook.paths == [f"/services/{WEBHOOK_TOKEN}"]
    assert payload["text"].startswith(":rotating_light: drill backup of userdb FAILED on ")
    [attachment] = payload["attachments"]
    assert attachment["color"] == "danger" and "cannot connect to PostgreSQL" in attachment["text"]
    assert {f["title"] for f in attachment["fields"]} >= {"seconds"}
    [(sender, rcpts, data)] = smtp.messages
    assert sender == "drill@example.com" and rcpts == ["oncall@example.com", "dba@example.com"]
    mail = message_from_bytes(data)
    assert mail["Subject"].startswith("drill backup of userdb FAILED on ")
    assert "cannot connect to PostgreSQL" in mail.get_payload(decode=True).decode()
    log = (drill_dir / "repo" / "drill-backup.log").read_text()
    everything = json.dumps(payload) + data.decode() + done.output + log
    assert secrets_in(everything, PASSWORD, WEBHOOK_TOKEN) == []
    assert secrets_in_files(drill_dir, PASSWORD, WEBHOOK_TOKEN) == {}


def test_success_is_quiet_unless_on_success(drill_dir: Path, webhook: Webhook, smtp: Smtp) -> None:
    _config(drill_dir, smtp)
    env = {"DRILL_WEBHOOK": webhook.url}
    assert run_drill(drill_dir, "backups", "verify", env=env).code == 0
    assert webhook.received == [] and smtp.messages == []
    _config(drill_dir, smtp, on_success=True)
    assert run_drill(drill_dir, "backups", "verify", env=env).code == 0
    assert webhook.received[0]["attachments"][0]["color"] == "good"
    assert "drill verify of all succeeded" in webhook.received[0]["text"]
    assert len(smtp.messages) == 1


def test_an_undeliverable_notification_warns_without_leaking_or_changing_the_exit_code(
        drill_dir: Path, webhook: Webhook, smtp: Smtp) -> None:
    webhook.status = 500
    _config(drill_dir, smtp, on_success=True)
    smtp.server.shutdown()
    smtp.server.server_close()
    done = run_drill(drill_dir, "backups", "verify", env={"DRILL_WEBHOOK": webhook.url})
    assert done.code == 0
    assert f"webhook http://127.0.0.1:{webhook.server.server_port}/*** answered HTTP 500" in done.stderr
    assert "e-mail to oncall@example.com, dba@example.com via 127.0.0.1" in done.stderr
    assert WEBHOOK_TOKEN not in done.output
    missing = run_drill(drill_dir, "backups", "verify")
    assert "environment variable DRILL_WEBHOOK (notify.webhook_url_env) is not set" in missing.stderr


def test_a_failed_drill_run_is_announced(drill_dir: Path, webhook: Webhook, smtp: Smtp) -> None:
    _config(drill_dir, smtp)
    (drill_dir / "features").mkdir()
    (drill_dir / "features" / "f.feature").write_text('''Feature: f
  Scenario: an empty store holds nothing
    Given the PostgreSQL store "scratchdb"
    Then "scratchdb" holds 5 rows
''')
    done = run_drill(drill_dir, "run", "--quiet", env={"DRILL_WEBHOOK": webhook.url})
    assert done.code == 1, done.output
    [payload] = webhook.received
    assert payload["text"].startswith(":rotating_light: drill drill of run ") and "FAILED" in payload["text"]
    assert "results.json" in json.dumps(payload)
    assert len(smtp.messages) == 1


def test_secrets_are_redacted_in_what_is_sent(webhook: Webhook, smtp: Smtp, monkeypatch: pytest.MonkeyPatch) -> None:
    register_secret("key-material-abc123")
    monkeypatch.setenv("HOOK", webhook.url)
    config = NotifyConfig(webhook_url_env="HOOK", email_to=("a@example.com",), smtp_host="127.0.0.1",
                          smtp_port=smtp.port)
    event = notify.Event("restore", "failed", "userdb", "failed with key-material-abc123 and "
                         "postgresql://u:pw-in-url@db/x", {"url": "postgresql://u:pw-in-url@db/x"})
    assert notify.send(config, event) == []
    sent = json.dumps(webhook.received) + smtp.messages[0][2].decode()
    assert "key-material-abc123" not in sent and "pw-in-url" not in sent and "***" in sent


def test_notify_configuration_errors_point_at_the_line(drill_dir: Path) -> None:
    (drill_dir / "drill.toml").write_text('[notify]\nemail_to = ["a@example.com"]\nwebhook_url_env = "https://x"\n')
    done = run_drill(drill_dir, "backups", "list")
    assert done.code == 2
    assert "drill.toml:3: [notify.webhook_url_env] must be the NAME of an environment variable" in done.stderr
    (drill_dir / "drill.toml").write_text('[repository]\ndaily = -1\n')
    done = run_drill(drill_dir, "backups", "list")
    assert done.code == 2 and "drill.toml:2: [repository.daily] must be a whole number" in done.stderr
    (drill_dir / "drill.toml").write_text('[repository]\npath = "gs://Bad_Bucket!/x"\n')
    done = run_drill(drill_dir, "backups", "list")
    assert done.code == 2
    assert "drill.toml:2: [repository.path] 'gs://Bad_Bucket!/x' is not a GCS location" in done.stderr


def _login_config(host: str, port: int, **tls: bool) -> NotifyConfig:
    return NotifyConfig(email_to=("oncall@example.com",), smtp_host=host, smtp_port=port, smtp_user="drill",
                        smtp_password_env="SMTP_PW", **tls)


def test_an_smtp_password_never_travels_in_clear_text(smtp: Smtp, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64
    import socket

    monkeypatch.setenv("SMTP_PW", PASSWORD)
    event = notify.Event("backup", "failed", "userdb", "it failed")
    # To a host that is not this machine without TLS: refused before any connection is opened.
    connections: list[object] = []
    real_connect = socket.create_connection
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connections.append(a) or real_connect(*a, **k))
    [problem] = notify.send(_login_config("192.0.2.10", 25), event)  # TEST-NET-1: never routed
    assert "refusing to send the SMTP password in clear text to 192.0.2.10" in problem
    assert "smtp_starttls = true" in problem and connections == []
    # STARTTLS asked for, and the server does not offer it: no login, no downgrade.
    [problem] = notify.send(_login_config("127.0.0.1", smtp.port, smtp_starttls=True), event)
    assert "STARTTLS" in problem and PASSWORD not in problem
    assert smtp.commands and not any(c.upper().startswith("AUTH") for c in smtp.commands)
    assert smtp.messages == []
    # On this machine (loopback) plain login is allowed: the server gets the password and the message.
    assert notify.send(_login_config("127.0.0.1", smtp.port), event) == []
    auth = [c for c in smtp.commands if c.upper().startswith("AUTH")]
    assert auth and PASSWORD.encode() in base64.b64decode(auth[0].split()[-1])
    assert len(smtp.messages) == 1


def test_a_configuration_that_would_send_the_password_in_clear_is_refused(drill_dir: Path) -> None:
    (drill_dir / "drill.toml").write_text('[notify]\nemail_to = ["a@example.com"]\nsmtp_host = "mail.example.com"\n'
                                          'smtp_user = "drill"\nsmtp_password_env = "PW"\n')
    done = run_drill(drill_dir, "backups", "list")
    assert done.code == 2
    assert "drill.toml:4: [notify.smtp_user] logging in to an SMTP server that is not on this machine needs TLS" \
        in done.stderr
    for fixed in ('smtp_starttls = true', 'smtp_ssl = true\nsmtp_port = 465'):
        (drill_dir / "drill.toml").write_text('[notify]\nemail_to = ["a@example.com"]\nsmtp_host = "mail.example.com"\n'
                                              f'smtp_user = "drill"\nsmtp_password_env = "PW"\n{fixed}\n')
        assert run_drill(drill_dir, "backups", "list").code == 0
