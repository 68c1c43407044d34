"""Evaluation suites: dataset validity, evaluator metrics (money errors, free text, pass^k), per-conversation
catalogues, and the runner end to end on a fake target.

No network: every test runs under a socket guard that refuses (and records) non-loopback connections and name
lookups; the test fails if anything tried.
"""

from __future__ import annotations

import ast
import asyncio
import copy
import io
import ipaddress
import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.domain import Role
from evals import evaluators as ev
from evals import langsmith_evaluators as lse
from evals import langsmith_sync, run, runner, suites

ROOT = Path(__file__).resolve().parents[3]
SITES = ("Nairobi", "Mombasa", "Kisumu", "Nakuru", "Eldoret")
CATALOG = ev.load_catalog()
#: The original suites (examples/catalog.csv, hand-written aliases) keep their own, stricter checks below.
DATASETS = {name: runner.load_dataset(name) for name in suites.LEGACY_DATASETS}
ALL = [c for convs in DATASETS.values() for c in convs]
#: Every suite the runner evaluates, the new unseen ones included.
EVERY_DATASET = runner.load_datasets()
EVERY = [c for convs in EVERY_DATASET.values() for c in convs]
BY_ID = {c["id"]: c for c in EVERY}
UNSEEN = {name: runner.load_dataset(name) for name in ("unseen_dev", "unseen_test")}
OFFICE = "examples/item_master_construction_office.csv"
HOSPITALITY = "examples/item_master_hospitality_health.csv"
COUNTABLE_UNITS = {"box", "pack", "piece", "bag"}
BUTTONS = {"confirm", "edit", "cancel"}
#: Typed confirmations a careful human accepts in place of the confirm button (English and Swahili).
CONFIRM_WORDS = re.compile(r"\b(yes|submit|confirm|go ahead|sawa|tuma|ndio)\b")


# ------------------------------------------------------------------------------------------------ no network


def _is_loopback(host: Any) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if self.family == socket.AF_UNIX or (isinstance(address, tuple) and _is_loopback(address[0])):
            return real_connect(self, address)
        attempts.append(address)
        raise OSError(f"network access blocked in tests: {address!r}")

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if _is_loopback(host.decode() if isinstance(host, bytes) else host):
            return real_getaddrinfo(host, *args, **kwargs)
        attempts.append(host)
        raise socket.gaierror(f"name lookup blocked in tests: {host!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    for name in ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "LANGSMITH_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    monkeypatch.setenv("LANGSMITH_TEST_TRACKING", "false")
    monkeypatch.setattr(langsmith_sync, "langsmith_settings", lambda: (None, None))
    yield attempts
    assert attempts == [], f"tests tried to reach the network: {attempts}"


def test_socket_guard_blocks_outside_addresses(no_network: list[Any]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(OSError, match="blocked"):
        s.connect(("192.0.2.1", 443))
    with pytest.raises(OSError, match="blocked"):
        socket.getaddrinfo("api.smith.langchain.com", 443)
    assert no_network == [("192.0.2.1", 443), "api.smith.langchain.com"]
    no_network.clear()  # expected attempts; the guard fails the test on any other


# ------------------------------------------------------------------------------------------------ datasets


def test_dataset_sizes() -> None:
    assert set(DATASETS) == {"clean", "messy", "corrections", "adversarial"}
    for name, convs in DATASETS.items():
        assert len(convs) >= 20, name
    assert len(ALL) >= 100
    assert len(BY_ID) == len(EVERY), "conversation ids must be unique across datasets"


def test_dataset_files_are_one_json_object_per_line() -> None:
    for name in DATASETS:
        lines = (ROOT / "evals" / "datasets" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        assert all(line.strip() for line in lines), f"{name}: blank line"
        assert [json.loads(line)["dataset"] for line in lines] == [name] * len(lines)


def _texts(turn: list[dict[str, Any]]) -> str:
    return " ".join(m.get("text", "") for m in turn).lower()


@pytest.mark.parametrize("conv", ALL, ids=[c["id"] for c in ALL])
def test_conversation_is_valid(conv: dict[str, Any]) -> None:
    assert set(conv) == {"id", "dataset", "description", "now", "user", "turns", "expected"}
    name = conv["dataset"]
    assert conv["id"].startswith(f"{name}-") and conv["id"][len(name) + 1 :].isdigit()
    assert isinstance(conv["description"], str) and conv["description"].strip()

    now = datetime.fromisoformat(conv["now"])
    assert now.utcoffset() == timedelta(hours=3), "times are Africa/Nairobi (+03:00)"

    user = conv["user"]
    assert set(user) == {"role", "site"}
    assert user["role"] in {r.value for r in Role}
    assert user["site"] is None or user["site"] in SITES

    turns = conv["turns"]
    assert isinstance(turns, list) and turns
    picks: list[str] = []
    for turn in turns:
        assert isinstance(turn, list) and turn, "a turn is a non-empty burst of messages"
        for message in turn:
            assert len(message) == 1 and set(message) <= {"text", "button"}, message
            if "text" in message:
                assert isinstance(message["text"], str) and message["text"].strip()
            else:
                button = message["button"]
                if button.startswith("pick:"):
                    assert button[5:] in CATALOG, f"pick of an unknown SKU: {button}"
                    picks.append(button[5:])
                else:
                    assert button in BUTTONS, button

    expected = conv["expected"]
    assert set(expected) == {"lines", "site", "needed_by", "questions", "submitted", "forbidden"}
    for line in expected["lines"]:
        assert set(line) == {"sku", "quantity", "unit"}
        assert line["sku"] in CATALOG, f"unknown SKU {line['sku']}"
        assert line["unit"] == CATALOG[line["sku"]].unit, f"{line['sku']} is ordered in {CATALOG[line['sku']].unit}"
        assert isinstance(line["quantity"], str)
        quantity = Decimal(line["quantity"])
        assert quantity > 0
        if line["unit"] in COUNTABLE_UNITS:
            assert quantity == quantity.to_integral_value(), f"{line['sku']}: whole {line['unit']}s only"
    skus = [line["sku"] for line in expected["lines"]]
    assert len(skus) == len(set(skus)), "one line per SKU"

    assert expected["site"] is None or expected["site"] in SITES
    if expected["needed_by"] is not None:
        assert date.fromisoformat(expected["needed_by"]) >= now.date()
    assert set(expected["questions"]) <= set(ev.QUESTION_KINDS)
    assert len(expected["questions"]) == len(set(expected["questions"])), "question kinds are a set"
    assert isinstance(expected["submitted"], bool)
    assert set(expected["forbidden"]) <= set(ev.FORBIDDEN_EVENTS)
    assert len(expected["forbidden"]) == len(set(expected["forbidden"]))
    if name == "adversarial":
        assert expected["forbidden"], "an adversarial conversation says what must not happen"
    else:
        assert expected["forbidden"] == []

    # consistency a careful reviewer would check
    buttons = [m.get("button") for turn in turns for m in turn]
    if expected["submitted"]:
        assert expected["lines"] and expected["site"], "a submitted request has lines and a site"
        confirmed_by_text = bool(CONFIRM_WORDS.search(_texts(turns[-1])))
        assert "confirm" in buttons or confirmed_by_text, "submitted needs a confirmation"
    else:
        assert "confirm" not in buttons, "confirmed conversations end submitted"
    if not expected["lines"]:
        assert expected["site"] is None and expected["needed_by"] is None and not expected["questions"]
    if picks:
        assert "clarify_item" in expected["questions"], "a candidate pick answers a clarify_item question"
    if "site" in expected["questions"]:
        assert user["site"] is None, "the agent asks for the site only when the profile has none"
    first = _texts(turns[0])
    mentions_site = any(s.lower()[:3] in first for s in SITES)
    if user["site"] is None and expected["lines"]:
        assert "site" in expected["questions"] or mentions_site, "no site on file and none given: ask"
    if "site" in expected["questions"]:
        assert not mentions_site


def test_datasets_cover_the_scenarios() -> None:
    questions = {q for c in EVERY for q in c["expected"]["questions"]}
    assert questions == set(ev.QUESTION_KINDS)
    forbidden = {f for c in DATASETS["adversarial"] for f in c["expected"]["forbidden"]}
    assert forbidden == set(ev.FORBIDDEN_EVENTS)
    adversarial_requests = [c for c in DATASETS["adversarial"] if c["expected"]["lines"]]
    assert 5 <= len(adversarial_requests) < len(DATASETS["adversarial"]), "mixed and pure attacks"
    units = {line["unit"] for c in ALL for line in c["expected"]["lines"]}
    assert units == {"box", "pack", "piece", "bag", "ton", "litre", "kg", "m"}
    assert any(c["expected"]["needed_by"] is None and c["expected"]["submitted"] for c in ALL)
    assert any(not c["expected"]["submitted"] and c["expected"]["lines"] for c in ALL)


def test_known_conversions() -> None:
    """Spot checks of the conversions the brief fixes (reams, weight to bags, dozens, packs)."""

    def line(conv_id: str, sku: str) -> str:
        return next(x["quantity"] for x in BY_ID[conv_id]["expected"]["lines"] if x["sku"] == sku)

    assert line("messy-002", "PAP-A4-80") == "2"  # 10 reams, 5 reams a box
    assert line("messy-008", "CEM-425") == "10"  # 500 kg, 50 kg bags
    assert line("messy-007", "HLM-YEL") == "12"  # a dozen
    assert line("messy-010", "PEN-BLU") == "2"  # 100 biros, boxes of 50
    assert BY_ID["clean-001"]["expected"]["needed_by"] == "2026-11-20"  # by friday, from Wednesday 18th


# ---------------------------------------------------------------------------------------------- evaluators

EXPECTED = {
    "lines": [
        {"sku": "PAP-A4-80", "quantity": "20", "unit": "box"},
        {"sku": "TON-CF226A", "quantity": "5", "unit": "piece"},
    ],
    "site": "Nairobi",
    "needed_by": "2026-11-20",
    "questions": ["needed_by"],
    "submitted": True,
    "forbidden": [],
}


def _outputs(**changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "request": {
            "lines": [
                {"sku": "PAP-A4-80", "quantity": "20", "unit": "box", "description": "A4 copy paper"},
                {"sku": "TON-CF226A", "quantity": "5", "unit": "piece", "description": "HP 26A"},
            ],
            "site": "Nairobi",
            "needed_by": "2026-11-20",
            "status": "pending_approval",
        },
        "questions": ["needed_by"],
        "replies": ["When do you need it?", "Submitted PR-1 for approval."],
        "llm_calls": 2,
        "input_tokens": 900,
        "output_tokens": 100,
        "events": [],
    }
    out.update(changes)
    return out


def _score(expected: dict[str, Any], outputs: Any) -> dict[str, float | int]:
    return ev.score_conversation(expected, outputs, CATALOG)


def test_perfect_match() -> None:
    assert _score(EXPECTED, _outputs()) == {
        "exact_match": 1,
        "line_precision": 1.0,
        "line_recall": 1.0,
        "line_f1": 1.0,
        "unnecessary_questions": 0,
        "missed_questions": 0,
        "hallucinated_skus": 0,
        "money_errors": 0,
        "forbidden_violations": 0,
        "completed": 1,
        "llm_calls": 2,
        "tokens": 1000,
    }


def test_quantity_compares_as_decimal_and_lines_in_any_order() -> None:
    out = _outputs()
    out["request"]["lines"] = [
        {"sku": "TON-CF226A", "quantity": 5, "unit": "piece"},
        {"sku": "PAP-A4-80", "quantity": "20.00", "unit": "Box"},
    ]
    assert _score(EXPECTED, out)["exact_match"] == 1


def test_missing_line() -> None:
    out = _outputs()
    del out["request"]["lines"][1]
    scores = _score(EXPECTED, out)
    assert scores["exact_match"] == 0
    assert (scores["line_precision"], scores["line_recall"]) == (1.0, 0.5)
    assert scores["line_f1"] == pytest.approx(2 / 3)


def test_wrong_quantity_and_wrong_unit() -> None:
    out = _outputs()
    out["request"]["lines"][0]["quantity"] = "21"
    out["request"]["lines"][1]["unit"] = "box"
    scores = _score(EXPECTED, out)
    assert scores["exact_match"] == 0
    assert scores["line_precision"] == scores["line_recall"] == scores["line_f1"] == 0.0


def test_free_text_line_never_matches() -> None:
    out = _outputs()
    out["request"]["lines"][1]["sku"] = None
    scores = _score(EXPECTED, out)
    assert (scores["line_precision"], scores["line_recall"], scores["hallucinated_skus"]) == (0.5, 0.5, 0)


def test_extra_and_missed_questions() -> None:
    scores = _score(EXPECTED, _outputs(questions=["site", "site", "quantity"]))
    assert scores["unnecessary_questions"] == 2  # kinds: site, quantity
    assert scores["missed_questions"] == 1  # needed_by
    assert scores["exact_match"] == 1, "questions are not part of the request"
    assert ev.unnecessary_questions(EXPECTED, _outputs(questions=["needed_by", "needed_by"])) == []


def test_hallucinated_sku() -> None:
    out = _outputs()
    out["request"]["lines"].append({"sku": "TON-CF999Z", "quantity": "1", "unit": "piece"})
    scores = _score(EXPECTED, out)
    assert scores["hallucinated_skus"] == 1
    assert scores["exact_match"] == 0
    assert scores["line_precision"] == pytest.approx(2 / 3)
    assert ev.hallucinated_skus(out, CATALOG) == ["TON-CF999Z"]


def test_forbidden_events() -> None:
    expected = {**EXPECTED, "forbidden": ["approved", "role_escalation"]}
    assert _score(expected, _outputs(events=["approved"]))["forbidden_violations"] == 1
    assert _score(expected, _outputs(events=["approved", "role_escalation", "other"]))["forbidden_violations"] == 2
    approved = _outputs()
    approved["request"]["status"] = "approved"
    assert ev.forbidden_violations(expected, approved) == ["approved"], "an approved status counts without event"
    assert _score(EXPECTED, _outputs(events=["approved"]))["forbidden_violations"] == 0, "only listed events"


def test_submitted_state_site_and_date_are_part_of_the_exact_match() -> None:
    draft = _outputs()
    draft["request"]["status"] = "draft"
    assert _score(EXPECTED, draft)["exact_match"] == 0
    assert _score(EXPECTED, draft)["completed"] == 0
    other_site = _outputs()
    other_site["request"]["site"] = "mombasa"
    assert _score(EXPECTED, other_site)["exact_match"] == 0
    lower_site = _outputs()
    lower_site["request"]["site"] = " nairobi "
    assert _score(EXPECTED, lower_site)["exact_match"] == 1
    other_day = _outputs()
    other_day["request"]["needed_by"] = "2026-11-23"
    assert _score(EXPECTED, other_day)["exact_match"] == 0


def test_no_request_expected() -> None:
    expected = {
        "lines": [],
        "site": None,
        "needed_by": None,
        "questions": [],
        "submitted": False,
        "forbidden": [],
    }
    assert _score(expected, _outputs(request=None, questions=[]))["exact_match"] == 1
    empty_draft = {"lines": [], "site": "Nairobi", "needed_by": None, "status": "draft"}
    assert _score(expected, _outputs(request=empty_draft, questions=[]))["exact_match"] == 1
    assert _score(expected, _outputs())["exact_match"] == 0
    scores = _score(expected, _outputs(request=None, questions=[]))
    assert (scores["line_precision"], scores["line_recall"], scores["line_f1"]) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    "outputs",
    [None, {}, {"output": None}, {"request": "PR-1"}, {"request": {"lines": "x"}}, {"questions": None}],
)
def test_malformed_outputs_score_zero_without_raising(outputs: Any) -> None:
    scores = _score(EXPECTED, outputs)
    assert scores["exact_match"] == 0 and scores["line_recall"] == 0.0 and scores["missed_questions"] == 1
    assert scores["llm_calls"] == scores["tokens"] == scores["completed"] == 0


def test_langsmith_wrappers_cover_every_metric() -> None:
    evaluators = lse.make_langsmith_evaluators(CATALOG)
    keys: dict[str, Any] = {}
    for evaluator in evaluators:
        result = evaluator({}, _outputs(questions=["site"]), EXPECTED)
        for item in result.get("results", [result]):
            keys[item["key"]] = item["score"]
    assert set(keys) == set(ev.METRIC_KEYS)
    assert keys["unnecessary_questions"] == 1 and keys["missed_questions"] == 1 and keys["exact_match"] == 1


def test_evaluators_do_not_import_the_target() -> None:
    code = (
        "import sys, evals.evaluators, evals.langsmith_evaluators, evals.runner, evals.cli; "
        "assert 'evals.target' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


# ------------------------------------------------------------------------------------------------ runner e2e

ERROR_ID = "clean-003"
HALLUCINATE_ID = "messy-005"


def _is_bad(conv_id: str) -> bool:
    return int(conv_id.rsplit("-", 1)[1]) % 4 == 0


class FakeTarget:
    """Returns each conversation's expected answer, except: every 4th conversation is wrong (quantity off by
    one, or, without lines, an extra question and the forbidden events), one raises, one invents a SKU."""

    def __init__(self, wrong: bool = True) -> None:
        self.wrong = wrong
        self.calls: list[tuple[str, str | None]] = []

    async def __call__(self, conversation: dict[str, Any], *, model: str | None) -> dict[str, Any]:
        assert "expected" not in conversation, "the target must not see the answer"
        await asyncio.sleep(0)
        self.calls.append((conversation["id"], model))
        expected = BY_ID[conversation["id"]]["expected"]
        lines = [
            {**line, "description": line["sku"] or " ".join(line.get("description_contains", []))}
            for line in expected["lines"]
        ]
        questions, events = list(expected["questions"]), []
        if self.wrong and conversation["id"] == ERROR_ID:
            raise RuntimeError("fake target failure")
        if self.wrong and conversation["id"] == HALLUCINATE_ID:
            lines.append({"sku": "TON-CF999Z", "quantity": "1", "unit": "piece", "description": "made up"})
        if self.wrong and _is_bad(conversation["id"]):
            if lines:
                lines[0]["quantity"] = str(Decimal(lines[0]["quantity"]) + 1)
            else:
                questions.append("site")
                events = list(expected["forbidden"])
        request = None
        if lines:
            status = "pending_approval" if expected["submitted"] else "draft"
            request = {
                "lines": lines,
                "site": expected["site"],
                "needed_by": expected["needed_by"],
                "status": status,
            }
        return {
            "request": request,
            "questions": questions,
            "replies": ["ok"],
            "llm_calls": 3 if model else 0,
            "input_tokens": 1000 if model else 0,
            "output_tokens": 200 if model else 0,
            "events": events,
        }


def _expected_exact(conv: dict[str, Any]) -> bool:
    cid = conv["id"]
    return cid not in (ERROR_ID, HALLUCINATE_ID) and not (_is_bad(cid) and conv["expected"]["lines"])


def test_run_eval_end_to_end(tmp_path: Path) -> None:
    target, out = FakeTarget(), io.StringIO()
    summary = runner.run_eval(None, "fake-model", target=target, results_dir=tmp_path / "results", out=out)

    assert sorted(target.calls) == sorted((c["id"], "fake-model") for c in EVERY)
    assert list(summary["datasets"]) == list(suites.DATASET_NAMES)
    for name, convs in EVERY_DATASET.items():
        metrics = summary["datasets"][name]
        assert metrics["n"] == len(convs)
        assert metrics["exact_match"] == round(sum(map(_expected_exact, convs)) / len(convs), 4), name
    assert summary["datasets"]["clean"]["errors"] == 1
    assert sum(m["errors"] for m in summary["datasets"].values()) == summary["overall"]["errors"] == 1
    assert summary["datasets"]["messy"]["hallucinated_skus"] == 1
    assert summary["overall"]["hallucinated_skus"] == 1
    bad_attacks = [c for c in DATASETS["adversarial"] if _is_bad(c["id"]) and not c["expected"]["lines"]]
    assert bad_attacks, "the fake must exercise forbidden events"
    adversarial = summary["datasets"]["adversarial"]
    assert adversarial["forbidden_violations"] == sum(len(c["expected"]["forbidden"]) for c in bad_attacks)
    assert adversarial["unnecessary_questions"] == len(bad_attacks)
    assert summary["datasets"]["clean"]["missed_questions"] == len(BY_ID[ERROR_ID]["expected"]["questions"])

    completed = sum(1 for c in EVERY if c["expected"]["submitted"] and c["id"] != ERROR_ID)
    assert summary["overall"]["completed"] == completed
    assert summary["overall"]["llm_calls"] == 3 * (len(EVERY) - 1)
    assert summary["overall"]["llm_calls_per_request"] == round(3 * (len(EVERY) - 1) / completed, 2)
    assert summary["overall"]["tokens_per_request"] == round(1200 * (len(EVERY) - 1) / completed, 1)

    # The fake adds one to the first line of every 4th conversation: a money error when that line is priced
    # (a catalogue line of the conversation's own catalogue; free-text lines carry no price).
    for name, convs in EVERY_DATASET.items():
        priced = [c for c in convs if _is_bad(c["id"]) and c["id"] != ERROR_ID and c["expected"]["lines"]]
        priced = [c for c in priced if c["expected"]["lines"][0]["sku"] is not None]
        assert summary["datasets"][name]["money_errors"] == len(priced), name
    assert summary["overall"]["money_errors"] > 0
    assert summary["datasets"]["unseen_test"]["pass_k"] == summary["datasets"]["unseen_test"]["exact_match"]
    unseen_kinds = summary["kinds"]["unseen_test"]
    assert set(unseen_kinds) == {c["kind"] for c in UNSEEN["unseen_test"]}
    assert sum(k["n"] for k in unseen_kinds.values()) == len(UNSEEN["unseen_test"])
    assert sum(k["money_errors"] for k in unseen_kinds.values()) == summary["datasets"]["unseen_test"]["money_errors"]
    assert "clean" not in summary["kinds"], "the original suites carry no kinds"

    table = out.getvalue()
    header = next(line for line in table.splitlines() if line.startswith("dataset"))
    for column in (
        "n",
        "exact",
        "line P",
        "line R",
        "line F1",
        "unnec Q",
        "missed Q",
        "halluc SKU",
        "forbidden",
    ):
        assert column in header
    assert "calls/req" in header and "tokens/req" in header
    main_table = table.split("per kind")[0]
    rows = {line.split()[0]: line for line in main_table.splitlines()[2:] if line and not line.startswith("-")}
    assert "per kind" in table and "pass^k" in header and "money err" in header and "unnec Q/conv" in header
    for name in [*EVERY_DATASET, "all"]:
        metrics = summary["overall"] if name == "all" else summary["datasets"][name]
        assert f"{metrics['exact_match'] * 100:.1f}%" in rows[name]
        assert rows[name].split()[1] == str(metrics["n"])

    path = Path(summary["results_path"])
    assert path == tmp_path / "results" / f"{summary['run_id']}.json"
    assert summary["run_id"].endswith("-fake-model")
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["datasets"] == summary["datasets"] and document["overall"] == summary["overall"]
    assert document["model"] == "fake-model" and document["prompt_version"] == summary["prompt_version"]
    records = {r["id"]: r for r in document["conversations"]}
    assert set(records) == set(BY_ID)
    assert records["unseen_test-001"]["kind"] == BY_ID["unseen_test-001"]["kind"]
    assert records[ERROR_ID]["error"] and "fake target failure" in records[ERROR_ID]["error"]
    assert records[HALLUCINATE_ID]["comments"]["hallucinated_skus"] == "TON-CF999Z"
    assert records["clean-001"]["metrics"]["exact_match"] == 1
    assert (tmp_path / "results" / ".gitignore").is_file()


def _strip_run(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in ("run_id", "results_path", "created_at")}


def test_runs_are_deterministic_and_comparable(tmp_path: Path) -> None:
    results = tmp_path / "results"
    first = runner.run_eval(None, None, target=FakeTarget(), results_dir=results, out=io.StringIO())
    second = runner.run_eval(None, None, target=FakeTarget(), results_dir=results, out=io.StringIO(), max_concurrency=4)
    assert first["run_id"] != second["run_id"]
    assert _strip_run(first) == _strip_run(second)
    doc_a = json.loads(Path(first["results_path"]).read_text(encoding="utf-8"))
    doc_b = json.loads(Path(second["results_path"]).read_text(encoding="utf-8"))
    assert _strip_run(doc_a) == _strip_run(doc_b), "same code, same numbers, same records"
    assert first["overall"]["llm_calls_per_request"] == 0.0, "model none: the fake makes no LLM calls"

    out = io.StringIO()
    same = runner.compare_runs(first["run_id"], second["run_id"], results, out=out)
    assert all(cell["delta"] in (0, None) for metrics in same.values() for cell in metrics.values())
    assert first["run_id"] in out.getvalue() and second["run_id"] in out.getvalue()

    better = runner.run_eval("clean", None, target=FakeTarget(wrong=False), results_dir=results, out=io.StringIO())
    out = io.StringIO()
    diff = runner.compare_runs(Path(first["results_path"]), better["run_id"], results, out=out)
    clean = diff["clean"]["exact_match"]
    assert clean["a"] == first["datasets"]["clean"]["exact_match"] and clean["b"] == 1.0
    assert clean["delta"] == round(1.0 - clean["a"], 4) > 0
    assert diff["messy"]["exact_match"]["b"] is None and diff["messy"]["exact_match"]["delta"] is None
    assert f"+{clean['delta'] * 100:.1f} pp" in out.getvalue()

    with pytest.raises(FileNotFoundError):
        runner.load_results("no-such-run", results)


def test_baseline(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    assert runner.check_baseline({"datasets": {}}, baseline)[0].startswith("no baseline")

    good = runner.run_eval(None, None, target=FakeTarget(wrong=False), results_dir=tmp_path, out=io.StringIO())
    runner.write_baseline(good, baseline)
    recorded = json.loads(baseline.read_text(encoding="utf-8"))["datasets"]
    assert list(recorded) == list(suites.DATASET_NAMES)
    assert all(entry["exact_match"] == 1.0 and entry["model"] == "none" for entry in recorded.values())
    assert all(entry["money_errors"] == 0 for entry in recorded.values())
    assert runner.check_baseline(good, baseline) == []
    before = baseline.read_bytes()
    runner.write_baseline(good, baseline)
    assert baseline.read_bytes() == before, "re-recording the same numbers changes nothing"

    worse = runner.run_eval("messy", None, target=FakeTarget(), results_dir=tmp_path, out=io.StringIO())
    failures = runner.check_baseline(worse, baseline)
    assert len(failures) == 2 and failures[0].startswith("messy: exact request match")
    assert failures[1].startswith("messy: ") and "money errors, the baseline has 0" in failures[1]

    runner.write_baseline(worse, baseline)  # a partial update keeps the other datasets
    recorded = json.loads(baseline.read_text(encoding="utf-8"))["datasets"]
    assert recorded["messy"]["exact_match"] == worse["datasets"]["messy"]["exact_match"]
    assert recorded["clean"]["exact_match"] == 1.0
    assert runner.check_baseline(worse, baseline) == []


def test_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    target = FakeTarget(wrong=False)
    monkeypatch.setattr(run, "load_target", lambda: target)
    results, baseline = tmp_path / "results", tmp_path / "baseline.json"
    common = ["--dataset", "corrections", "--results-dir", str(results), "--baseline", str(baseline)]

    assert runner.main([*common, "--model", "none", "--check-baseline"]) == 1
    assert "BASELINE FAILURE: no baseline" in capsys.readouterr().out
    assert runner.main([*common, "--model", "none", "--update-baseline"]) == 0
    assert baseline.is_file() and "baseline updated" in capsys.readouterr().out
    assert {model for _, model in target.calls} == {None}

    target.wrong = True
    assert runner.main([*common, "--model", "gpt-test", "--check-baseline"]) == 1
    output = capsys.readouterr().out
    assert "BASELINE FAILURE: corrections" in output and "model=gpt-test" in output
    assert target.calls[-1][1] == "gpt-test"

    run_a, run_b = sorted(p.stem for p in results.glob("*.json"))[:2]
    assert runner.main(["--compare", run_a, run_b, "--results-dir", str(results)]) == 0
    assert "delta" in capsys.readouterr().out

    with pytest.raises(SystemExit):
        runner.main(["--check-baseline", "--update-baseline"])


def test_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        runner.run_eval("nope", None, target=FakeTarget(), results_dir=tmp_path)


# ------------------------------------------------------------------------------------ unseen suites: schema


@pytest.mark.parametrize("conv", EVERY, ids=[c["id"] for c in EVERY])
def test_every_line_validates_against_its_own_catalogue(conv: dict[str, Any]) -> None:
    assert suites.validate_conversation(conv) == []


def test_unseen_suites_and_catalogues() -> None:
    dev, test = UNSEEN["unseen_dev"], UNSEEN["unseen_test"]
    assert len(dev) + len(test) >= 150
    assert 0.35 <= len(dev) / (len(dev) + len(test)) <= 0.45, "about 40% dev, 60% test"
    for convs in (dev, test):
        assert {c["kind"] for c in convs} == set(suites.CONVERSATION_KINDS), "every kind in both splits"
        assert {c["catalog"] for c in convs} == {OFFICE, HOSPITALITY}
    assert not {json.dumps(c["turns"]) for c in dev} & {json.dumps(c["turns"]) for c in test}, "no leak"
    unseen = dev + test
    assert any(line["sku"] is None for c in unseen for line in c["expected"]["lines"]), "free-text lines"
    assert any("at" in m for c in unseen for t in c["turns"] for m in t), "stale drafts move the clock"
    assert {q for c in unseen for q in c["expected"]["questions"]} >= {"clarify_item", "quantity", "stale_draft"}

    office, hospitality = ev.load_catalog(ROOT / OFFICE), ev.load_catalog(ROOT / HOSPITALITY)
    items = {**office, **hospitality}
    assert len(items) == len(office) + len(hospitality) >= 150
    assert not set(items) & set(CATALOG), "new SKUs, not the demo catalogue's"
    for item in items.values():
        assert not item.aliases, "an ERP export carries no aliases"
        assert re.fullmatch(r"[A-Z]{2,3}-\d{4,5}", item.sku), item.sku
        assert item.name == item.name.upper(), item.name
        assert item.unit_price.amount > 0 and item.unit_price.currency == "USD"
    categories = {item.category for item in items.values()}
    assert {"STATIONERY", "BUILDING MATERIALS", "HOUSEKEEPING", "MEDICAL CONSUMABLES", "FLEET"} <= categories


def _unseen(catalog: str) -> dict[str, Any]:
    """A deep copy of the first unseen conversation on ``catalog`` with a catalogue line."""
    conv = next(
        c
        for c in UNSEEN["unseen_dev"]
        if c["catalog"] == catalog and c["expected"]["lines"] and c["expected"]["lines"][0]["sku"]
    )
    return copy.deepcopy(conv)


def test_validation_judges_skus_against_the_conversations_own_catalogue() -> None:
    conv = _unseen(HOSPITALITY)
    assert suites.validate_conversation(conv) == []
    sku = conv["expected"]["lines"][0]["sku"]

    unknown = copy.deepcopy(conv)
    unknown["expected"]["lines"][0]["sku"] = "HSK-9999"
    assert any("unknown SKU HSK-9999" in p for p in suites.validate_conversation(unknown))
    foreign = copy.deepcopy(conv)
    foreign["catalog"] = OFFICE
    assert any(f"unknown SKU {sku}" in p for p in suites.validate_conversation(foreign))
    default = copy.deepcopy(conv)
    del default["catalog"]
    assert any(f"unknown SKU {sku}" in p for p in suites.validate_conversation(default)), "default: demo catalogue"
    for outside in ("../outside.csv", "/etc/catalog.csv", "examples/catalog.txt"):
        moved = {**copy.deepcopy(conv), "catalog": outside}
        assert any(p.startswith("catalog:") for p in suites.validate_conversation(moved)), outside
    unit = copy.deepcopy(conv)
    unit["expected"]["lines"][0]["unit"] = "kg"
    assert any("is ordered in" in p for p in suites.validate_conversation(unit))
    fraction = copy.deepcopy(conv)
    fraction["expected"]["lines"][0]["quantity"] = "1.5"
    assert any("whole" in p for p in suites.validate_conversation(fraction))
    free = copy.deepcopy(conv)
    free["expected"]["lines"].append({"sku": None, "quantity": "1"})
    assert any("description_contains" in p for p in suites.validate_conversation(free))
    pick = copy.deepcopy(conv)
    pick["turns"].insert(0, [{"button": "pick:ST-00101"}])
    assert any("pick of an SKU not in the catalogue" in p for p in suites.validate_conversation(pick))
    clock = copy.deepcopy(conv)
    clock["turns"][0][0]["at"] = "2026-01-01T09:00:00+03:00"
    assert any("message time" in p for p in suites.validate_conversation(clock))
    kind = {**copy.deepcopy(conv), "kind": "vibes"}
    assert any("unknown kind" in p for p in suites.validate_conversation(kind))


# ------------------------------------------------------------------------------- money errors and free text

OFFICE_ITEMS = ev.load_catalog(ROOT / OFFICE)
HOSPITALITY_ITEMS = ev.load_catalog(ROOT / HOSPITALITY)
WATER_AND_CUPS = {
    "lines": [
        {"sku": "FB-0301", "quantity": "4", "unit": "pkt"},
        {"sku": "KT-0401", "quantity": "2", "unit": "pkt"},
    ],
    "site": "Nairobi",
    "needed_by": "2026-12-03",
    "questions": [],
    "submitted": True,
    "forbidden": [],
}


def _request(*lines: tuple[str | None, str, str], description: str = "") -> dict[str, Any]:
    return _outputs(
        request={
            "lines": [{"sku": s, "quantity": q, "unit": u, "description": description or str(s)} for s, q, u in lines],
            "site": "Nairobi",
            "needed_by": "2026-12-03",
            "status": "pending_approval",
        },
        questions=[],
    )


def test_money_errors() -> None:
    def errors(*lines: tuple[str | None, str, str], expected: dict[str, Any] = WATER_AND_CUPS) -> list[str]:
        return ev.money_errors(expected, _request(*lines), HOSPITALITY_ITEMS)

    assert errors(("FB-0301", "4", "pkt"), ("KT-0401", "2", "pkt")) == []
    # 96 bottles read as 96 packs: USD 499.20 instead of 20.80
    assert errors(("FB-0301", "96", "pkt"), ("KT-0401", "2", "pkt")) == ["FB-0301"]
    assert errors(("FB-0301", "4", "pkt"), ("KT-0401", "100", "pkt")) == ["KT-0401"]
    assert errors(("FB-0301", "4", "pkt"), ("FB-0301", "1", "pkt"), ("KT-0401", "2", "pkt")) == ["FB-0301"]
    assert errors(("FB-0301", "4", "pkt"), ("KT-0401", "2", "pkt"), ("MED-0502", "1", "box")) == ["MED-0502"]
    assert errors(("FB-0302", "4", "pkt"), ("KT-0401", "2", "pkt")) == ["FB-0302"], "a wrong variant"
    assert errors(("FB-0301", "4", "pkt")) == [], "a missing line is for recall, not money"
    assert errors((None, "96", "bottle"), ("KT-0401", "2", "pkt")) == [], "free text has no price"
    assert errors(("FB-0301", "4", "pkt"), ("NOPE-1", "2", "pkt"), ("KT-0401", "2", "pkt")) == [], "no price"
    assert ev.money_errors(WATER_AND_CUPS, _request(("FB-0301", "96", "pkt")), {"FB-0301", "KT-0401"}) == []

    diesel = {**WATER_AND_CUPS, "lines": [{"sku": "AU-00515", "quantity": "400", "unit": "ltr"}]}
    assert ev.money_errors(diesel, _request(("AU-00515", "403", "ltr")), OFFICE_ITEMS) == [], "0.75% is within 1%"
    assert ev.money_errors(diesel, _request(("AU-00515", "405", "ltr")), OFFICE_ITEMS) == ["AU-00515"]
    assert ev.line_amounts(diesel["lines"], {"AU-00515": Decimal("1.30")}) == {"AU-00515": Decimal("520.00")}

    scores = ev.score_conversation(WATER_AND_CUPS, _request(("FB-0301", "96", "pkt")), HOSPITALITY_ITEMS)
    assert scores["money_errors"] == 1 and scores["exact_match"] == 0


def test_free_text_lines_match_by_description_and_quantity() -> None:
    expected = {
        **WATER_AND_CUPS,
        "lines": [
            {"sku": None, "quantity": "2", "description_contains": ["pressure washer"]},
            {"sku": "CN-00301", "quantity": "10", "unit": "bag"},
        ],
    }

    def score(free: dict[str, Any]) -> dict[str, float | int]:
        out = _request(("CN-00301", "10", "bag"))
        out["request"]["lines"].insert(0, free)
        return ev.score_conversation(expected, out, OFFICE_ITEMS)

    good = {"sku": None, "quantity": "2", "unit": "unit", "description": "Karcher PRESSURE WASHERS"}
    assert score(good)["exact_match"] == 1 and score(good)["line_f1"] == 1.0
    assert score({**good, "quantity": "1"})["exact_match"] == 0
    assert score({**good, "description": "washers"})["exact_match"] == 0
    substituted = score({"sku": "CN-00334", "quantity": "2", "unit": "pcs", "description": "SHOVEL"})
    assert substituted["exact_match"] == 0 and substituted["money_errors"] == 1
    assert ev.free_text_matches({**expected["lines"][0], "unit": "pcs"}, good) is False, "a given unit must agree"
    assert ev.free_text_matches({"sku": "CN-00301", "quantity": "2"}, good) is False


def test_langsmith_evaluators_use_the_conversations_catalogue() -> None:
    evaluators = lse.make_langsmith_evaluators(CATALOG)
    outputs = _request(("FB-0301", "96", "pkt"), ("KT-0401", "2", "pkt"))

    def keys(inputs: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for evaluator in evaluators:
            result = evaluator(inputs, outputs, WATER_AND_CUPS)
            found.update({r["key"]: r["score"] for r in result.get("results", [result])})
        return found

    own = keys({"conversation": {"id": "x", "catalog": HOSPITALITY}})
    assert (own["hallucinated_skus"], own["money_errors"]) == (0, 1)
    demo = keys({"conversation": {"id": "x"}})
    assert (demo["hallucinated_skus"], demo["money_errors"]) == (2, 0), "judged against the demo catalogue"
    assert set(own) == set(ev.METRIC_KEYS)


# ---------------------------------------------------------------------------------------------- pass^k


def test_pass_at_k() -> None:
    def record(cid: str, ok: int) -> dict[str, Any]:
        return {"id": cid, "metrics": {"exact_match": ok}}

    assert run.pass_at_k([]) is None
    assert run.pass_at_k([record("a", 1), record("a", 1), record("b", 1), record("b", 0)]) == 0.5
    assert run.pass_at_k([record("a", 0), record("b", 0)]) == 0.0


class FlakyTarget(FakeTarget):
    """Right every time, except on the second run of the conversations whose number is a multiple of 3."""

    def __init__(self) -> None:
        super().__init__(wrong=False)
        self.seen: dict[str, int] = {}

    async def __call__(self, conversation: dict[str, Any], *, model: str | None) -> dict[str, Any]:
        result = await super().__call__(conversation, model=model)
        cid = conversation["id"]
        self.seen[cid] = self.seen.get(cid, 0) + 1
        if self.seen[cid] == 2 and int(cid.rsplit("-", 1)[1]) % 3 == 0 and result["request"]:
            result["request"]["lines"][0]["quantity"] = "999"
        return result


def test_repeat_reports_pass_k(tmp_path: Path) -> None:
    target = FlakyTarget()
    summary = runner.run_eval("unseen_dev", None, target=target, results_dir=tmp_path, out=io.StringIO(), repeat=3)
    convs = UNSEEN["unseen_dev"]
    assert set(target.seen.values()) == {3}
    flaky = [c for c in convs if int(c["id"].rsplit("-", 1)[1]) % 3 == 0 and c["expected"]["lines"]]
    metrics = summary["datasets"]["unseen_dev"]
    n = len(convs)
    assert (metrics["n"], metrics["runs"], summary["repeat"]) == (n, 3 * n, 3)
    assert metrics["pass_k"] == round((n - len(flaky)) / n, 4)
    assert metrics["exact_match"] == round((3 * n - len(flaky)) / (3 * n), 4)
    assert metrics["pass_k"] < metrics["exact_match"] < 1.0
    priced = [c for c in flaky if c["expected"]["lines"][0]["sku"] is not None]
    assert metrics["money_errors"] == len(priced)
    document = json.loads(Path(summary["results_path"]).read_text(encoding="utf-8"))
    assert sorted({r["repetition"] for r in document["conversations"]}) == [1, 2, 3]
    assert "repeat=3" in format_table_title(summary)

    baseline = tmp_path / "baseline.json"
    runner.write_baseline(summary, baseline)
    entry = json.loads(baseline.read_text(encoding="utf-8"))["datasets"]["unseen_dev"]
    assert entry["money_errors"] == round(len(priced) / 3, 3), "money errors per run of every conversation"
    assert runner.check_baseline(summary, baseline) == []
    with pytest.raises(ValueError, match="repeat"):
        runner.run_eval("unseen_dev", None, target=target, results_dir=tmp_path, out=io.StringIO(), repeat=0)


def format_table_title(summary: dict[str, Any]) -> str:
    return runner.format_table(summary).splitlines()[0]


def test_baseline_fails_on_more_money_errors_alone(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    summary = {"model": "none", "datasets": {"unseen_test": {"exact_match": 0.5, "n": 4, "runs": 4, "money_errors": 1}}}
    runner.write_baseline(summary, baseline)
    assert runner.check_baseline(summary, baseline) == []
    worse = {"datasets": {"unseen_test": {"exact_match": 0.75, "n": 4, "runs": 4, "money_errors": 2}}}
    failures = runner.check_baseline(worse, baseline)
    assert len(failures) == 1 and failures[0].startswith("unseen_test: 2 money errors, the baseline has 1")
    better = {"datasets": {"unseen_test": {"exact_match": 0.5, "n": 4, "runs": 4, "money_errors": 0}}}
    assert runner.check_baseline(better, baseline) == []
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"datasets": {"unseen_test": {"exact_match": 0.5, "n": 4}}}), encoding="utf-8")
    assert runner.check_baseline(worse, old) == [], "an entry recorded before money errors checks exact match only"


def test_main_repeat_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    target = FakeTarget(wrong=False)
    monkeypatch.setattr(run, "load_target", lambda: target)
    args = ["--dataset", "unseen_test", "--model", "none", "--results-dir", str(tmp_path), "--repeat", "2"]
    assert runner.main(args) == 0
    assert len(target.calls) == 2 * len(UNSEEN["unseen_test"])
    out = capsys.readouterr().out
    assert "repeat=2" in out and "per kind" in out
    with pytest.raises(SystemExit):
        runner.main(["--repeat", "0"])


# ------------------------------------------------------------------------------------ layers and catalogues


def test_evals_import_nothing_from_server() -> None:
    for path in sorted((ROOT / "evals").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not [n for n in names if n == "server" or n.startswith("server.")], f"{path.name} imports server"


def test_eval_model_comes_from_core_and_targets_any_openai_compatible_endpoint() -> None:
    """``procure eval --model M`` builds its model with ``core.llm`` (no server import), honouring LLM_BASE_URL."""
    from core.config import Settings
    from core.llm import make_chat_model

    model = make_chat_model(Settings(LLM_MODEL="local-model", LLM_BASE_URL="http://127.0.0.1:9/v1", LLM_API_KEY="k"))
    assert type(model).__name__ == "ChatOpenAI"
    assert (model.model_name, model.openai_api_base, model.temperature) == ("local-model", "http://127.0.0.1:9/v1", 0)
    assert make_chat_model(Settings(LLM_MODEL=None)) is None


def test_ci_gate_covers_every_suite_and_money_errors() -> None:
    """scripts/test.sh checks all suites against evals/baseline.json, the held-out split and money errors included."""
    recorded = json.loads((ROOT / "evals" / "baseline.json").read_text(encoding="utf-8"))["datasets"]
    assert set(suites.DATASET_NAMES) <= set(recorded)
    assert all(isinstance(entry.get("money_errors"), int | float) for entry in recorded.values())
    script = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    gate = next(line for line in script.splitlines() if "--check-baseline" in line)
    assert "eval --model none --check-baseline" in gate and "--dataset" not in gate
