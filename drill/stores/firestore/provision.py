"""Firestore stores: a throwaway local emulator, or a live database named by a URL in the environment.

Live URLs: `firestore://PROJECT` is the real Cloud Firestore (credentials from Application Default
Credentials: GOOGLE_APPLICATION_CREDENTIALS or the metadata server); `http://HOST:PORT/PROJECT` is
an emulator someone else runs. `project` in drill.toml overrides the URL's project.
"""

from __future__ import annotations

from google.api_core import exceptions as gexc
from google.auth.exceptions import GoogleAuthError

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import ConfigError, ProvisionError, StoreError
from drill.provision.live import live_url
from drill.redact import redact_text
from drill.stores.base import Progress, Store, no_progress
from drill.stores.firestore import KIND, FirestoreOptions
from drill.stores.firestore.common import project_id
from drill.stores.firestore.local import LocalFirestoreEmulator
from drill.stores.firestore.store import FirestoreServer, FirestoreStore


def provision_local(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> Store:
    local = LocalFirestoreEmulator()
    cleanup.push(f"stop the throwaway Firestore emulator of {config.name!r}", local.stop)
    local.start()
    progress(f"started a throwaway Firestore emulator (google-cloud-cli-firestore-emulator {local.version}) "
             f"on {local.host} in {local.started_in:.1f}s")
    server = FirestoreServer(emulator_host=local.host, version=f"google-cloud-cli-firestore-emulator {local.version}",
                             description=f"local Firestore emulator on {local.host}")
    cleanup.push(f"close the Firestore clients of {config.name!r}", server.close)
    return FirestoreStore(name=config.name, config=config, server=server,
                          project=FirestoreOptions.of(config).project or project_id(config.name))


def provision_live(config: StoreConfig, cleanup: CleanupStack, progress: Progress = no_progress) -> Store:
    live = live_url(config, KIND.live_schemes, KIND.live_example)
    key = f"stores.{config.name}.url_env"
    if live.parts.scheme == "firestore":
        project = FirestoreOptions.of(config).project or live.parts.netloc or live.database
        server = FirestoreServer(emulator_host=None, description=f"Cloud Firestore, project {project}",
                                 version="Cloud Firestore")
    else:
        if not live.parts.hostname or not live.parts.port:
            raise ConfigError(f"{config.url_env} must name the emulator as http://HOST:PORT/PROJECT", key=key)
        project = FirestoreOptions.of(config).project or (project_id(live.database) if live.database else "")
        server = FirestoreServer(emulator_host=f"{live.parts.hostname}:{live.parts.port}",
                                 description=f"Firestore emulator at {live.parts.hostname}:{live.parts.port}",
                                 version="cloud-firestore-emulator")
    if not project:
        raise ConfigError(f"no Firestore project: put it in {config.url_env} (firestore://PROJECT) or set `project` "
                          f"under [stores.{config.name}]", key=key)
    cleanup.push(f"close the Firestore clients of {config.name!r}", server.close)
    store = FirestoreStore(name=config.name, config=config, server=server, project=project)
    try:
        store._top_collections(store.client())
    except StoreError as exc:
        raise ProvisionError(f"live store {config.name!r}: {exc}") from None
    except GoogleAuthError as exc:
        raise ProvisionError(f"live store {config.name!r}: no Google credentials for {server.description} "
                             f"({redact_text(str(exc))}); set GOOGLE_APPLICATION_CREDENTIALS to a service account key "
                             f"file, or run where Application Default Credentials are available") from None
    except gexc.GoogleAPIError as exc:
        raise ProvisionError(f"live store {config.name!r}: cannot reach {server.description}: "
                             f"{redact_text(str(exc))}") from None
    cleanup.push(f"empty the scratch projects of {config.name!r}", store.close)
    return store
