"""GCS stores: a bucket on a throwaway fake-gcs-server, or a live bucket named in drill.toml.

A live store's `url_env` names an environment variable holding either `gs://PROJECT` (Google Cloud
Storage itself; credentials are Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS,
gcloud, or the metadata server) or the endpoint of an emulator, STORAGE_EMULATOR_HOST style:
`http://127.0.0.1:4443` (project from `?project=NAME`, default "drill").
"""

from __future__ import annotations

from urllib.parse import parse_qs

from google.api_core import exceptions as gexc

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import ProvisionError
from drill.provision.live import live_url
from drill.redact import redact_text
from drill.stores.base import Progress, Store, no_progress
from drill.stores.gcs import KIND, GcsOptions
from drill.stores.gcs.local import LocalGcsServer, fake_gcs_server_binary
from drill.stores.gcs.objects import GcsConnection, valid_bucket_name
from drill.stores.gcs.store import GcsStore

LOCAL_PROJECT = "drill-local"


def _bucket_name(config: StoreConfig) -> str:
    name = GcsOptions.of(config).bucket or config.name
    if not valid_bucket_name(name):
        raise ProvisionError(f"store {config.name!r}: {name!r} is not a valid bucket name (3-63 lowercase letters, "
                             f"digits, '-', '_' or '.'); set `bucket = \"...\"` under [stores.{config.name}]")
    return name


def provision_local(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> Store:
    bucket = _bucket_name(config)
    local = LocalGcsServer(fake_gcs_server_binary())
    cleanup.push(f"remove the throwaway fake-gcs-server of {config.name!r}", local.stop)
    local.start()
    progress(f"started a throwaway fake-gcs-server on {local.endpoint} ({local.binary})")
    conn = GcsConnection(project=LOCAL_PROJECT, endpoint=local.endpoint,
                         description=f"local fake-gcs-server on 127.0.0.1:{local.port}")
    store = GcsStore(name=config.name, config=config, conn=conn, bucket=bucket,
                     backup_bucket=GcsOptions.of(config).backup_bucket)
    store.ensure_bucket()  # versioned, so that point-in-time restores from generations work
    return store


def provision_live(config: StoreConfig, cleanup: CleanupStack, progress: Progress = no_progress) -> Store:
    live = live_url(config, KIND.live_schemes, KIND.live_example)
    if live.parts.scheme == "gs":
        project = live.parts.netloc
        if not project:
            raise ProvisionError(f"live store {config.name!r}: {config.url_env} must name the project: gs://PROJECT")
        conn = GcsConnection(project=project, description=f"Google Cloud Storage, project {project}")
    else:
        project = parse_qs(live.parts.query).get("project", ["drill"])[0]
        endpoint = f"{live.parts.scheme}://{live.parts.hostname}" + (f":{live.parts.port}" if live.parts.port else "")
        conn = GcsConnection(project=project, endpoint=endpoint, description=f"GCS emulator at {endpoint}")
    store = GcsStore(name=config.name, config=config, conn=conn, bucket=_bucket_name(config),
                     backup_bucket=GcsOptions.of(config).backup_bucket)
    try:
        exists = store._bucket().exists()
    except (gexc.GoogleAPICallError, OSError) as exc:
        raise ProvisionError(f"live store {config.name!r}: cannot reach {conn.description}: "
                             f"{redact_text(str(exc))}") from None
    except Exception as exc:  # google.auth raises its own errors when no credentials are found
        raise ProvisionError(f"live store {config.name!r}: {conn.description}: {redact_text(str(exc))}") from None
    if not exists:
        raise ProvisionError(f"live store {config.name!r}: bucket gs://{store.bucket} does not exist in "
                             f"{conn.description}")
    cleanup.push(f"close {config.name!r}", store.close)
    return store
