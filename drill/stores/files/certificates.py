"""X.509 certificates in a files store, read with `cryptography`: the runbook's `openssl x509 ... | grep "Not After"`.

A file may hold one certificate or a chain (PEM blocks one after the other, as fullchain.pem does), or
one DER certificate. Every certificate in it must be valid now and for at least the asked time: the
first one to end decides, and messages name its subject and its Not After.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from drill.errors import StoreError, VerificationError


@dataclass(frozen=True)
class Certificate:
    subject: str
    not_before: dt.datetime
    not_after: dt.datetime

    def evidence(self, now: dt.datetime) -> dict[str, object]:
        return {"subject": self.subject, "not_before": self.not_before.isoformat(),
                "not_after": self.not_after.isoformat(), "seconds_left": (self.not_after - now).total_seconds()}


def read_certificates(path: Path, label: str) -> list[Certificate]:
    """Every certificate in a PEM (one or a chain) or DER file; VerificationError when there is none to read."""
    try:
        from cryptography import x509
    except ImportError:
        raise StoreError("reading certificates needs the `cryptography` package: "
                         "pip install 'dr-drill[files]'") from None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VerificationError(f"{label} cannot be read ({exc.strerror}); its Not After cannot be read") from None
    try:
        pem = b"-----BEGIN" in data
        found = x509.load_pem_x509_certificates(data) if pem else [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise VerificationError(f"{label} is not a readable certificate (PEM or DER): {str(exc).splitlines()[0]}; "
                                f"its Not After cannot be read") from None
    return [Certificate(c.subject.rfc4514_string() or "(no subject)", c.not_valid_before_utc, c.not_valid_after_utc)
            for c in found]


def check_validity(certificates: list[Certificate], label: str, seconds: float, now: dt.datetime) -> Certificate:
    """The certificate that ends first, once every one is valid now and for at least `seconds` more."""
    first = min(certificates, key=lambda c: c.not_after)
    for cert in certificates:
        if cert.not_before > now:
            raise VerificationError(f"the certificate {label} ({cert.subject}) is not valid yet: Not Before "
                                    f"{_when(cert.not_before)}")
    left = (first.not_after - now).total_seconds()
    if left <= 0:
        raise VerificationError(f"the certificate {label} ({first.subject}) has expired: Not After "
                                f"{_when(first.not_after)}, {format_duration(-left)} ago")
    if left < seconds:
        raise VerificationError(f"the certificate {label} ({first.subject}) expires too soon: Not After "
                                f"{_when(first.not_after)}, in {format_duration(left)}; at least "
                                f"{format_duration(seconds)} is required")
    return first


def format_duration(seconds: float) -> str:
    """Days for certificates (`89.9 days`), hours below one day."""
    return f"{seconds / 86400:.1f} days" if seconds >= 86400 else f"{seconds / 3600:.1f} hours"


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
