"""`drill status`: the arguments, and where the output goes (stdout, a file written atomically, a Pushgateway)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from drill.config import Config
from drill.errors import DrillError

FORMATS = ("text", "json", "prometheus", "badge")
DEFAULT_PUSH_ENV = "DRILL_PUSHGATEWAY_URL"


def add_parser(commands: Any) -> None:
    status = commands.add_parser(
        "status", help="last verified backup, last drill result, RTO/RPO trend and overdue controls per store, "
                       "from the reports alone (text, JSON, Prometheus metrics or an SVG badge)")
    status.add_argument("--report-dir", type=Path, default=None, help="where runs are (default: reports/)")
    status.add_argument("--format", choices=FORMATS, default="text",
                        help="text (default), json, prometheus (text format for node_exporter's textfile "
                             "collector) or badge (SVG)")
    status.add_argument("--json", action="store_true", help="the same as --format json")
    status.add_argument("--output", "-o", type=Path, default=None,
                        help="write to this file (atomically, for the textfile collector) instead of stdout")
    status.add_argument("--as-of", default=None, metavar="TIME",
                        help="evaluate ages and controls at this ISO 8601 time instead of now (e.g. an audit date)")
    status.add_argument("--push", action="store_true",
                        help=f"also push the metrics to the Pushgateway whose URL is in ${DEFAULT_PUSH_ENV}")
    status.add_argument("--push-url-env", default=None, metavar="VAR",
                        help="push the metrics to the Pushgateway whose URL is in this environment variable")
    status.add_argument("--label", default="DR drills", help="the badge's left-hand text (default: DR drills)")


def _as_of(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise DrillError(f"--as-of {text!r} is not an ISO 8601 time; write e.g. 2026-03-31T23:59:59Z") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _write(path: Path, text: str) -> None:
    """Write then rename, so a collector never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _push_url(args: argparse.Namespace) -> str | None:
    variable = args.push_url_env or (DEFAULT_PUSH_ENV if args.push else None)
    if variable is None:
        return None
    url = os.environ.get(variable, "").strip()
    if not url:
        raise DrillError(f"the environment variable {variable} is not set: set it to the Pushgateway's URL "
                         f"(e.g. http://pushgateway:9091), or leave out --push/--push-url-env")
    return url


def status_command(args: argparse.Namespace, config: Config) -> int:
    from drill.status import gather, render_text, to_dict

    push_url = _push_url(args)  # a missing variable is an error before anything is read
    report_dir = (args.report_dir or config.report_dir).resolve()
    status = gather(report_dir, config, _as_of(args.as_of))
    fmt = "json" if args.json else args.format
    if fmt == "json":
        text = json.dumps(to_dict(status), indent=2) + "\n"
    elif fmt == "prometheus":
        from drill.metrics import exposition

        text = exposition(status)
    elif fmt == "badge":
        from drill.report.badge import render_badge

        text = render_badge(status, args.label)
    else:
        text = render_text(status)
    if args.output is not None:
        _write(args.output, text)
    else:
        sys.stdout.write(text)
    if push_url is not None:
        from drill.metrics import push
        from drill.redact import redact_text

        push(status, push_url)
        print(f"drill: pushed the metrics to the Pushgateway at {redact_text(push_url)}", file=sys.stderr)
    return 0
