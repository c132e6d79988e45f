"""Peak RSS and time of a Firestore fingerprint (and backup) at 10,000 and 100,000 documents.

    .venv/bin/python bench/firestore_fingerprint_rss.py [--counts 10000,100000]

Starts one throwaway emulator, seeds each size into its own project, then fingerprints (and backs
up) each project in a fresh child process run under `/usr/bin/time -f %M`, which reports the
child's peak RSS: flat memory means the peak barely moves between the sizes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r'''
import json, resource, sys, time, tempfile
from pathlib import Path
from drill.config import StoreConfig
from drill.stores import firestore as fs
from drill.stores.firestore.store import FirestoreServer, FirestoreStore
host, project, what = sys.argv[1:4]
samples = []  # current RSS (MiB) every 10,000 documents: growth would show here, buffers level off
add = fs.FingerprintBuilder.add
def sampled(self, path, fields):
    add(self, path, fields)
    counted = sum(p.count for p in self.parts.values())
    if counted % 10_000 == 0:
        samples.append(int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() // 2**20)
fs.FingerprintBuilder.add = sampled
store = FirestoreStore(name=project, config=StoreConfig(name=project, kind="firestore"),
                       server=FirestoreServer(emulator_host=host, description="bench"), project=project)
store.count("products")  # connect and warm up before the baseline
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
began = time.monotonic()
if what == "fingerprint":
    total = store.fingerprint().total
else:
    total = store.backup(Path(tempfile.mkdtemp())).fingerprint.total
print(json.dumps({"what": what, "documents": total, "seconds": time.monotonic() - began,
                  "rss_before_kib": base, "rss_every_10000_mib": samples}))
'''


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", default="10000,100000")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from drill.config import StoreConfig
    from drill.stores.firestore.local import LocalFirestoreEmulator
    from drill.stores.firestore.store import FirestoreServer, FirestoreStore

    with LocalFirestoreEmulator() as emulator:
        print(f"emulator ready in {emulator.started_in:.2f}s on {emulator.host}", flush=True)
        for count in (int(c) for c in args.counts.split(",")):
            project = f"bench-{count}"
            store = FirestoreStore(name=project, config=StoreConfig(name=project, kind="firestore"),
                                   server=FirestoreServer(emulator_host=emulator.host, description="bench"),
                                   project=project)
            began = time.monotonic()
            store.seed(count)
            print(f"seeded {count} documents in {time.monotonic() - began:.1f}s", flush=True)
            for what in ("fingerprint", "backup"):
                with tempfile.NamedTemporaryFile("r") as rss:
                    done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, sys.executable, "-c", CHILD,
                                           emulator.host, project, what], capture_output=True, text=True, check=True)
                    peak = int(rss.read().strip().splitlines()[-1])
                result = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"{what:11} {result['documents']:>7} documents: {result['seconds']:6.1f}s, peak RSS "
                      f"{peak / 1024:.0f} MiB (after imports and connecting: {result['rss_before_kib'] / 1024:.0f} "
                      f"MiB); RSS every 10,000 documents (MiB): {result['rss_every_10000_mib']}", flush=True)


if __name__ == "__main__":
    main()
