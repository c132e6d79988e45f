"""drill: disaster-recovery drills as code.

Gherkin scenarios back up, lose, restore and verify real stores, measuring recovery time (RTO)
and real data loss (RPO) against targets, and write results an auditor and a CI system can read.
"""

__version__ = "0.1.0"

from drill import _moved
from drill.config import Config, load_config
from drill.durations import format_duration, parse_duration
from drill.errors import ConfigError, DrillError, FeatureError, TargetMissed, VerificationError

_moved.install()  # old import paths of modules that moved into drill/stores/<kind>/

__all__ = [
    "Config",
    "ConfigError",
    "DrillError",
    "FeatureError",
    "TargetMissed",
    "VerificationError",
    "__version__",
    "format_duration",
    "load_config",
    "parse_duration",
]
