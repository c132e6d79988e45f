"""Secrets in a live URL's query string never reach results, reports, JUnit XML or logs (issue scale21/2).

A live store's description used to keep the URL's query as written, so `authMechanismProperties=
AWS_SESSION_TOKEN:<token>`, `tlsCertificateKeyFilePassword=…` (MongoDB) and `sslpassword=…` (libpq) reached
results.json and report.html; redact_text only knew `password=`, `token=`, ... after a word boundary. The live
run here is against servers the test starts itself (nx-27017, a PostgreSQL cluster), and every byte of every
file the run wrote is searched for each secret raw, URL-encoded and in base64.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drill.redact import redact_text, url_for_display
from tests.conftest import run_drill
from tests.live_servers import LiveMongo, LivePostgres, free_port, secrets_in, secrets_in_files

# tlsCertificateKeyFilePassword turns TLS on in pymongo, which nx-27017 does not speak: it is in the unreachable
# store's URL (the error path) and in the unit tests of the description instead.
MONGO_SECRETS = {"authMechanismProperties": "AWS_SESSION_TOKEN:S3cr3tTokMongoA",
                 "client_secret": "S3cr3tTokMongoB", "apiKey": "S3cr3tTokMongoC"}
PG_SECRETS = {"sslpassword": "S3cr3tTokPgA", "client_secret": "S3cr3tTokPgB", "Token": "S3cr3tTokPgC",
              "sslkey_passwd": "S3cr3tTokPgD",
              "authMechanismProperties": "SERVICE_NAME:x,AWS_SESSION_TOKEN:S3cr3tTokPgE"}
GONE_SECRET = "S3cr3tTokGoneA"
SECRETS = ("S3cr3tTokMongoA", "S3cr3tTokMongoB", "S3cr3tTokMongoC", "S3cr3tTokPgA", "S3cr3tTokPgB", "S3cr3tTokPgC",
           "S3cr3tTokPgD", "S3cr3tTokPgE", GONE_SECRET)


def _query(params: dict[str, str]) -> str:
    return "&".join(f"{name}={value}" for name, value in params.items())


@pytest.mark.parametrize(("url", "shown"), [
    ("mongodb://KEY:S3cr3tPw@h:27017/db?authMechanism=MONGODB-AWS&authMechanismProperties="
     "AWS_SESSION_TOKEN:S3cr3tTok%2B1,SERVICE_NAME:s3&appname=x",
     "mongodb://KEY@h:27017/db?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:***,"
     "SERVICE_NAME:***&appname=x"),
    ("mongodb://h/db?tls=true&tlsCertificateKeyFilePassword=S3cr3tTok&w=majority",
     "mongodb://h/db?tls=true&tlsCertificateKeyFilePassword=***&w=majority"),
    ("postgresql://u:pw@h:5432/db?sslmode=require&sslpassword=S3cr3tTok&password=S3cr3tTok2&PWD=S3cr3tTok3",
     "postgresql://u@h:5432/db?sslmode=require&sslpassword=***&password=***&PWD=***"),
    ("https://h/?api%5Fkey=S3cr3tTok&X-Goog-Signature=s&secretName=S3cr3tTok4",
     "https://h/?api%5Fkey=***&X-Goog-Signature=s&secretName=***"),
])
def test_the_description_of_a_url_masks_every_secret_in_its_query(url: str, shown: str) -> None:
    assert url_for_display(url) == shown


@pytest.mark.parametrize(("text", "shown"), [
    ("uri sslpassword=S3cr3tTok1 host=h", "uri sslpassword=*** host=h"),
    ("?tlsCertificateKeyFilePassword=S3cr3tTok1&x=1", "?tlsCertificateKeyFilePassword=***&x=1"),
    ("?authMechanismProperties=AWS_SESSION_TOKEN:S3cr3tTok1,SERVICE_NAME:svc&x=1",
     "?authMechanismProperties=AWS_SESSION_TOKEN:***,SERVICE_NAME:***&x=1"),
    ("?authMechanismProperties=AWS_SESSION_TOKEN%3AS3cr3tTok1%2CX%3Ay",
     "?authMechanismProperties=AWS_SESSION_TOKEN%3A***%2CX%3A***"),
    ("apiKey=S3cr3tTok1; client_secret=S3cr3tTok2", "apiKey=***; client_secret=***"),
])
def test_redact_text_catches_secret_names_inside_longer_names(text: str, shown: str) -> None:
    assert redact_text(text) == shown


TOML = '''
[stores.notify]
kind = "mongodb"
provision = "live"
url_env = "NOTIFY_URL"

[stores.shop]
kind = "postgres"
provision = "live"
url_env = "SHOP_URL"

[stores.gone]
kind = "mongodb"
provision = "live"
url_env = "GONE_URL"
'''

FEATURE = '''Feature: live stores named by URLs with secrets in their query
  Scenario: read-only checks of two live stores
    Given the MongoDB store "notify"
    And the PostgreSQL store "shop"
    And a backup of "notify" is taken
    And a backup of "shop" is taken
    Then "notify" holds 30 documents
    And "shop" holds 40 rows

  Scenario: a live store that cannot be reached
    Given the MongoDB store "gone"
    Then "gone" holds 1 documents
'''


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    project = tmp_path_factory.mktemp("query-secrets")
    (project / "features").mkdir()
    (project / "features" / "live.feature").write_text(FEATURE)
    (project / "drill.toml").write_text(TOML)
    with LiveMongo() as mongo, LivePostgres() as pg:
        client: Any = mongo.client()
        client["notify"]["notifications"].insert_many([{"n": i} for i in range(30)])
        pg.create_database("shop")
        pg.psql(f"SET ROLE {pg.OWNER}; CREATE TABLE items AS SELECT g AS id FROM generate_series(1, 40) g", "shop")
        env = {"NOTIFY_URL": f"{mongo.url('notify')}?appname=drilltest&{_query(MONGO_SECRETS)}",
               "SHOP_URL": f"{pg.url('shop')}?sslmode=disable&{_query(PG_SECRETS)}",
               "GONE_URL": f"mongodb://127.0.0.1:{free_port()}/gone?serverSelectionTimeoutMS=300&connectTimeoutMS=300"
                           f"&tlsCertificateKeyFilePassword={GONE_SECRET}"}
        log = project / "logs" / "drill.log"
        log.parent.mkdir()
        done = run_drill(project, "run", "--pytest-arg=--log-file=" + str(log), "--pytest-arg=--log-file-level=DEBUG",
                         env=env, timeout=600)
        # The drill only read the live stores: the servers' own clients count what the test wrote.
        assert client["notify"]["notifications"].count_documents({}) == 30
        assert pg.psql("SELECT count(*) FROM items", "shop") == "40"
    yield done, project


def test_no_secret_of_a_live_urls_query_reaches_any_file_the_run_wrote(run: tuple[Any, Path]) -> None:
    done, project = run
    scenario = done.scenario("read-only checks of two live stores")
    assert scenario["status"] == "passed", done.output
    written = [p for p in project.rglob("*") if p.is_file()]
    names = {p.name for p in written}
    assert {"results.json", "report.html", "junit.xml", "drill.log"} <= names, names
    assert (project / "logs" / "drill.log").stat().st_size > 0
    assert secrets_in_files(project, *SECRETS) == {}
    assert secrets_in(done.output, *SECRETS) == []
    # Not vacuous: the stores are described with the parameters there, their values masked.
    stores = scenario["evidence"]["stores"]
    assert "apiKey=***" in stores["notify"]["location"], stores
    assert "AWS_SESSION_TOKEN:***" in stores["notify"]["location"], stores
    assert "sslpassword=***" in stores["shop"]["location"], stores


def test_an_unreachable_live_store_names_its_url_without_the_secret(run: tuple[Any, Path]) -> None:
    done, _project = run
    scenario = done.scenario("a live store that cannot be reached")
    assert scenario["status"] == "failed", done.output
    message = " ".join(e["message"] for e in scenario["errors"])
    assert "cannot reach mongodb://127.0.0.1:" in message and "tlsCertificateKeyFilePassword=***" in message, message
