"""Evaluation suites: dataset validity, evaluator metrics, and the runner end to end on a fake target.

No network: every test runs under a socket guard that refuses (and records) non-loopback connections and name
lookups; the test fails if anything tried.
"""

from __future__ import annotations

import asyncio
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
from evals import runner

ROOT = Path(__file__).resolve().parent.parent
SITES = ("Nairobi", "Mombasa", "Kisumu", "Nakuru", "Eldoret")
CATALOG = ev.load_catalog()
DATASETS = runner.load_datasets()
ALL = [c for convs in DATASETS.values() for c in convs]
BY_ID = {c["id"]: c for c in ALL}
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
    monkeypatch.setattr(runner, "_langsmith_settings", lambda: (None, None))
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
    assert len(BY_ID) == len(ALL), "conversation ids must be unique across datasets"


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
    questions = {q for c in ALL for q in c["expected"]["questions"]}
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
    evaluators = ev.make_langsmith_evaluators(CATALOG)
    keys: dict[str, Any] = {}
    for evaluator in evaluators:
        result = evaluator({}, _outputs(questions=["site"]), EXPECTED)
        for item in result.get("results", [result]):
            keys[item["key"]] = item["score"]
    assert set(keys) == set(ev.METRIC_KEYS)
    assert keys["unnecessary_questions"] == 1 and keys["missed_questions"] == 1 and keys["exact_match"] == 1


def test_evaluators_do_not_import_the_target() -> None:
    code = "import sys, evals.evaluators, evals.runner; assert 'evals.target' not in sys.modules"
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
        lines = [{**line, "description": line["sku"]} for line in expected["lines"]]
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

    assert sorted(target.calls) == sorted((c["id"], "fake-model") for c in ALL)
    assert list(summary["datasets"]) == ["clean", "messy", "corrections", "adversarial"]
    for name, convs in DATASETS.items():
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

    completed = sum(1 for c in ALL if c["expected"]["submitted"] and c["id"] != ERROR_ID)
    assert summary["overall"]["completed"] == completed
    assert summary["overall"]["llm_calls"] == 3 * (len(ALL) - 1)
    assert summary["overall"]["llm_calls_per_request"] == round(3 * (len(ALL) - 1) / completed, 2)
    assert summary["overall"]["tokens_per_request"] == round(1200 * (len(ALL) - 1) / completed, 1)

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
    rows = {line.split()[0]: line for line in table.splitlines()[2:] if line and not line.startswith("-")}
    for name in [*DATASETS, "all"]:
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
    assert list(recorded) == ["clean", "messy", "corrections", "adversarial"]
    assert all(entry["exact_match"] == 1.0 and entry["model"] == "none" for entry in recorded.values())
    assert runner.check_baseline(good, baseline) == []
    before = baseline.read_bytes()
    runner.write_baseline(good, baseline)
    assert baseline.read_bytes() == before, "re-recording the same numbers changes nothing"

    worse = runner.run_eval("messy", None, target=FakeTarget(), results_dir=tmp_path, out=io.StringIO())
    failures = runner.check_baseline(worse, baseline)
    assert len(failures) == 1 and failures[0].startswith("messy: exact request match")

    runner.write_baseline(worse, baseline)  # a partial update keeps the other datasets
    recorded = json.loads(baseline.read_text(encoding="utf-8"))["datasets"]
    assert recorded["messy"]["exact_match"] == worse["datasets"]["messy"]["exact_match"]
    assert recorded["clean"]["exact_match"] == 1.0
    assert runner.check_baseline(worse, baseline) == []


def test_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    target = FakeTarget(wrong=False)
    monkeypatch.setattr(runner, "_load_target", lambda: target)
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
