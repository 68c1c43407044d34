"""Reading procurement requests without a model: numbers, units, sites, dates, items, corrections (no product words).

This runs before any model (see ``ARCHITECTURE.md``, "Deterministic first"). It reads messages such as
``"pls send 20 boxes a4 paper and 5 toner HP 26A for nairobi site by friday"`` into
:class:`~core.domain.ExtractionResult` lines with a confidence each, reads corrections to a draft
(``"make the paper 30"``, ``"drop the toner"``, ``"the 26X"``) into :class:`Edit` operations, and recognises
read-only catalogue questions (``"price of HP 26X?"``). What it cannot read with confidence it leaves
ambiguous (candidates), low-confidence, or in ``unresolved`` for the LLM or a clarifying question; it never
guesses a unit conversion.

Reading order for a request: site phrases, then date phrases are cut out of the text; the rest is split into
item segments (new lines, bullets, commas, "and", a second quantity); in each segment the quantity (digits,
number words, ``2x``/``x2``/``qty 3``, ``a dozen``) and unit are taken and the remaining words are matched
against the catalogue. Within a message, a self-correction ("fifty bags no wait sixty") keeps the later words,
and a quantity on its own ("toilet paper, need like 10 packs") counts the item named just before it. A count
before a noun of an item whose name states its pack size counts pieces ("100 blue biros" = 2 boxes of 50).

Stages, each its own module: ``quantities`` (tokens, counts, units, numbers that belong to names), ``places``
(sites and dates), ``items`` (one segment into a line: match and unit conversion), ``reconcile`` (choices by
attribute among candidates and variants), ``segments`` (clauses, statements, purpose phrases; :func:`extract`),
``edits`` (corrections to a draft; :func:`parse_edits`), ``questions`` (read-only catalogue questions).
Knowledge of products comes from the item master (``tools.catalog``), never from words in this package.
"""

from tools.extraction.edit_ops import Edit, EditOp
from tools.extraction.edits import parse_edits
from tools.extraction.lexicon import UNSPECIFIED_UNIT
from tools.extraction.questions import answer_query, is_catalog_question
from tools.extraction.segments import extract

__all__ = ["UNSPECIFIED_UNIT", "Edit", "EditOp", "answer_query", "extract", "is_catalog_question", "parse_edits"]
