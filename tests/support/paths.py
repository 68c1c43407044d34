"""Where tests find the repository's files: its root, tests/data (third-party fixtures) and examples."""

from pathlib import Path

#: The repository's root folder.
ROOT = Path(__file__).resolve().parents[2]
#: Fixtures the tests carry, each third-party set with its licence (``tests/data``).
DATA = ROOT / "tests" / "data"
#: The demo catalogue (``examples/catalog.csv``).
CATALOG_CSV = ROOT / "examples" / "catalog.csv"
