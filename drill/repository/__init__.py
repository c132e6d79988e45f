"""The backup repository: one directory per backup with a manifest, written atomically.

Layout (a local directory; a GCS bucket prefix would implement the same `Repository` methods):

    <root>/<store>/<backup id>/manifest.json       what the backup is (see Manifest), written last
    <root>/<store>/<backup id>/<file>[.enc]        the backup's file(s), encrypted when a key is set
    <root>/<store>/<backup id>/verified.json       the outcome of the last verification
    <root>/<store>/.partial-<hex>/                 a backup being written (never listed)
    <root>/.locks/<store>.lock                     one run per store (drill.lock)

A backup is written into `.partial-<hex>/`, its files fsync'ed, its manifest written last, and the
directory renamed to its id in one step. A crash at any point leaves at most a `.partial-*`
directory, which no listing shows and the next run under the store's lock removes. Deletion is
the reverse: rename to `.deleting-*`, then remove.

Nothing in the repository is trusted unless the key vouches for it (restic's rule). With a key, each
file is encrypted with age and each manifest carries an HMAC-SHA256 (key: HKDF of the backup key)
over its store, id, times, file list, sizes, sha256s and fingerprint; `verify` and `restore` check
it, and check that the manifest sits in the directory of its own store and id, so a swapped,
replayed or renamed backup is refused. Without a key the metadata is unauthenticated, and `list` and
`verify` say so. Every name read from a manifest is a plain name (drill/safe_paths.py) and no
symlink inside the repository is followed.

The parts: manifest.py (Manifest, Entry), local.py (Repository: layout, locking, listing), writing.py,
trust.py (the manifest's MAC and binding), reading.py (files checked, decrypted, unpacked), use.py
(open_repository, the drill step), external.py (backups made outside drill). Everything is importable
from here.
"""

from __future__ import annotations

from drill.repository.external import date_of, newest_matching
from drill.repository.local import Repository
from drill.repository.manifest import (
    AUTHENTICATED,
    LEGACY,
    MAC_ALGORITHM,
    MAC_KDF,
    MANIFEST,
    SCHEMA_VERSION,
    UNAUTHENTICATED,
    VERIFIED,
    Entry,
    FileEntry,
    Manifest,
)
from drill.repository.use import open_repository, use_in_drill

__all__ = ["AUTHENTICATED", "LEGACY", "MAC_ALGORITHM", "MAC_KDF", "MANIFEST", "SCHEMA_VERSION", "UNAUTHENTICATED",
           "VERIFIED", "Entry", "FileEntry", "Manifest", "Repository", "date_of", "newest_matching",
           "open_repository", "use_in_drill"]
