"""Sentences only files stores understand (the kind names this module in KindSpec.steps)."""

from __future__ import annotations

import datetime as dt

from drill.durations import parse_duration
from drill.errors import StoreError, VerificationError
from drill.scenario import DrillScenario
from drill.stores.base import Store
from drill.stores.files import HoldsFiles
from drill.stores.files.certificates import check_validity, read_certificates
from drill.vocabulary import STORE, sentence

_FILE = r'"(?P<file>[^"]+)"'


def _files(store: Store) -> HoldsFiles:
    if not isinstance(store, HoldsFiles):
        raise StoreError(f"{store.name!r} is a {store.kind} store, not a files store")
    return store


@sentence("then", rf"{STORE} holds the file {_FILE}",
          "Files: the restored folder holds this file (a path relative to it), as the runbook's `ls ssl/certificates`.",
          'Then "ssl" holds the file "cert.pem"', needs=HoldsFiles)
def holds_file(drill: DrillScenario, store: str, file: str) -> None:
    def check(found: Store) -> None:
        path = _files(found).file_path(file)
        if not path.is_file():
            raise VerificationError(f"{store!r} holds no file {file!r}"
                                    + (" (it is a folder)" if path.is_dir() else ""))

    drill.verify(store, check)


@sentence("then", rf"the certificate {_FILE} in {STORE} is valid for at least (?P<duration>.+)",
          "Files: every X.509 certificate in the file (PEM, a chain, or DER) is valid now and for at least the "
          "duration; an expired or unreadable one fails naming its Not After.",
          'Then the certificate "cert.pem" in "ssl" is valid for at least 30 days', needs=HoldsFiles)
def certificate_valid(drill: DrillScenario, file: str, store: str, duration: str) -> None:
    seconds = parse_duration(duration)

    def check(found: Store) -> None:
        label = f"{file} in {store!r}"
        now = dt.datetime.now(dt.UTC)
        certificates = read_certificates(_files(found).file_path(file), label)
        first = check_validity(certificates, label, seconds, now)
        drill.state.evidence.other.setdefault("certificates", {})[f"{store}/{file}"] = {
            **first.evidence(now), "certificates_in_file": len(certificates), "required_seconds": seconds}

    drill.verify(store, check)
