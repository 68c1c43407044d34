"""Every sentence the nodes send lives in prompts/replies.toml: no reply text written in code, no unknown key."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from nodes import intake
from prompts import PROMPTS_DIR

NODES = Path(intake.__file__).parent
#: Calls whose arguments after the first (the chat or the State) are text a person reads.
REPLY_CALLS = {"add_note", "text_msg", "buttons_msg", "list_msg"}
#: Calls whose string argument is a template key, not text.
KEY_CALLS = {"t", "button_title"}
LETTERS = re.compile(r"[^\W\d_]")


def _name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _literals(node: ast.AST) -> list[str]:
    """String literals with letters in ``node``, skipping template keys (``t("key")``) and ids in button pairs."""
    found: list[str] = []
    if isinstance(node, ast.Call) and _name(node) in KEY_CALLS:
        return [s for a in node.args[1:] for s in _literals(a)] + [s for k in node.keywords for s in _literals(k.value)]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return _literals(node.func.value)  # d.get("key"): a key, not text
    if isinstance(node, ast.Subscript):
        return _literals(node.value)  # d["key"]
    if isinstance(node, ast.Tuple) and node.elts and isinstance(node.elts[0], (ast.Constant, ast.JoinedStr)):
        # A (button id, title) / (row id, title, description) pair: the id is ours, not text.
        return [s for e in node.elts[1:] for s in _literals(e)]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value] if LETTERS.search(node.value) else []
    if isinstance(node, ast.JoinedStr):
        text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        found += [text] if LETTERS.search(text) else []
        return found + [s for v in node.values if isinstance(v, ast.FormattedValue) for s in _literals(v.value)]
    for child in ast.iter_child_nodes(node):
        found += _literals(child)
    return found


def reply_literals(source: str) -> list[str]:
    """Text written in code that reaches a person: literals in reply arguments and in ``"notes"`` entries."""
    out: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _name(node) in REPLY_CALLS:
            for arg in node.args[1:]:
                out += _literals(arg)
            for kw in node.keywords:
                out += _literals(kw.value)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "notes":
                    out += _literals(value)
    return out


def template_keys(source: str) -> tuple[set[str], set[str]]:
    """The literal keys passed to ``t(...)`` and to ``button_title(...)``."""
    text, buttons = set(), set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _name(node) in KEY_CALLS and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                (text if _name(node) == "t" else buttons).add(first.value)
    return text, buttons


def test_the_scanner_finds_reply_text_written_in_code() -> None:
    source = """
def node(state, to, req):
    a = add_note(state, "OK, tell me what to change.")
    b = buttons_msg(to, f"Approve {req.number}?", [("approve:1:1", button_title("approve"))])
    c = add_note(state, t("help") + " or send *cancel*")
    d = {"notes": [f"Hello {req.name}"], "outbound": []}
    e = text_msg(to, "\\n\\n".join(notes) + state["draft"].get("site"))
    f = add_note(state, t("not_found", number=req.number))
    g = list_msg(to, t("x"), button_title("pick_list"), [(f"pick:{i}:{s}", s, t("pick_row", name=s))])
"""
    assert reply_literals(source) == ["OK, tell me what to change.", "Approve ?", " or send *cancel*", "Hello "]
    assert template_keys(source) == ({"help", "not_found", "x", "pick_row"}, {"approve", "pick_list"})


@pytest.mark.parametrize("path", sorted(NODES.glob("*.py")), ids=lambda p: p.name)
def test_no_reply_text_in_node_code(path: Path) -> None:
    assert reply_literals(path.read_text(encoding="utf-8")) == []


def test_every_template_a_node_names_exists() -> None:
    with open(PROMPTS_DIR / "replies.toml", "rb") as fh:
        replies = tomllib.load(fh)
    for path in sorted(NODES.glob("*.py")):
        text, buttons = template_keys(path.read_text(encoding="utf-8"))
        assert text <= set(replies["text"]), (path.name, text - set(replies["text"]))
        assert buttons <= set(replies["buttons"]), (path.name, buttons - set(replies["buttons"]))
    # Keys built at run time: one media name per inbound kind with a name of its own, and a fallback.
    media = {f"media_{kind}" for kind in intake._MEDIA_NAMED} | {"media_other"}
    assert media <= set(replies["text"])
