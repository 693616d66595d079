"""Text helpers shared by the Streamlit views."""

from __future__ import annotations

import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^&\"'])")


def md(value: object) -> str:
    """
    Text from data or users made literal for Streamlit's Markdown (st.markdown/info/error…).

    Every ASCII punctuation mark is backslash-escaped (CommonMark allows it), so a name, a
    file name or a search text can never become a link, an image (a request off the
    intranet), HTML, LaTeX, an emoji code or a colour directive; line breaks become spaces.
    """
    return _MD_SPECIAL.sub(r"\\\1", str(value)).replace("\r", " ").replace("\n", " ")
