"""The one rule for text in the app: every value reaches the page as literal text.

Values are what comes from the URL, a file, the data or a user.

Streamlit renders Markdown in every message (``st.error``, ``st.info``, ``st.caption``…)
and in widget labels (checkbox, expander, tab, metric…): a value such as
``![x](http://host/t.png)`` would show an image fetched from outside the intranet, and
``[点此](http://…)``, ``:red[…]``, ``$…$`` or HTML would become a link, a colour, LaTeX or
markup. So:

* a message or label is a **literal** written in the code (it may use Markdown), and
* every **value** put into it goes through `md` (or the whole message is built with `fmt`);
  numbers may instead carry a numeric format (``{n:d}``, ``{mb:.1f}``).

``tests/test_security_text.py`` reads ``app.py`` and ``riskmap/ui/*.py`` and fails on any
Streamlit message or label that breaks this rule; the browser test drives the payloads.
"""

from __future__ import annotations

import re
import string

_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation mark
WORD_JOINER = "\u2060"
"""Invisible, zero-width character that breaks GFM's bare-URL and e-mail autolinks."""
_AUTOLINK = re.compile(r"(?i)(https?:|www)(?=//|\.)|(@)")


def md(value: object) -> str:
    """
    Text from data or users made literal for Streamlit's Markdown (st.markdown/info/error…).

    Every ASCII punctuation mark is backslash-escaped (CommonMark allows it), so a name, a
    file name or a search text can never become a link, an image (a request off the
    intranet), HTML, LaTeX, an emoji code or a colour directive; line breaks become spaces.
    GitHub-flavoured Markdown (which Streamlit uses) also turns bare ``http://…``,
    ``www.…`` and ``a@b.cn`` into links *after* escapes are resolved, so a `WORD_JOINER`
    (U+2060, invisible) is put after ``http:``/``https:``/``www`` and after ``@``: the text
    looks the same and is no link.

    Parameters
    ----------
    value
        Anything; ``str(value)`` is escaped.

    Returns
    -------
    text
        Markdown that shows exactly ``str(value)`` (line breaks as spaces).
    """
    text = _AUTOLINK.sub(lambda m: (m.group(1) or m.group(2)) + WORD_JOINER, str(value))
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


class _Escaping(string.Formatter):
    def format_field(self, value: object, format_spec: str) -> str:
        return md(format(value, format_spec))


_FORMATTER = _Escaping()


def fmt(template: str, /, *args: object, **kwargs: object) -> str:
    r"""
    Fill a message template written in the code, escaping every value with `md`.

    Parameters
    ----------
    template
        A literal ``str.format`` template; may hold Markdown (``**粗**``), which stays.
    *args, **kwargs
        Values; each is formatted with its field's spec, then escaped.

    Returns
    -------
    text
        The message, safe for any Streamlit Markdown call.

    Examples
    --------
    ``fmt("已选点位 **{}**", "[x](http://e)")`` gives ``已选点位 **\[x\]\(http\://e\)**``:
    the bold stays, the link is text.
    """
    return _FORMATTER.format(template, *args, **kwargs)
