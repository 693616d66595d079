"""Who may change data: local editor list (salted scrypt hashes) or the county's OIDC sign-in.

Viewing needs no sign-in. Changing data (import, commit, undo, status changes) needs an
*editor*. Two sources, both read from Streamlit's ``.streamlit/secrets.toml`` (never in the
repository; ``riskmap editor add`` writes it with mode 0600):

* **OIDC** (the county has an identity provider): Streamlit's built-in ``st.login`` with an
  ``[auth]`` section (``redirect_uri``, ``cookie_secret`` and ``client_id``,
  ``client_secret``, ``server_metadata_url``, at the top of ``[auth]`` or in an
  ``[auth.<provider>]`` table). An optional ``[auth] editors = ["a@x.gov.cn", …]`` limits
  editing to those e-mail addresses; without it every user the county's provider signs in
  may edit. Needs ``Authlib`` (``pip install riskmap[auth]``).
* **Local editor list** (no identity provider): ``[editors]`` with
  ``username = "scrypt$<n>$<r>$<p>$<salt_b64>$<hash_b64>"``. Anything not in that form is
  refused at start-up (`AuthConfigError`), never compared as plain text.

Why scrypt: it is in the standard library (``hashlib.scrypt``, OpenSSL), so the air-gapped
county server needs no compiled extra package, and it is salted and memory-hard (OWASP
Password Storage Cheat Sheet lists scrypt with N=2^17, r=8, p=1 as an accepted choice;
Argon2id is preferred there but needs ``argon2-cffi``, a C extension). One check costs
~128 MiB and a fraction of a second, which is fine for a handful of county editors.

Everything here is pure and testable without a browser, except `sign_in_panel`, which
imports Streamlit when called.

Size (over ~800 lines): three concerns that must agree on one session object — the editor
sources (scrypt list, OIDC), the sign-in limits shared across processes, and the server-side
role guard (`require_editor`, `guarded_store`) — plus the Streamlit sign-in panel. The panel
is the part to move to ``riskmap/ui/`` next.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import ipaddress
import re
import secrets as _secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from riskmap.errors import RiskmapError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, MutableMapping
    from pathlib import Path

    from riskmap.settings import Settings

SCHEME = "scrypt"
"""First field of a stored hash."""
SCRYPT_N = 2**17
"""Default CPU/memory cost (OWASP minimum for scrypt)."""
SCRYPT_R = 8
"""Default block size."""
SCRYPT_P = 1
"""Default parallelism."""
SALT_BYTES = 16
"""Random salt length."""
HASH_BYTES = 32
"""Derived key length."""
MAX_N = 2**20
"""Largest cost accepted from a stored hash (a crafted value must not exhaust memory)."""
MAX_R = 32
"""Largest block size accepted from a stored hash."""
MAX_P = 16
"""Largest parallelism accepted from a stored hash."""
MIN_PASSWORD_CHARS = 10
"""Shortest password `hash_password` accepts."""
MAX_PASSWORD_CHARS = 1024
"""Longest password checked (longer input is refused before any hashing)."""
USERNAME_RE = re.compile(r"^[\w.@\-]{1,64}$")
"""Editor names: letters (Chinese allowed), digits, ``_ . @ -``; 1-64 characters."""

SESSION_EDITOR = "riskmap_editor"
"""Session-state key holding the signed-in local editor's name (never a widget key)."""
STATE_DIR = ".state"
"""Folder (inside the layers directory) of small shared state files, e.g. sign-in counters."""
SIGNIN_STATE = "signin.json"
"""File of the sign-in counters shared by every session and app process (`SignInGuard`)."""
USER_LOCK_AFTER = 5
"""Failed sign-ins for one user name after which that name is paused."""
ADDRESS_LOCK_AFTER = 20
"""Failed sign-ins from one client address after which that address is paused (higher than
`USER_LOCK_AFTER`: several staff may share one address behind the county's NAT or proxy)."""
LOCK_BASE_S = 60.0
"""First pause, seconds; each further failure doubles it (back-off)."""
LOCK_MAX_S = 900.0
"""Longest pause, seconds (15 min): a pause always ends."""
FAILURE_WINDOW_S = 900.0
"""Failures are forgotten after this many seconds without a failure or a pause."""
KNOWN_ADDRESS_S = 30 * 86400.0
"""An address an editor signed in from within this time is exempt from that name's pause."""
MAX_STATE_KEYS = 10_000
"""Most counters kept (the oldest are dropped), so guessed names cannot grow the file."""

_HASH_RE = re.compile(
    r"^scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9+/=]{4,})\$([A-Za-z0-9+/=]{4,})$"
)
_OIDC_PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")


class AuthConfigError(RiskmapError, ValueError):
    """The editor list or the ``[auth]`` section of the secrets is malformed."""


# --- hashing ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=129 * r * n + 2**20, dklen=dklen
    )


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """
    Hash a password with scrypt and a fresh random salt.

    Parameters
    ----------
    password
        At least `MIN_PASSWORD_CHARS` characters.
    n, r, p
        scrypt cost parameters (``n`` a power of two); the defaults follow OWASP.

    Returns
    -------
    stored
        ``"scrypt$<n>$<r>$<p>$<salt_b64>$<hash_b64>"``, to put under ``[editors]``.

    Raises
    ------
    AuthConfigError
        When the password is too short or too long, or a parameter is out of range.
    """
    if len(password) < MIN_PASSWORD_CHARS:
        msg = f"密码至少 {MIN_PASSWORD_CHARS} 个字符 (password too short)"
        raise AuthConfigError(msg)
    if len(password) > MAX_PASSWORD_CHARS:
        msg = f"密码最多 {MAX_PASSWORD_CHARS} 个字符 (password too long)"
        raise AuthConfigError(msg)
    _check_params(n, r, p)
    salt = _secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, n, r, p, HASH_BYTES)
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def _check_params(n: int, r: int, p: int, label: str = "") -> None:
    if n < 2 or n > MAX_N or n & (n - 1) or not 1 <= r <= MAX_R or not 1 <= p <= MAX_P:  # noqa: PLR2004
        msg = (
            f"{label}scrypt 参数超出范围 (n={n}, r={r}, p={p}; n 为 2 的幂且 ≤ {MAX_N}, "
            f"r ≤ {MAX_R}, p ≤ {MAX_P})"
        )
        raise AuthConfigError(msg)


@dataclass(frozen=True)
class StoredHash:
    """A parsed ``scrypt$…`` entry."""

    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def parse_hash(stored: str, *, who: str = "") -> StoredHash:
    """
    Parse a stored ``scrypt$<n>$<r>$<p>$<salt_b64>$<hash_b64>`` value.

    Parameters
    ----------
    stored
        The value from the secrets file.
    who
        Editor name, for the message.

    Returns
    -------
    parsed
        The parameters, salt and digest.

    Raises
    ------
    AuthConfigError
        When `stored` is not in that form (e.g. a plain-text password) or its parameters
        are out of range. The message never repeats the value.
    """
    label = f"编辑者 {who!r} 的" if who else ""
    match = _HASH_RE.match(stored) if isinstance(stored, str) else None
    if match is None:
        msg = (
            f"{label}密码条目不是 scrypt 哈希（不接受明文密码）；"
            "请用 `riskmap editor add 用户名` 设置 (not a scrypt hash; plain text refused)"
        )
        raise AuthConfigError(msg)
    n, r, p = (int(g) for g in match.groups()[:3])
    _check_params(n, r, p, label)
    try:
        salt = base64.b64decode(match.group(4), validate=True)
        digest = base64.b64decode(match.group(5), validate=True)
    except (binascii.Error, ValueError):
        msg = f"{label}密码哈希的 base64 部分无效 (bad base64 in hash)"
        raise AuthConfigError(msg) from None
    if len(salt) < 8 or len(digest) < 16:  # noqa: PLR2004
        msg = f"{label}密码哈希的盐或摘要过短 (salt/hash too short)"
        raise AuthConfigError(msg)
    return StoredHash(n, r, p, salt, digest)


def verify_password(password: str, stored: str) -> bool:
    """
    Check a password against a stored scrypt hash in constant time.

    Parameters
    ----------
    password
        What the user typed.
    stored
        ``scrypt$…`` value.

    Returns
    -------
    ok
        True when the password matches.

    Raises
    ------
    AuthConfigError
        When `stored` is not a scrypt hash: a plain-text value is never compared.
    """
    parsed = parse_hash(stored)
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS:
        return False
    digest = _scrypt(password, parsed.salt, parsed.n, parsed.r, parsed.p, len(parsed.digest))
    return hmac.compare_digest(digest, parsed.digest)


def check_username(name: str) -> str:
    """
    Return `name` stripped when it is a valid editor name.

    Raises
    ------
    AuthConfigError
        When it is empty, longer than 64 characters or holds other than letters, digits,
        ``_ . @ -``.
    """
    text = str(name).strip()
    if not USERNAME_RE.match(text):
        msg = f"用户名 {text!r} 无效：只能用字母（含汉字）、数字和 _ . @ -，1-64 个字符"
        raise AuthConfigError(msg)
    return text


# --- the secrets --------------------------------------------------------------------------


def editors_from_secrets(secrets: Mapping[str, Any]) -> dict[str, str]:
    """
    Read and check the local editor list (``[editors]``) of the secrets.

    Parameters
    ----------
    secrets
        The parsed ``secrets.toml`` (``st.secrets`` or a dict).

    Returns
    -------
    editors
        ``{username: stored hash}``; empty when there is no ``[editors]`` table.

    Raises
    ------
    AuthConfigError
        When ``editors`` is not a table, a name is invalid or a value is not a scrypt hash
        (plain-text passwords are refused; the message names the editor, never the value).
    """
    raw = secrets.get("editors")
    if raw is None:
        return {}
    if not hasattr(raw, "items"):
        msg = "secrets.toml 中 editors 应为表 [editors]（用户名 = 哈希）"
        raise AuthConfigError(msg)
    out: dict[str, str] = {}
    for name, value in raw.items():
        user = check_username(str(name))
        parse_hash(value, who=user)
        out[user] = value
    return out


def _auth_section(secrets: Mapping[str, Any]) -> Mapping[str, Any]:
    section = secrets.get("auth")
    return section if hasattr(section, "get") else {}


def oidc_configured(secrets: Mapping[str, Any]) -> bool:
    """
    Return True when the secrets configure Streamlit's OIDC sign-in (``st.login``).

    Requires ``[auth]`` with ``redirect_uri`` and ``cookie_secret``, and ``client_id``,
    ``client_secret``, ``server_metadata_url`` either in ``[auth]`` itself (the default
    provider) or in one ``[auth.<provider>]`` table (see `oidc_provider`).
    """
    return oidc_provider(secrets) is not None


def oidc_provider(secrets: Mapping[str, Any]) -> str | None:
    """
    Return the provider name to pass to ``st.login``, or None when OIDC is not configured.

    Returns
    -------
    provider
        ``"default"`` for credentials at the top of ``[auth]`` (``st.login()``), else the
        name of the first ``[auth.<provider>]`` table with all three keys.
    """
    auth = _auth_section(secrets)
    if not all(auth.get(k) for k in ("redirect_uri", "cookie_secret")):
        return None
    if all(auth.get(k) for k in _OIDC_PROVIDER_KEYS):
        return "default"
    for name, table in auth.items():
        if hasattr(table, "get") and all(table.get(k) for k in _OIDC_PROVIDER_KEYS):
            return str(name)
    return None


def oidc_editor_allowed(email: str | None, secrets: Mapping[str, Any]) -> bool:
    """
    Return True when a signed-in OIDC user may edit.

    Without ``[auth] editors`` every signed-in user may (the county's provider vouches for
    them); with it, only the listed e-mail addresses (case-insensitive).

    Raises
    ------
    AuthConfigError
        When ``[auth] editors`` is not a list of text.
    """
    if not email:
        return False
    allowed = _auth_section(secrets).get("editors")
    if allowed is None:
        return True
    if isinstance(allowed, str) or not all(isinstance(a, str) for a in allowed):
        msg = 'secrets.toml 中 [auth] editors 应为电子邮件地址列表，如 editors = ["a@x.gov.cn"]'
        raise AuthConfigError(msg)
    return email.strip().casefold() in {a.strip().casefold() for a in allowed}


# --- sign-in lockout shared by every session and process ---------------------------------------


def user_key(username: str) -> str:
    """Counter key of a typed user name: a hash, so a password typed as a name is not kept."""
    name = str(username).strip().casefold()
    return "user:" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]


def address_key(address: str | None) -> str:
    """
    Counter key of a client address.

    ``None`` (Streamlit's ``st.context.ip_address`` for a browser on the server itself) is
    ``"ip:local"``; an IPv6 address counts by its /64 network (one host usually holds a whole
    /64, RFC 6177); anything unparsable is kept as text, cut to 64 characters.
    """
    if not address:
        return "ip:local"
    text = str(address).strip()[:64]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return f"ip:{text}"
    if ip.version == 6 and ip.ipv4_mapped is None:  # noqa: PLR2004
        return f"ip:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"ip:{ip.ipv4_mapped or ip}" if ip.version == 6 else f"ip:{ip}"  # noqa: PLR2004


def _wait_text(seconds: float) -> str:
    seconds = max(1, round(seconds))
    return f"{seconds} 秒" if seconds < 60 else f"{-(-seconds // 60)} 分钟"  # noqa: PLR2004


@dataclass(frozen=True)
class SignInGuard:
    """
    Sign-in counters by user name and by client address, shared by every session and process.

    The counters live in one small JSON file (``layers/.state/signin.json``, mode 0600),
    changed under a file lock and written atomically (`riskmap.io.update_json_state`), so
    every browser tab, session and app process on the server sees the same counts; a new
    session does not start again at zero.

    Rule (OWASP Authentication Cheat Sheet, "Account lockout": lock by account with a
    back-off, never for ever):

    * each attempt is counted *before* the password is checked (so parallel guesses are
      counted too) and taken back on success;
    * `USER_LOCK_AFTER` failures for a user name, or `ADDRESS_LOCK_AFTER` from one address,
      pause that name or address for `LOCK_BASE_S` seconds, doubling with each further
      failure up to `LOCK_MAX_S`; while paused, an attempt is refused *without* running
      scrypt (no CPU lever) and is not counted;
    * counts are forgotten `FAILURE_WINDOW_S` seconds after the last failure or pause;
    * a name's pause does not apply to an address the editor signed in from within
      `KNOWN_ADDRESS_S` (someone guessing the name elsewhere cannot keep its owner out);
      the address pause still does;
    * `unlock` clears a name (``riskmap editor unlock``).

    Attributes
    ----------
    path
        The state file.
    clock
        Seconds since the epoch (tests pass a fake clock).
    """

    path: Path
    clock: Callable[[], float] = field(default=time.time)

    @classmethod
    def for_settings(cls, settings: Settings) -> SignInGuard:
        """Return the guard of an installation: ``<layers_dir>/.state/signin.json``."""
        return cls(settings.layers_dir / STATE_DIR / SIGNIN_STATE)

    def _update(self, change: Callable[[dict[str, Any], float], Any]) -> Any:  # noqa: ANN401
        from riskmap import io  # noqa: PLC0415 - io imports geopandas; auth stays light

        now = self.clock()

        def wrapped(state: dict[str, Any]) -> Any:  # noqa: ANN401
            _prune(state, now)
            return change(state, now)

        return io.update_json_state(self.path, wrapped)

    def begin(self, username: str, address: str | None) -> str | None:
        """
        Count a sign-in attempt, or refuse it while the name or the address is paused.

        Call before checking the password; call `succeeded` when it matched.

        Parameters
        ----------
        username
            The name as typed (kept only as a hash).
        address
            Client address (``st.context.ip_address``), None on the server itself.

        Returns
        -------
        refusal
            None when the attempt may go on, else a Chinese message saying how long to wait
            (no password check must follow).

        Raises
        ------
        OSError
            When the state file cannot be written (read-only data folder); `LockError` when
            another process holds it too long.
        """
        ukey, akey = user_key(username), address_key(address)

        def change(state: dict[str, Any], now: float) -> str | None:
            keys = state.setdefault("keys", {})
            known = state.setdefault("known", {}).get(ukey, {})
            waits = [keys.get(akey, {}).get("until", 0) - now]
            if akey not in known:
                waits.append(keys.get(ukey, {}).get("until", 0) - now)
            if max(waits) > 0:
                return (
                    "登录失败次数过多，已暂停该用户名或本机的登录，"
                    f"请 {_wait_text(max(waits))}后再试"
                )
            _count_failure(keys.setdefault(ukey, {}), USER_LOCK_AFTER, now)
            _count_failure(keys.setdefault(akey, {}), ADDRESS_LOCK_AFTER, now)
            return None

        return self._update(change)

    def succeeded(self, username: str, address: str | None) -> None:
        """Take back the attempt counted by `begin`: clear the name, remember the address."""
        ukey, akey = user_key(username), address_key(address)

        def change(state: dict[str, Any], now: float) -> None:
            keys = state.setdefault("keys", {})
            keys.pop(ukey, None)
            entry = keys.get(akey)
            if entry is not None:
                entry["failures"] = max(0, int(entry.get("failures", 0)) - 1)
                if entry["failures"] < ADDRESS_LOCK_AFTER:
                    entry["until"] = 0
            known = state.setdefault("known", {}).setdefault(ukey, {})
            known[akey] = now
            for old in sorted(known, key=known.get)[:-20]:  # at most 20 addresses a name
                del known[old]

        self._update(change)

    def unlock(self, username: str) -> bool:
        """Clear a user name's counters; return True when it had any."""
        ukey = user_key(username)
        return bool(self._update(lambda state, _now: state.setdefault("keys", {}).pop(ukey, None)))

    def wait_s(self, username: str, address: str | None) -> float:
        """Seconds until this name and address may try again (0 = now); changes nothing else."""
        ukey, akey = user_key(username), address_key(address)

        def change(state: dict[str, Any], now: float) -> float:
            keys, known = state.get("keys", {}), state.get("known", {}).get(ukey, {})
            until = [keys.get(akey, {}).get("until", 0)]
            if akey not in known:
                until.append(keys.get(ukey, {}).get("until", 0))
            return max(0.0, max(until) - now)

        return self._update(change)


def _count_failure(entry: dict[str, Any], threshold: int, now: float) -> None:
    entry["failures"] = int(entry.get("failures", 0)) + 1
    entry["last"] = now
    over = entry["failures"] - threshold
    if over >= 0:
        entry["until"] = now + min(LOCK_BASE_S * 2.0 ** min(over, 30), LOCK_MAX_S)


def _prune(state: dict[str, Any], now: float) -> None:
    """Drop forgotten counters and known addresses; keep at most `MAX_STATE_KEYS` counters."""
    keys = state.get("keys")
    if not isinstance(keys, dict):
        keys = state["keys"] = {}
    for key, entry in list(keys.items()):
        if not isinstance(entry, dict):
            del keys[key]
            continue
        last = max(float(entry.get("last", 0) or 0), float(entry.get("until", 0) or 0))
        if now - last > FAILURE_WINDOW_S:
            del keys[key]
    if len(keys) > MAX_STATE_KEYS:
        for key in sorted(keys, key=lambda k: keys[k].get("last", 0))[: len(keys) - MAX_STATE_KEYS]:
            del keys[key]
    known = state.get("known")
    if not isinstance(known, dict):
        known = state["known"] = {}
    for ukey, addresses in list(known.items()):
        if isinstance(addresses, dict):
            for akey, when in list(addresses.items()):
                if not isinstance(when, (int, float)) or now - when > KNOWN_ADDRESS_S:
                    del addresses[akey]
        if not isinstance(addresses, dict) or not addresses:
            del known[ukey]


# --- the session ----------------------------------------------------------------------------


_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    global _DUMMY_HASH  # noqa: PLW0603 - computed once, lazily (costs one scrypt)
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(_secrets.token_urlsafe(16))
    return _DUMMY_HASH


def check_login(editors: Mapping[str, str], username: str, password: str) -> str | None:
    """
    Return the editor's name when `username`/`password` match the local list, else None.

    An unknown name costs one scrypt too, so timing does not reveal which names exist.
    """
    name = str(username).strip()
    stored = editors.get(name)
    if stored is None:
        verify_password(password, _dummy_hash())
        return None
    return name if verify_password(password, stored) else None


@dataclass(frozen=True)
class EditorSession:
    """
    Who is using the app, as far as editing goes.

    Attributes
    ----------
    editor
        The editor's name (local user name or OIDC e-mail), or None for a viewer.
    mode
        ``"oidc"``, ``"local"`` or ``"none"`` (no editors configured: nobody can edit).
    """

    editor: str | None
    mode: str

    @property
    def can_edit(self) -> bool:
        """True when the user may import, commit, undo or change statuses."""
        return self.editor is not None


def auth_mode(secrets: Mapping[str, Any]) -> str:
    """Return ``"oidc"`` (OIDC configured), ``"local"`` (editors listed) or ``"none"``."""
    if oidc_configured(secrets):
        return "oidc"
    if editors_from_secrets(secrets):
        return "local"
    return "none"


def current_editor(
    secrets: Mapping[str, Any],
    session: Mapping[str, Any],
    user_info: Mapping[str, Any] | None = None,
) -> EditorSession:
    """
    Decide whether this session may edit.

    Parameters
    ----------
    secrets
        ``st.secrets`` (or a dict).
    session
        ``st.session_state``: a local editor's name is under `SESSION_EDITOR`, set only by
        `local_sign_in` (never by a widget or a URL parameter).
    user_info
        ``st.user`` (OIDC): ``is_logged_in`` and ``email``.

    Returns
    -------
    session
        `EditorSession`; ``editor`` is None for a viewer. A local editor removed from the
        secrets loses editing on the next rerun.

    Raises
    ------
    AuthConfigError
        When the editor list or ``[auth] editors`` is malformed.
    """
    mode = auth_mode(secrets)
    if mode == "oidc":
        info = user_info or {}
        email = info.get("email") if info.get("is_logged_in") else None
        ok = oidc_editor_allowed(email, secrets)
        return EditorSession(str(email) if ok else None, mode)
    if mode == "local":
        name = session.get(SESSION_EDITOR)
        editors = editors_from_secrets(secrets)
        return EditorSession(name if isinstance(name, str) and name in editors else None, mode)
    return EditorSession(None, mode)


def local_sign_in(
    secrets: Mapping[str, Any],
    session: MutableMapping[str, Any],
    username: str,
    password: str,
    *,
    guard: SignInGuard,
    address: str | None = None,
) -> str | None:
    """
    Check a local sign-in and record it in `session`.

    Parameters
    ----------
    secrets, session
        ``st.secrets`` and ``st.session_state``.
    username, password
        What was typed.
    guard
        The installation's shared counters (`SignInGuard.for_settings`): the attempt is
        counted by user name and by `address` before the password is checked; a paused
        name or address is refused without running scrypt.
    address
        Client address (``st.context.ip_address``; None on the server itself).

    Returns
    -------
    error
        None on success (``session[SESSION_EDITOR]`` = the name), else a Chinese message:
        wrong name or password, paused (how long to wait), or the counters cannot be
        recorded (read-only data folder: sign-in refused, since it could not be limited).
    """
    from riskmap.errors import LockError  # noqa: PLC0415

    editors = editors_from_secrets(secrets)
    session.pop(SESSION_EDITOR, None)
    try:
        refusal = guard.begin(username, address)
    except (OSError, LockError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return f"无法记录登录尝试（{guard.path}：{detail}），暂不能登录；请管理员检查数据目录权限"
    if refusal is not None:
        return refusal
    name = check_login(editors, username, password)
    if name is None:
        return "用户名或密码错误"
    with contextlib.suppress(OSError, LockError):
        guard.succeeded(username, address)  # if not recorded: counted as a failure, no more
    session[SESSION_EDITOR] = name
    return None


def sign_out(session: MutableMapping[str, Any]) -> None:
    """Forget the local editor of this session."""
    session.pop(SESSION_EDITOR, None)



# --- the one server-side role check -------------------------------------------------------------

EDIT_ACTIONS = {
    "import": "导入调查表",
    "create": "导入调查表",
    "undo": "撤销修改",
    "status": "变更状态",
    "evidence": "上传证明材料",
    "warning": "发布或修改预警",
    "records": "修改记录",
    "pdf": "生成纸质材料",
    "database": "写入数据库",
    "write": "修改数据",
}
"""Editing actions the guard knows, with their Chinese names (for the refusal message)."""


class EditPermissionError(RiskmapError, PermissionError):
    """The session may not change data (a viewer, or an editor no longer in the list)."""


def require_editor(who: EditorSession | None, action: str) -> str:
    """
    Return the editor's name, or refuse: the one role check every editing path calls.

    Called by the library's write paths (`guarded_store`, status changes, evidence,
    warnings, PDF generation from user text, database writes) on the server, so a widget
    shown by mistake, a stale widget event or a forged session value cannot change data:
    hiding the controls from viewers is not the only guard.

    Parameters
    ----------
    who
        The session from `current_editor`/`sign_in_panel` (None = nobody signed in).
    action
        Key of `EDIT_ACTIONS` (an unknown key is named as 修改数据).

    Returns
    -------
    editor
        The editor's name, to record in the audit entry.

    Raises
    ------
    EditPermissionError
        When `who` is not an `EditorSession` that may edit; the Chinese message names the
        action.
    """
    if not isinstance(who, EditorSession) or not who.can_edit or not isinstance(who.editor, str):
        label = EDIT_ACTIONS.get(action, "修改数据")
        msg = f"只有登录的编辑者可以{label}（当前为查看模式）"
        raise EditPermissionError(msg)
    return who.editor


class GuardedStore:
    """
    A `riskmap.store.Store` whose every write first passes `require_editor`.

    Reads go straight to the wrapped store. Writes (`write_layer`, `undo`,
    `write_records`, `undo_records`, `write_attachment`) are refused for a viewer before
    anything is touched, and the audit entry's ``user`` is always the signed-in editor
    (a caller cannot record someone else). The app opens its store through this.

    Parameters
    ----------
    store
        The store (`riskmap.store.open_store`).
    who
        The session.
    """

    def __init__(self, store: Any, who: EditorSession | None) -> None:  # noqa: ANN401
        self._store = store
        self._who = who

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - read methods pass through
        """Pass every other attribute (the read methods) to the wrapped store."""
        return getattr(self._store, name)

    def write_layer(self, gdf: Any, spec: Any, *, action: str, **kwargs: Any) -> str:  # noqa: ANN401
        """`Store.write_layer` for an editor only (`require_editor` with `action`)."""
        kwargs["user"] = require_editor(self._who, action)
        return self._store.write_layer(gdf, spec, action=action, **kwargs)

    def undo(self, spec: Any, **_: Any) -> str:  # noqa: ANN401
        """`Store.undo` for an editor only."""
        return self._store.undo(spec, user=require_editor(self._who, "undo"))

    def write_records(
        self, collection: str, records: list[dict[str, Any]], *, action: str, **kwargs: Any  # noqa: ANN401
    ) -> str:
        """`Store.write_records` for an editor only."""
        kwargs["user"] = require_editor(
            self._who, action if action in EDIT_ACTIONS else "records"
        )
        return self._store.write_records(collection, records, action=action, **kwargs)

    def undo_records(self, collection: str, **_: Any) -> str:  # noqa: ANN401
        """`Store.undo_records` for an editor only."""
        return self._store.undo_records(collection, user=require_editor(self._who, "undo"))

    def write_attachment(self, data: bytes, *, suffix: str) -> str:
        """`Store.write_attachment` for an editor only (check the file first: `uploads`)."""
        require_editor(self._who, "evidence")
        return self._store.write_attachment(data, suffix=suffix)


def guarded_store(store: Any, who: EditorSession | None) -> GuardedStore:  # noqa: ANN401
    """Return `store` behind `require_editor` (see `GuardedStore`)."""
    return GuardedStore(store, who)

# --- Streamlit panel --------------------------------------------------------------------------


def client_address() -> str | None:
    """
    Return the browser's address as Streamlit sees it (``st.context.ip_address``).

    None when the browser runs on the server itself. It is the TCP peer of the connection;
    behind a reverse proxy on the same machine it is the ``X-Forwarded-For`` address the
    proxy sets (uvicorn trusts that header only from 127.0.0.1), otherwise the proxy's own
    address: then every user shares one address and only `ADDRESS_LOCK_AFTER` applies to
    them together (see README, "Sign-in limits").
    """
    import streamlit as st  # noqa: PLC0415

    try:
        return st.context.ip_address
    except Exception:  # noqa: BLE001 - outside a running app (bare mode)
        return None


def sign_in_panel(
    container: Any = None,  # noqa: ANN401 - a Streamlit container
    *,
    settings: Settings | None = None,
) -> EditorSession:
    """
    Draw the sign-in / sign-out controls (Streamlit) and return who may edit.

    Call once per run, before drawing any data-changing control; draw those controls only
    when ``session.can_edit``. Viewers see a "编辑需登录" note and a sign-in form (local)
    or a 登录 button (OIDC), nothing else.

    Parameters
    ----------
    container
        Where to draw (e.g. ``st.sidebar``); default ``st.sidebar``.
    settings
        The installation (where the shared sign-in counters live); default
        ``Settings.from_env()``.

    Returns
    -------
    session
        `EditorSession`; pass ``session.editor`` as ``user=`` to `commit_import` and
        `riskmap.io.undo_last_write`.
    """
    import streamlit as st  # noqa: PLC0415 - only the app needs Streamlit

    from riskmap.ui.text import md  # noqa: PLC0415

    box = container if container is not None else st.sidebar
    try:
        secrets: Mapping[str, Any] = (
            st.secrets.to_dict() if st.secrets.load_if_toml_exists() else {}
        )
        user_info = st.user.to_dict() if hasattr(st.user, "to_dict") else dict(st.user)
        who = current_editor(secrets, st.session_state, user_info)
    except AuthConfigError as exc:
        box.error(f"编辑权限配置错误：{md(exc)}")
        return EditorSession(None, "none")
    box.subheader("编辑权限")
    if who.mode == "none":
        box.caption("未配置编辑者（查看无需登录）。管理员可用 `riskmap editor add 用户名` 添加。")
    elif who.can_edit:
        box.caption(f"已登录：{md(who.editor)}")
        if box.button("退出登录", key="riskmap_sign_out"):
            if who.mode == "oidc":
                st.logout()
            sign_out(st.session_state)
            st.rerun()
    elif who.mode == "oidc":
        if user_info.get("is_logged_in"):
            box.warning(f"{md(user_info.get('email', ''))} 无编辑权限（只能查看）")
            if box.button("退出登录", key="riskmap_sign_out"):
                st.logout()
        else:
            box.caption("查看无需登录；导入、撤销、修改状态需登录。")
            provider = oidc_provider(secrets) or "default"
            if box.button("登录", key="riskmap_sign_in"):
                st.login() if provider == "default" else st.login(provider)
    else:
        box.caption("查看无需登录；导入、撤销、修改状态需登录。")
        with box.form("riskmap_login_form", clear_on_submit=True):
            username = st.text_input("用户名", key="riskmap_login_user")
            password = st.text_input("密码", type="password", key="riskmap_login_password")
            submitted = st.form_submit_button("登录")
        if submitted:
            if settings is None:
                from riskmap.settings import Settings  # noqa: PLC0415

                settings = Settings.from_env()
            error = local_sign_in(
                secrets,
                st.session_state,
                username,
                password,
                guard=SignInGuard.for_settings(settings),
                address=client_address(),
            )
            if error:
                box.error(md(error))
            else:
                st.rerun()
    return who


# --- editing secrets.toml (text in, text out; riskmap.io writes it) ---------------------------

_TABLE_RE = re.compile(r"^\s*\[")
_EDITORS_HEADER_RE = re.compile(r"^\s*\[\s*editors\s*\]\s*(#.*)?$")


def upsert_editor(text: str, name: str, stored: str) -> str:
    """
    Add or replace one ``[editors]`` entry in the text of ``secrets.toml``.

    Edits the text line by line so every other table, key and comment stays as it was; the
    result is parsed again and must differ from the input only in ``editors[name]``.

    Parameters
    ----------
    text
        Current file content (``""`` for a new file).
    name
        Editor name (`check_username`).
    stored
        A scrypt hash from `hash_password`.

    Returns
    -------
    text
        The new content.

    Raises
    ------
    AuthConfigError
        When `text` is not valid TOML, `name` or `stored` is invalid, or the file keeps
        ``editors`` in a form this edit cannot handle (inline table, dotted keys): edit it
        by hand then.
    """
    import tomllib  # noqa: PLC0415

    user = check_username(name)
    parse_hash(stored, who=user)
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"secrets.toml 不是有效的 TOML: {exc}"
        raise AuthConfigError(msg) from None
    line = f'"{user}" = "{stored}"'
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if _EDITORS_HEADER_RE.match(ln)), None)
    if start is None:
        tail = [] if not lines or not lines[-1].strip() else [""]
        lines += [*tail, "[editors]", line]
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if _TABLE_RE.match(lines[i])), len(lines)
        )
        key_re = re.compile(
            rf'^\s*("{re.escape(user)}"|\'{re.escape(user)}\'|{re.escape(user)})\s*='
        )
        hit = next((i for i in range(start + 1, end) if key_re.match(lines[i])), None)
        if hit is not None:
            lines[hit] = line
        else:
            last = max(
                (
                    i
                    for i in range(start, end)
                    if lines[i].strip() and not lines[i].lstrip().startswith("#")
                ),
                default=start,
            )
            lines.insert(last + 1, line)
    new = "\n".join(lines) + "\n"
    try:
        after = tomllib.loads(new)
    except tomllib.TOMLDecodeError:
        after = None
    expected = dict(before)
    expected["editors"] = {**dict(before.get("editors", {})), user: stored}
    if after != expected:
        msg = "无法自动修改 secrets.toml 中的 editors（格式特殊），请手工编辑 [editors] 表"
        raise AuthConfigError(msg)
    return new
