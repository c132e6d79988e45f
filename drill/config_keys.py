"""What each drill.toml key of drill's own tables means: the text of the configuration reference.

drill.config's validator decides which keys exist (its `*_KEYS` sets); each store kind declares and
documents its own keys (drill.stores.kinds.KindOptions). This module only says what drill's own keys
mean. The reference page (drill.reference.configuration) is built from both and refuses to build
when a key the validator accepts has no entry here, or an entry names a key the validator does not
accept, so the page cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    name: str
    type: str
    default: str
    meaning: str


@dataclass(frozen=True)
class Table:
    header: str  # as written in drill.toml, e.g. "[tiers.NAME]"
    validator_keys: str  # the name of the _Validator set that lists the table's keys
    intro: str
    keys: tuple[Key, ...]


PATH = "path (relative to drill.toml, or absolute)"
DURATION = 'duration (`"30m"`, `"2 hours"`) or seconds'
ENV_NAME = "environment variable **name**"

TABLES: tuple[Table, ...] = (
    Table("[drill]", "DRILL_KEYS", "Where drill writes, and what applies to every scenario.", (
        Key("backup_dir", PATH, "`backups`", "where backups are written (`<backup_dir>/<store>/...`)"),
        Key("report_dir", PATH, "`reports`", "where `drill run` writes `<run-id>/results.json` and the reports"),
        Key("default_profile", "string", "none", "the profile applied when `--profile` is not given"),
        Key("seed_scale", "number > 0", "`1.0`",
            "multiplies every seed count, and the expected `holds` counts of data drill seeded in the scenario "
            "(rounded, at least 1); never a count of a live store or of a backup made outside drill"),
        Key("plugins", "list of strings", "`[]`",
            "extra pytest plugins (module names), loaded by `drill run` with `-p`"),
        Key("rollback", "`always`, `on-failure`, `never`", "`never`",
            "the rollback policy of every scenario (a `Given the rollback policy is ...` step overrides it)"),
        Key("stages", "list of strings", '`["infrastructure", "data", "application"]`',
            "the order of whole-system restores: stores of an earlier stage are restored (and verified) first"),
        Key("signing_key_file", PATH, "none",
            "an ed25519 private key (`drill keygen --signing FILE`): `drill run` signs `results.json` and the "
            "history. The variable `DRILL_SIGNING_KEY` (the PEM text itself) takes precedence; the key itself "
            "never goes in drill.toml"),
        Key("signing_public_key", PATH, "none",
            "its public key (`FILE.pub`): `drill report --verify`, `drill report pack --verify` and the reports "
            "check signatures with it"),
        Key("history", '`PATH`, `"repository"` or `"gs://BUCKET/PREFIX/history.jsonl"`', "`<report_dir>/history.jsonl`",
            "where the history of runs (the trend and the hash chain) is kept, so that it outlives a CI runner; "
            "`$DRILL_HISTORY` overrides it (see [History that outlives the runner]"
            "(../results.md#history-that-outlives-the-runner))"),
        Key("backup_time_zone", 'IANA zone name (`"UTC"`, `"Europe/Paris"`)', '`"UTC"`',
            "the zone a date in a backup's file name is read in (`userdb_20240115_143000`: the runbook's cron uses "
            "the local time of the machine it runs on); a store's own `backup_time_zone` wins. A name the "
            "machine's zone database does not know is an error"),
        Key("self_test", "bool", "`false`",
            "after a drill passed, plant one small fault in each restored or throwaway copy, require its check to "
            "fail naming it, then remove it: \"checks proven to bite\" in the report (see [Canaries and "
            "self-tests](../canaries.md#self-tests-checks-proven-to-bite)); also a profile key"),
        Key("shared_servers", "bool", "`true`",
            "the small scenarios of a run (every step seeds, runs SQL on, backs up, loses, restores or verifies a "
            "store's data) put their local PostgreSQL stores on one throwaway server the run (each parallel worker) "
            "shares, each in a database of its own, instead of starting a server per scenario; a server-level change "
            "replaces it for the next scenario (see [Shared servers](../stores/postgres.md#shared-servers)); `false`: "
            "a server per scenario"),
    )),
    Table("[tiers.NAME]", "TIER_KEYS",
          "Recovery targets by service tier, applied with `@tier:NAME`. The built-in tiers are below; to "
          "override one of them give one key or both; a new tier needs both.", (
              Key("rto", DURATION, "required for a new tier", "recovery time target"),
              Key("rpo", DURATION, "required for a new tier", "data loss target"),
          )),
    Table("[stores.NAME]", "COMMON_STORE_KEYS",
          "A store a feature names. The common keys are read the same way for every kind; each kind adds "
          "its own (next table). A store that drill.toml does not name is a throwaway local one.", (
              Key("kind", "a store kind (next table)", "required",
                  "must match the sentence the feature uses (`PostgreSQL` = `postgres`)"),
              Key("provision", "`local`, `container`, `live` (those the kind declares)", "`local`",
                  "`local`: a throwaway server; `container`: a throwaway container of `image`; `live`: an "
                  "existing server reached by URL"),
              Key("url_env", ENV_NAME, "none; required for `live`",
                  "the variable that holds the connection URL (e.g. `postgresql://user:password@host:5432/db`); "
                  "the URL itself never goes in drill.toml"),
              Key("destructive", "bool", "`false`", "live: a drill may lose (drop) or overwrite this store"),
              Key("allow_writes", "bool", "`false`",
                  "live: a drill may seed it, write RPO markers into it and run SQL on it"),
              Key("depends_on", "list of store names", "`[]`",
                  "must name configured stores. A whole-system restore restores a store after the stores it "
                  "depends on (a cycle is an error); other steps run in step order"),
              Key("restore_timeout", DURATION, "none",
                  "a restore of this store that takes longer is stopped and fails (and is rolled back under the "
                  "rollback policy)"),
              Key("stage", "one of `[drill] stages`", "`data` (or the first stage)",
                  "the stage of a whole-system restore this store belongs to"),
              Key("rto", DURATION, "none",
                  "this store's own recovery time target in a whole-system restore (a miss fails the restore step)"),
              Key("backups", "glob (relative to drill.toml; a trailing `/` matches folders)", "none",
                  "the backups production makes of this store outside drill (`\"backups/postgres/userdb_*.sql.gz\"`): "
                  "`drill backups list` lists them and `drill backups verify` reads each in its format (see "
                  "[Verifying production's backups](../nightly.md))"),
              Key("canary_interval", "duration above zero", "`1h`",
                  "how often cron runs `drill canary` for this store: a restored production backup whose newest "
                  "canary is older than its date by more than this fails (\"the backup is older than its name "
                  "says\"; see [Canaries](../canaries.md#canaries))"),
              Key("backup_time_zone", "IANA zone name", "`[drill] backup_time_zone`",
                  "the zone of the dates in this store's backup file names"),
          )),
    Table("[profiles.NAME]", "PROFILE_KEYS",
          "A profile changes the configuration without editing the features; it is chosen by `--profile`, "
          "else by `default_profile`. Every profile is validated when the file is loaded.", (
              Key("seed_scale", "number > 0", "`[drill] seed_scale`", "replaces `[drill] seed_scale`"),
              Key("backup_dir", PATH, "`[drill] backup_dir`", "replaces `[drill] backup_dir`"),
              Key("self_test", "bool", "`[drill] self_test`",
                  "replaces `[drill] self_test` (e.g. on in a `nightly` profile)"),
              Key("tiers", "`[profiles.NAME.tiers.TIER]` tables", "none",
                  "partial overrides of tiers (`rto`, `rpo`), or new tiers"),
              Key("stores", "`[profiles.NAME.stores.STORE]` tables", "none",
                  "keys that override that store's table, or a new store"),
          )),
    Table("[repository]", "REPOSITORY_KEYS",
          "Where `drill backup` keeps backups, how they are encrypted and how long they are kept.", (
              Key("path", f"{PATH}, or `gs://BUCKET/PREFIX`", "`[drill] backup_dir`",
                  "the repository: a directory (`<path>/<store>/<backup id>/`), or a prefix in a GCS bucket "
                  "(extra `repository-gcs`)"),
              Key("key_file", PATH, "none",
                  "set: every backup is encrypted (age) and its manifest authenticated with this key, an age "
                  "identity made by `drill keygen backup.key` or `age-keygen -o backup.key` (older keys of 32 raw "
                  "bytes, 64 hex digits or base64 still work); drill warns when group or others can read it. "
                  "Extra `crypto`"),
              Key("hourly", "integer >= 0", "`24`",
                  "the runbook's `HOURLY_RETENTION`: keep the newest backup of each of the last 24 hours"),
              Key("daily", "integer >= 0", "`30`", "`RETENTION_DAILY`: the newest of each of the last 30 days"),
              Key("weekly", "integer >= 0", "`12`", "`RETENTION_WEEKLY`: the newest of each of the last 12 ISO weeks"),
              Key("monthly", "integer >= 0", "`12`", "`RETENTION_MONTHLY`: the newest of each of the last 12 months"),
              Key("log_file", PATH, "`<path>/drill-backup.log`",
                  "one line is appended per `drill backup`, `restore`, `backups verify` and `backups prune` run"),
          )),
    Table("[notify]", "NOTIFY_KEYS",
          "Who hears about a failed `drill backup`, `drill restore`, `drill backups verify|prune` or `drill run` "
          "(and about successes with `on_success = true`). Secrets come from the environment.", (
              Key("webhook_url_env", ENV_NAME, "none",
                  "the variable that holds an incoming-webhook URL (Slack, or anything that takes Slack's JSON)"),
              Key("email_to", "list of addresses", "`[]`", "e-mail recipients (SMTP)"),
              Key("email_from", "string", "`drill@localhost`", "the sender address"),
              Key("smtp_host", "string", "`localhost`", "SMTP server"),
              Key("smtp_port", "integer", "`25`", "SMTP port"),
              Key("smtp_user", "string", "none", "log in as this user (with `smtp_password_env`)"),
              Key("smtp_password_env", ENV_NAME, "none", "the variable that holds the SMTP password"),
              Key("smtp_starttls", "bool", "`false`",
                  "STARTTLS before logging in (certificate verified; fails if the server offers none)"),
              Key("smtp_ssl", "bool", "`false`",
                  "SMTPS: TLS from the first byte (port 465). Logging in to a host that is not loopback needs this "
                  "or `smtp_starttls`: drill never sends the password in clear text"),
              Key("on_success", "bool", "`false`", "also notify when the run succeeded"),
          )),
    Table("[controls.ID]", "CONTROL_KEYS",
          "An audit control (SOC 2, ISO 27001, your own) that drills tagged `@control:ID` evidence. An id with "
          'a dot must be quoted: `[controls."SOC2-CC7.5"]`.', (
              Key("title", "non-empty string", "required", "what the control requires, as the auditor knows it"),
              Key("every", 'duration (`"90 days"`, `"12h"`)', "required",
                  "a passing drill is required at least this often"),
          )),
)
