"""Chinese for Streamlit's own chrome (uploader, multiselect, hints, screen-reader labels).

Streamlit 1.67 has no localisation hook for its built-in widget texts: ``st.file_uploader``
takes no text parameters (streamlit/streamlit issue #13500, open; PR #10042 adding
``browseButtonText``/``dragAndDropText`` was closed unmerged). A CSS ``::after`` trick can swap
visible text but not the ``aria-label``/``title`` that screen readers and tooltips use, so a
small script rewrites both: exact texts from `TRANSLATIONS`, patterned texts
(``20MB per file``, ``Remove 调查表.xlsx``) from `PATTERNS`. It runs in the page (``st.html``
with JavaScript, not an iframe), installs one ``MutationObserver`` per page load and translates
whatever Streamlit renders afterwards; unknown texts are left as they are. The same script
keeps the map's view (``?view=``, written by the map) in the URLs Streamlit writes.

The texts were read from Streamlit 1.67's own front-end bundle (``FileUploader.*.js``...) and
its rendered page; a new Streamlit version may add texts: the browser test lists the visible
chrome and fails on any English word outside the allowed units and codes.
"""

from __future__ import annotations

import json

import streamlit as st

TRANSLATIONS: dict[str, str] = {
    # st.file_uploader
    "Upload": "选择文件",
    "Browse files": "选择文件",
    "Drag and drop file here": "拖放文件到此处",
    "Drag and drop files here": "拖放文件到此处",
    "Drag and drop a file here": "拖放文件到此处",
    "Drag and drop directories here": "拖放文件夹到此处",
    "Add files": "添加文件",
    "add icon": "添加",
    "file upload": "上传文件",
    # the select widgets (BaseWeb)
    "Clear all": "全部清除",
    "Clear": "清除",
    "Choose an option": "请选择",
    "Choose options": "请选择（可多选）",
    "No results": "无匹配项",
    "No options to select": "无可选项",
    "Select all": "全选",
    "open": "展开",
    "Open": "展开",
    "Selected values": "已选项",
    # st.text_input / st.number_input
    "Press Enter to apply": "按回车键确认",
    "Press Enter to submit form": "按回车键提交",
    "Increment": "增加",
    "Decrement": "减少",
    # st.dataframe toolbar
    "Download as CSV": "下载为 CSV",
    "Search": "搜索",
    "Fullscreen": "全屏",
    "Close fullscreen": "退出全屏",
    "Show/hide columns": "显示/隐藏列",
    # st.altair_chart (Vega) toolbar and chart description
    "Download as PNG": "下载为 PNG 图片",
    "Download as SVG": "下载为 SVG 图片",
    "Show data": "查看数据",
    "Copy Vega-Lite spec": "复制图表定义",
    "Vega visualization": "统计图",
    # page status and menus
    "Sidebar": "侧栏",
    "Collapse sidebar": "收起侧栏",
    "Expand sidebar": "展开侧栏",
    "Link to heading": "标题链接",
    "Running...": "运行中…",
    "Stop": "停止",
    "Rerun": "重新运行",
    "Main menu": "主菜单",
    "Skip to main content": "跳到主要内容",
    "Deploy": "部署",
    "Close": "关闭",
    "Copy to clipboard": "复制",
    "Show password text": "显示密码",
    "Hide password text": "隐藏密码",
}
"""Exact English texts of Streamlit's chrome → Chinese (text, aria-label, title, placeholder)."""

PATTERNS: tuple[tuple[str, str], ...] = (
    (r"^(\d+(?:\.\d+)?\s?[KMG]?B) per file(.*)$", "单个文件不超过 $1$2"),
    (r"^Help for (.+)$", "$1：说明"),
    # Vega's descriptions of chart parts (screen readers)
    (r"^([XY])-axis titled '([^']*)' for a \w+ scale with .*$", "$1 轴：$2"),
    (r"^([XY])-axis for a \w+ scale with \d+ values?: (.*)$", "$1 轴：$2"),
    (r"^\w+ legend titled '([^']*)' for \w+ color with \d+ values?: (.*)$", "图例：$2"),
    (r"^Remove (.+)$", "移除 $1"),
    (r"^Delete (.+)$", "删除 $1"),
    (r"^Download (.+)$", "下载 $1"),
)
"""Patterned texts: JavaScript regular expression → replacement (``$1`` = first group)."""

_SCRIPT = """<script>
(function () {
  if (window.__riskmapZhChrome) { return; }
  window.__riskmapZhChrome = true;
  var exact = %(exact)s;
  var patterns = %(patterns)s.map(function (p) { return [new RegExp(p[0]), p[1]]; });
  function zh(text) {
    var key = text.trim();
    if (!key) { return null; }
    if (Object.prototype.hasOwnProperty.call(exact, key)) {
      return text.replace(key, exact[key]);
    }
    for (var i = 0; i < patterns.length; i++) {
      var p = patterns[i];
      if (p[0].test(key)) { return text.replace(key, key.replace(p[0], p[1])); }
    }
    return null;
  }
  var ATTRS = ["aria-label", "title", "placeholder"];
  function fixElement(el) {
    for (var i = 0; i < ATTRS.length; i++) {
      var v = el.getAttribute && el.getAttribute(ATTRS[i]);
      if (v) { var t = zh(v); if (t !== null && t !== v) { el.setAttribute(ATTRS[i], t); } }
    }
  }
  function fix(root) {
    if (!root) { return; }
    if (root.nodeType === 3) {
      if (root.parentElement && root.parentElement.closest("[translate=no]")) { return; }
      var t = zh(root.nodeValue);
      if (t !== null && t !== root.nodeValue) { root.nodeValue = t; }
      return;
    }
    if (root.nodeType !== 1 || root.tagName === "SCRIPT" || root.tagName === "STYLE") { return; }
    fixElement(root);
    var walker = document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
    var node;
    while ((node = walker.nextNode())) {
      if (node.nodeType === 3) {
        // Material icon ligatures ("upload", "add") are text too: leave them alone
        if (node.parentElement && node.parentElement.closest("[translate=no]")) { continue; }
        var s = zh(node.nodeValue);
        if (s !== null && s !== node.nodeValue) { node.nodeValue = s; }
      } else { fixElement(node); }
    }
  }
  fix(document.body);
  // Streamlit rewrites the whole query string when the app mirrors its filters; keep the
  // map's view (set by the map script in window.riskmapView) in every URL it writes.
  ["replaceState", "pushState"].forEach(function (name) {
    var orig = window.history[name];
    window.history[name] = function (state, title, url) {
      var mv = window.riskmapView;
      if (mv && url !== undefined && url !== null) {
        try {
          var u = new URL(url, window.location.href);
          if (mv.text) { u.searchParams.set("view", mv.text); }
          else { u.searchParams.delete("view"); }
          url = u.pathname + u.search + u.hash;
        } catch (e) { /* leave the URL as given */ }
      }
      return orig.call(window.history, state, title, url);
    };
  });
  new MutationObserver(function (records) {
    for (var i = 0; i < records.length; i++) {
      var r = records[i];
      if (r.type === "childList") { r.addedNodes.forEach(fix); }
      else if (r.type === "characterData") { fix(r.target); }
      else if (r.type === "attributes") { fixElement(r.target); }
    }
  }).observe(document.body, {childList: true, subtree: true, characterData: true,
                             attributes: true, attributeFilter: ATTRS});
})();
</script>"""


def chrome_script() -> str:
    """
    Return the ``<script>`` that translates Streamlit's chrome into Chinese.

    Returns
    -------
    html
        One ``<script>`` element; idempotent in the page (a second copy does nothing).
    """
    return _SCRIPT % {
        "exact": json.dumps(TRANSLATIONS, ensure_ascii=False),
        "patterns": json.dumps([list(p) for p in PATTERNS], ensure_ascii=False),
    }


def install_chinese_chrome(page_css: str = "") -> None:
    """
    Put the page's CSS and `chrome_script` into the page (once per run, before the widgets).

    Parameters
    ----------
    page_css
        A ``<style>`` element of the page's own CSS, or ``""``.
    """
    if page_css:
        st.markdown(page_css, unsafe_allow_html=True)
    st.html(chrome_script(), unsafe_allow_javascript=True)
