from __future__ import annotations

from pathlib import Path

import pytest

from drill.config import load_config
from drill.errors import ConfigError

FULL = '''
[drill]
backup_dir = "var/backups"
seed_scale = 1

[tiers.critical]
rto = "15m"

[tiers.gold]
rto = "1h"
rpo = "5 minutes"

[stores.userdb]
kind = "postgres"
database = "users"

[stores.orderdb]
kind = "postgres"
depends_on = ["userdb"]

[profiles.ci]
seed_scale = 0.1

[profiles.quarterly.stores.userdb]
provision = "live"
url_env = "USERDB_URL"
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "drill.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DRILL_CONFIG", raising=False)
    config = load_config()
    assert config.path is None
    assert {n: (t.rto, t.rpo) for n, t in config.tiers.items()} == {
        "critical": (1800, 3600), "important": (7200, 3600), "standard": (14400, 3600)}
    store = config.store("anything", "postgres")
    assert store.provision == "local" and not store.is_live


def test_a_full_file_and_profiles(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    config = load_config(path)
    assert config.backup_dir == tmp_path / "var" / "backups"
    assert config.tiers["critical"].rto == 900 and config.tiers["critical"].rpo == 3600  # rpo inherited
    assert config.tiers["gold"].rpo == 300
    assert config.stores["userdb"].database == "users"
    assert config.stores["orderdb"].depends_on == ("userdb",)

    ci = load_config(path, profile="ci")
    assert ci.seed_scale == 0.1 and ci.scaled(10000) == 1000 and ci.scaled(3) == 1
    quarterly = load_config(path, profile="quarterly")
    live = quarterly.stores["userdb"]
    assert live.is_live and live.url_env == "USERDB_URL" and live.database == "users" and not live.destructive
    assert quarterly.digest() != config.digest()


@pytest.mark.parametrize("text, line, fragment", [
    ('[stores.db]\nkind = "postgres"\nprovision = local\n', 3, "not valid TOML"),
    ('[stores.db]\nkind = "oracle"\n', 2, "[stores.db.kind] 'oracle' is not a store kind"),
    ('[stores.db]\nkind = "postgres"\ncolour = "red"\n', 3, "[stores.db.colour] unknown key 'colour'"),
    ('[stores.db]\nkind = "postgres"\nprovision = "live"\n', 3, "a live store needs url_env"),
    ('[stores.db]\nkind = "postgres"\nprovision = "live"\nurl_env = "postgresql://u:p@h/db"\n', 4,
     "must be the NAME of an environment variable"),
    ('[tiers.critical]\nrto = "soonish"\n', 2, "[tiers.critical.rto] cannot read duration 'soonish'"),
    ('[tiers.gold]\nrto = "1h"\n', 1, "a new tier needs both rto and rpo"),
    ('[drill]\nseed_scale = 0\n', 2, "[drill.seed_scale] must be a number above 0"),
    ('[stores.db]\nkind = "postgres"\ndestructive = "yes"\n', 3, "must be true or false"),
    ('[stores.db]\nkind = "postgres"\ndepends_on = ["nothere"]\n', 3, "depends on 'nothere'"),
    ('[storez.db]\nkind = "postgres"\n', 1, "unknown table 'storez'"),
])
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:{line}: "), str(caught.value)
    assert fragment in str(caught.value)


def test_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown profile 'nightly'; profiles in this file: ci, quarterly"):
        load_config(write(tmp_path, FULL), profile="nightly")
