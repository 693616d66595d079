"""The one rule for text in the app, checked on the source: every value goes through md/fmt.

Reads ``app.py``, ``riskmap/ui/*.py`` and the sign-in panel (`riskmap/auth.py`) and fails on
any Streamlit call that shows Markdown (messages and widget labels) with a value that is not
a literal, a module constant, ``md(...)``/``fmt(...)``, or a number with a numeric format.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from riskmap.ui.text import fmt, md

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "app.py", ROOT / "riskmap" / "auth.py", *(ROOT / "riskmap" / "ui").glob("*.py")]

MARKDOWN_CALLS = {
    # messages (the body is Markdown)
    "markdown", "caption", "info", "warning", "error", "success", "toast", "write", "title",
    "header", "subheader", "exception",
    # widget and container labels (Streamlit renders Markdown in labels)
    "button", "download_button", "form_submit_button", "checkbox", "toggle", "radio",
    "selectbox", "multiselect", "select_slider", "slider", "text_input", "text_area",
    "number_input", "date_input", "time_input", "file_uploader", "color_picker",
    "expander", "popover", "tabs", "metric", "link_button", "status", "spinner",
}  # fmt: skip
"""Streamlit calls whose first argument (or ``label``/``body``/``help``) is rendered."""
RENDERED_KEYWORDS = {"label", "body", "help", "placeholder"}
SAFE_CALLS = {"md", "_md", "fmt"}
REVIEWED = {
    ("riskmap/ui/chrome.py", "page_css"): "the app's own CSS constant, passed in (apppolish)",
}
"""Values reviewed by hand: (file, expression) -> why it is not data."""
NUMERIC_SPEC = re.compile(r"^[,_]?(\.\d+)?[dfgeEGn%]$|^,$|^\.\d+[fgeEG%]$")


def _is_safe(node: ast.AST) -> bool:
    """True when `node` can only produce literal text or escaped values."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str | int | float)
    if isinstance(node, ast.Name):
        return node.id.isupper()  # a module constant written in the code
    if isinstance(node, ast.Attribute):
        return node.attr.isupper()
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        return name in SAFE_CALLS
    if isinstance(node, ast.JoinedStr):
        return all(_is_safe(v) for v in node.values)
    if isinstance(node, ast.FormattedValue):
        if _is_safe(node.value) and not isinstance(node.value, ast.Name | ast.Attribute):
            return True
        spec = node.format_spec
        if isinstance(spec, ast.JoinedStr) and all(isinstance(v, ast.Constant) for v in spec.values):  # noqa: E501
            return bool(NUMERIC_SPEC.match("".join(str(v.value) for v in spec.values)))
        return False
    if isinstance(node, ast.IfExp):
        return _is_safe(node.body) and _is_safe(node.orelse)
    if isinstance(node, ast.BinOp):
        return _is_safe(node.left) and _is_safe(node.right)
    if isinstance(node, ast.List | ast.Tuple):
        return all(_is_safe(e) for e in node.elts)
    return False


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in MARKDOWN_CALLS:
            continue
        owner = node.func.value
        if node.func.attr == "header" and not (isinstance(owner, ast.Name) and owner.id in {"st", "sb", "box"}):  # noqa: E501
            continue  # LayerSpec.header(field) is not Streamlit's header
        args = node.args[:1] + [k.value for k in node.keywords if k.arg in RENDERED_KEYWORDS]
        rel = path.relative_to(ROOT).as_posix()
        found.extend(
            f"{rel}:{arg.lineno}: {ast.unparse(arg)[:90]}"
            for arg in args
            if not _is_safe(arg) and (rel, ast.unparse(arg)) not in REVIEWED
        )
    return found


def test_every_rendered_value_goes_through_md():
    found = [v for path in SOURCES for v in _violations(path)]
    assert found == [], "values shown as Markdown without md()/fmt():\n" + "\n".join(found)


def test_the_checker_catches_what_it_should():
    bad = [
        'st.error(f"失败：{exc}")', "st.warning(message)", 'st.info("x" + name)',
        "sb.checkbox(spec.name)", 'st.tabs(["a", spec.name])', 'st.caption(f"{x:>10}")',
        "st.metric(label=layer.name, value=3)", "st.markdown(rows.iloc[0].get('name'))",
    ]
    good = [
        'st.error(f"失败：{md(exc)}")', "st.warning(md(message))", 'st.info("x" + md(name))',
        "st.markdown(HELP)", 'st.caption(f"{n:d} 处，{mb:.1f} MB")', 'st.error(fmt("{}", x))',
        'st.tabs(["统计", "清单"])',
    ]
    for code in bad:
        call = ast.parse(code).body[0].value
        args = call.args[:1] + [k.value for k in call.keywords if k.arg in RENDERED_KEYWORDS]
        assert not all(_is_safe(a) for a in args), code
    for code in good:
        assert _is_safe(ast.parse(code).body[0].value.args[0]), code


PAYLOADS = [
    "![x](http://example.invalid/t.png)", "[点此](http://example.invalid)", "<img src=x>",
    ":red[红]", "$x^2$", "**粗**", "<a href='http://e'>a</a>", "`code`", "# 标题", "- 列表",
    "a\\", "1. 列表", "~~删~~", "&lt;img&gt;", "<http://example.invalid>",
]


@given(st.text() | st.sampled_from(PAYLOADS))
def test_md_and_fmt_escape_every_markup_character(payload):
    """Each ASCII punctuation mark comes out backslash-escaped; no line breaks remain."""
    for text in (md(payload), fmt("值：{}", payload), fmt("**{v}**", v=payload)):
        body = text.removeprefix("值：").removeprefix("**").removesuffix("**")
        bare = re.sub(r"\\[!-/:-@\[-`{-~]", "", body)  # drop the escaped pairs
        assert not re.search(r"[!-/:-@\[-`{-~]", bare), (payload, text)
        assert "\n" not in text
        assert "\r" not in text


def test_bare_urls_and_emails_cannot_autolink():
    """GFM links bare URLs and e-mails after escapes are resolved: a word joiner breaks them."""
    wj = "\u2060"
    out = md("see http://example.invalid/a, HTTPS://x.cn, www.example.invalid and a@b.cn")
    assert f"http\\:{wj}\\/\\/" in out
    assert f"HTTPS\\:{wj}\\/\\/" in out
    assert f"www{wj}\\." in out
    assert f"a\\@{wj}b" in out
    assert out.replace(wj, "").replace("\\", "") == (
        "see http://example.invalid/a, HTTPS://x.cn, www.example.invalid and a@b.cn"
    )
