"""`drill report merge`: the shares of a sharded run (`drill run --shard I/N`) joined into one run.

The merged run has a run id of its own, every planned scenario exactly once (in the order of one
serial run), one results.json, one set of reports and one history entry; `merged_from` names each
share with the sha256 of its results. Refused, with the share named: a share's results that fail
their seal, results that are not a share, shares of different plans, a missing or duplicated
share, and a scenario run twice, by the wrong share, or not at all (unless its share was
interrupted: the merged run is then interrupted too). The merged run passes only when every share
passed on its own: a share that failed for any reason (a scenario, a missed target, a live store
a killed drill left that its repair could not put back) fails it, and each share's repairs are
carried into the merged results.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from drill import __version__
from drill.errors import DrillError
from drill.report.integrity import DIGEST_KEY, seal_problem
from drill.report.model import run_from_dict
from drill.results import RESULTS_FILENAME, MergedShard, RunResult, ShardInfo
from drill.sharding import scenario_key


class MergeError(DrillError):
    """The shares cannot be merged; the message names the share and what to do."""


class SharesMissing(MergeError):
    """Some shares (or all) have not arrived: `--wait` waits for them."""


@dataclass
class Share:
    where: str  # for messages: a path, or the gs:// object it was downloaded from
    run: RunResult
    digest: str

    @property
    def shard(self) -> ShardInfo:
        assert self.run.shard is not None
        return self.run.shard

    @property
    def label(self) -> str:
        return f"shard {self.shard.index}/{self.shard.count} ({self.where})"


def find_results(paths: list[Path]) -> list[Path]:
    """Each results.json named, or found (recursively) in each folder named."""
    found: dict[Path, Path] = {}  # resolved -> as named (a file named twice, or inside two named folders, counts once)
    for path in paths:
        if path.is_file():
            found.setdefault(path.resolve(), path)
        elif path.is_dir():
            for inside in sorted(path.rglob(RESULTS_FILENAME)):
                found.setdefault(inside.resolve(), inside)
        else:
            raise MergeError(f"{path}: no such file or folder; name the folders that hold the shares' results.json")
    return list(found.values())


def load_share(path: Path, where: str) -> Share:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MergeError(f"{where}: not readable JSON ({exc})") from None
    if not isinstance(raw, dict) or "run_id" not in raw:
        raise MergeError(f"{where}: not a drill results file (no run_id)")
    problem = seal_problem(raw)
    if problem:
        raise MergeError(f"{where}: {problem}; a share's results must be intact to be merged "
                         f"(`drill report --verify {where}` says more)")
    run = run_from_dict(raw)
    if run.shard is None:
        raise MergeError(f"{where}: run {run.run_id} is not a share of a sharded run (it was run without "
                         f"--shard I/N); name only the shares' folders")
    return Share(where, run, str(raw[DIGEST_KEY]))


def check(shares: list[Share], sources: str) -> None:
    """Raise MergeError naming what is wrong; return when the shares make exactly one whole run."""
    if not shares:
        raise SharesMissing(f"no results.json found in {sources}; name the folders the shares wrote "
                         f"(`drill run --shard I/N --output-dir DIR`)")
    plans = {share.shard.plan for share in shares}
    if len(plans) > 1:
        listed = "; ".join(f"{s.label}: plan {s.shard.plan[:12]}" for s in shares)
        raise MergeError(f"the shares were planned differently ({listed}): they are shares of different runs, or "
                         f"the history changed between their starts. Merge the shares of one run, or run them "
                         f"with --shard-by count")
    count = shares[0].shard.count
    by_index: dict[int, list[Share]] = {}
    for share in shares:
        by_index.setdefault(share.shard.index, []).append(share)
    for index in range(1, count + 1):
        if len(by_index.get(index, [])) > 1:
            raise MergeError(f"shard {index}/{count} appears {len(by_index[index])} times: "
                             f"{', '.join(s.where for s in by_index[index])}; keep the results of one attempt")
    missing = [index for index in range(1, count + 1) if index not in by_index]
    if missing:
        named = ", ".join(f"shard {index}/{count}" for index in missing)
        raise SharesMissing(f"{named} {'is' if len(missing) == 1 else 'are'} missing: no results of "
                         f"{'it' if len(missing) == 1 else 'them'} in {sources}; run it (`drill run --shard "
                         f"{missing[0]}/{count}`) or wait for it, then merge again")
    owner: dict[str, Share] = {}
    for share in shares:
        planned = set(share.shard.scenarios)
        for scenario in share.run.scenarios:
            key = scenario_key(scenario)
            if key in owner:
                raise MergeError(f"scenario {key} ({scenario.name}) was run twice: by {owner[key].label} and by "
                                 f"{share.label}")
            if key not in planned:
                raise MergeError(f"{share.label} ran scenario {key} ({scenario.name}), which its plan gives to "
                                 f"another share")
            owner[key] = share
        absent = [key for key in share.shard.scenarios if key not in owner or owner[key] is not share]
        if absent and share.run.status != "interrupted":
            raise MergeError(f"{share.label} lacks {len(absent)} scenario(s) it was planned to run: "
                             f"{', '.join(absent[:5])}{' …' if len(absent) > 5 else ''}; run that share again")


def _time(value: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def _one(values: list[str | None]) -> str | None:
    unique = sorted({v for v in values if v})
    return ", ".join(unique) if unique else None


def merge(shares: list[Share], run_id: str, command: list[str]) -> RunResult:
    """One run from checked shares: scenarios in plan order, times spanning every share."""
    order = {key: position for position, key in enumerate(shares[0].shard.order)}
    scenarios = sorted((s for share in shares for s in share.run.scenarios),
                       key=lambda s: order.get(scenario_key(s), len(order)))
    starts = [t for t in (_time(s.run.started_at) for s in shares) if t is not None]
    ends = [t for t in (_time(s.run.ended_at) for s in shares) if t is not None]
    started, ended = (min(starts) if starts else None), (max(ends) if ends else None)
    first = shares[0].run
    ordered = sorted(shares, key=lambda s: s.shard.index)
    run = RunResult(
        run_id=run_id, started_at=started.isoformat(timespec="milliseconds") if started else first.started_at,
        ended_at=ended.isoformat(timespec="milliseconds") if ended else None,
        seconds=(ended - started).total_seconds() if started and ended else None,
        drill_version=_one([s.run.drill_version for s in shares]) or __version__,
        git_commit=_one([s.run.git_commit for s in shares]), config_path=first.config_path,
        config_digest=_one([s.run.config_digest for s in shares]) or "", profile=first.profile, command=command,
        scenarios=scenarios,
        # Each share repaired what a killed drill left on its own machine before its scenarios: a repair that
        # failed fails that share, and so the merged run (as DrillSession.finish decides for one run).
        repairs=[repair for share in ordered for repair in share.run.repairs],
        merged_from=[MergedShard(index=s.shard.index, run_id=s.run.run_id, host=s.run.host, status=s.run.status,
                                 started_at=s.run.started_at, ended_at=s.run.ended_at, content_sha256=s.digest)
                     for s in ordered])
    statuses = {s.status for s in scenarios}
    if any(share.run.status == "interrupted" for share in shares):
        run.status = "interrupted"
    elif failed_shares(shares):
        run.status = "failed"  # a share's own verdict stands, whatever made it (a repair, a crash, a newer drill)
    elif not scenarios:
        run.status = "error"
    elif (statuses <= {"passed", "skipped"} and all(s.targets_met for s in scenarios)
          and all(repair.ok for repair in run.repairs)):
        run.status = "passed"
    else:
        run.status = "failed"
    return run


def failed_shares(shares: list[Share]) -> list[Share]:
    """The shares that did not pass on their own (interrupted ones aside: they make the merged run interrupted)."""
    return [share for share in shares if share.run.status not in ("passed", "interrupted")]


def share_failures(shares: list[Share]) -> list[str]:
    """Why each failed share failed, in its own results' words (printed: the merged run fails for them)."""
    notes = []
    for share in failed_shares(shares):
        why = [f"live store {r.store} left by a killed drill was {r.outcome}"
               + (f" ({r.message})" if r.message else "") for r in share.run.repairs if not r.ok]
        failed = [s.name for s in share.run.scenarios if s.status not in ("passed", "skipped") or not s.targets_met]
        if failed:
            more = " …" if len(failed) > 3 else ""
            why.append(f"{len(failed)} scenario(s) did not pass: {', '.join(failed[:3])}{more}")
        notes.append(f"{share.label} ended {share.run.status}: {'; '.join(why) or 'see its results'}")
    return notes


def differences(shares: list[Share]) -> list[str]:
    """What the shares disagree on that a merged run should not hide (printed as warnings)."""
    notes = []
    for what, values in (("git commit", [s.run.git_commit for s in shares]),
                         ("configuration digest", [s.run.config_digest for s in shares]),
                         ("profile", [s.run.profile for s in shares])):
        if len({v for v in values}) > 1:
            notes.append(f"the shares ran with different {what}s: "
                         + ", ".join(f"shard {s.shard.index}: {v}" for s, v in zip(shares, values, strict=True)))
    return notes
