"""What a configuration is: target tiers, the [repository], [notify] and [controls.ID] settings, and Config itself.

drill.config.validator builds these from drill.toml; without a drill.toml, default_config() applies.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drill.config.store import StoreConfig
from drill.errors import ConfigError

# The seed runbook's service priority levels (RTO) and its single RPO target.
DEFAULT_TIERS: dict[str, tuple[float, float]] = {
    "critical": (30 * 60, 3600),
    "important": (2 * 3600, 3600),
    "standard": (4 * 3600, 3600),
}


@dataclass(frozen=True)
class Tier:
    name: str
    rto: float  # seconds
    rpo: float  # seconds


@dataclass(frozen=True)
class RepositoryConfig:
    """[repository]: where `drill backup` keeps backups, their encryption and their retention."""

    path: Path | None = None  # None: [drill] backup_dir
    gcs: str | None = None  # path = "gs://bucket/prefix": the repository is that bucket prefix
    key_file: Path | None = None  # set: backups are encrypted (AES-256-GCM) with this key
    hourly: int = 24  # the runbook's HOURLY_RETENTION
    daily: int = 30  # RETENTION_DAILY
    weekly: int = 12  # RETENTION_WEEKLY
    monthly: int = 12  # RETENTION_MONTHLY
    log_file: Path | None = None  # None: <path>/drill-backup.log


def is_loopback_host(host: str) -> bool:
    """localhost or a loopback address literal: where an SMTP password may travel without TLS."""
    import ipaddress

    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class NotifyConfig:
    """[notify]: who hears about failed (and, if asked, successful) backups, restores and drills."""

    webhook_url_env: str | None = None  # env var NAME holding a Slack-compatible incoming-webhook URL
    email_to: tuple[str, ...] = ()
    email_from: str = "drill@localhost"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password_env: str | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False  # SMTPS: TLS from the first byte (port 465)
    on_success: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url_env or self.email_to)


@dataclass(frozen=True)
class ControlConfig:
    """[controls.ID]: an audit control (SOC 2, ISO 27001...) that drills tagged `@control:ID` evidence."""

    id: str
    title: str
    every: float  # seconds: the control requires a passing drill at least this often
    line: int | None = field(default=None, compare=False)  # where drill.toml declares it (for `drill check`)


@dataclass(frozen=True)
class Config:
    path: Path | None
    base_dir: Path
    backup_dir: Path
    report_dir: Path
    tiers: dict[str, Tier]
    stores: dict[str, StoreConfig]
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    profile: str | None = None
    seed_scale: float = 1.0
    plugins: tuple[str, ...] = ()
    repository: RepositoryConfig = field(default_factory=RepositoryConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    rollback: str = "never"  # rollback policy of every scenario: always | on-failure | never
    stages: tuple[str, ...] = ("infrastructure", "data", "application")  # whole-system restore order
    signing_key_file: Path | None = None  # ed25519 private key: drill run signs results.json and the history
    signing_public_key: Path | None = None  # its public key: drill report --verify checks the signatures
    controls: dict[str, ControlConfig] = field(default_factory=dict)  # [controls.ID]
    backup_time_zone: str = "UTC"  # the zone of dates in backup file names (a store's own backup_time_zone wins)
    self_test: bool = False  # after a passing drill, plant a changed item in each restored copy and require it caught
    shared_servers: bool = True  # small scenarios' local stores share one server per run (drill.provision.sharing)
    history: str | None = None  # [drill] history: a path, "repository" or gs://…/history.jsonl (None: report_dir's)
    worker_dir: Path | None = None  # a parallel worker's private folder (drill.parallel); None in a serial run

    def backup_dir_for(self, store: StoreConfig) -> Path:
        """Where a store's backups and rollback state go: a throwaway store on a parallel worker keeps them in the
        worker's private folder (two workers may run stores of the same name); a live store always in backup_dir,
        where the next run looks for the journal of a restore that was killed."""
        if self.worker_dir is not None and not store.is_live:
            return self.worker_dir
        return self.backup_dir

    @property
    def repository_path(self) -> Path:
        return self.repository.path or self.backup_dir

    def time_zone_of(self, store: str) -> str:
        """The zone the dates in a store's backup file names are written in (IANA name, e.g. Europe/Paris)."""
        found = self.stores.get(store)
        return (found.backup_time_zone if found is not None else None) or self.backup_time_zone

    def store(self, name: str, kind: str) -> StoreConfig:
        """The configuration of a store a feature names; unnamed stores are local, of the named kind."""
        found = self.stores.get(name)
        if found is None:
            return StoreConfig(name=name, kind=kind)
        if found.kind != kind:
            raise ConfigError(f"the feature uses store {name!r} as {kind} but it is configured as kind "
                              f"{found.kind!r}", path=self.path, key=f"stores.{name}.kind")
        return found

    def scaled(self, count: int) -> int:
        """A seed or count figure under the profile's seed_scale (never below 1)."""
        if self.seed_scale == 1.0:
            return count
        return max(1, round(count * self.seed_scale))

    def digest(self) -> str:
        """sha256 of the effective configuration. Holds names of env vars, never their values."""
        payload = {
            "profile": self.profile,
            "seed_scale": self.seed_scale,
            "tiers": {k: asdict(v) for k, v in sorted(self.tiers.items())},
            "stores": {k: v.flat() for k, v in sorted(self.stores.items())},
            "backup_dir": str(self.backup_dir),
        }
        for key, default in (("backup_time_zone", "UTC"), ("self_test", False)):
            if getattr(self, key) != default:  # only when set, as controls below
                payload[key] = getattr(self, key)
        if self.controls:  # only when declared, so that digests of configurations without controls stay as they were
            payload["controls"] = {k: {"title": c.title, "every": c.every} for k, c in sorted(self.controls.items())}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def default_config(base_dir: Path | None = None) -> Config:
    base = (base_dir or Path.cwd()).resolve()
    return Config(
        path=None, base_dir=base, backup_dir=base / "backups", report_dir=base / "reports",
        tiers={n: Tier(n, rto, rpo) for n, (rto, rpo) in DEFAULT_TIERS.items()}, stores={},
    )

