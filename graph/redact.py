"""One redaction layer: API keys, bearer tokens and passwords masked in any text routegraph shows or stores.

Error messages, log lines, `--json` output, answers and checkpoints all pass through `redact` (or
`redact_value` for JSON-like data, or a `Redactor` that also knows the configured secrets). A secret
is replaced by `***` and the context around it is kept, so a masked message still says what went
wrong: `sk-***`, `Authorization: Bearer ***`, `password=***`, `postgresql://user:***@host/db`.

Two layers, because neither is enough alone:

* Shapes (`redact`): key formats (sk-..., ghp_..., xox..., AKIA..., JWTs), Authorization headers in
  any quoting, `name=value` / `"name": "value"` pairs whose name says secret, and URL passwords,
  malformed URLs included (an `@` or a bad percent-escape in the password, an unclosed `[`, no
  scheme). When in doubt a rule masks more, never less.
* Known values (`Redactor(secrets)`): a driver echoes fragments that have no shape (libpq says
  `invalid percent-encoded token: "s%zzecret"`), a key may look like any word. `url_secrets(url)`
  lists what a connection URL can leak, for `Redactor`.

Pure and fast: regexes are compiled once, every quantifier that could backtrack is bounded, and no
function raises on any input (a failure masks everything rather than leak). Imports nothing of the
project: it sits at the bottom layer, with graph/errors.py.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus, unquote

MASK = "***"
MIN_SECRET_LENGTH = 4
"""Known secrets shorter than this are ignored: masking every `abc` would ruin every message."""

T = TypeVar("T")
Span = tuple[int, int]

# --- shapes -------------------------------------------------------------------------------------
# Each pattern marks the secret with groups named s, s1, s2...: only those characters are masked.

_KEY_SHAPES = [
    # OpenAI (sk-, sk-proj-, sk-svcacct-), Anthropic (sk-ant-api03-), OpenRouter (sk-or-v1-)...
    r"(?<![A-Za-z0-9])sk-(?:proj-|ant-|or-v1-|svcacct-|admin-)?(?P<s>[A-Za-z0-9_\-]{12,})",
    r"(?<![A-Za-z0-9])(?:sk|rk|pk)_(?:live|test)_(?P<s>[A-Za-z0-9]{10,})",  # Stripe
    r"(?<![A-Za-z0-9])whsec_(?P<s>[A-Za-z0-9]{10,})",
    r"(?<![A-Za-z0-9])gh[pousr]_(?P<s>[A-Za-z0-9]{20,})",  # GitHub
    r"(?<![A-Za-z0-9])github_pat_(?P<s>[A-Za-z0-9_]{20,})",
    r"(?<![A-Za-z0-9])glpat-(?P<s>[A-Za-z0-9_\-]{20,})",  # GitLab
    r"(?<![A-Za-z0-9])xox[abposr]-(?P<s>[A-Za-z0-9\-]{10,})",  # Slack
    r"(?<![A-Za-z0-9])xapp-(?P<s>[A-Za-z0-9\-]{10,})",
    r"(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)(?P<s>[A-Z0-9]{16})(?![A-Za-z0-9])",  # AWS key ids
    r"(?<![A-Za-z0-9])AIza(?P<s>[0-9A-Za-z_\-]{30,})",  # Google
    r"(?<![A-Za-z0-9])hf_(?P<s>[A-Za-z0-9]{20,})",  # Hugging Face
    r"(?<![A-Za-z0-9])npm_(?P<s>[A-Za-z0-9]{30,})",
    r"(?<![A-Za-z0-9])pypi-(?P<s>[A-Za-z0-9_\-]{40,})",
    # A JWT: the header is not secret, the claims and the signature are.
    r"(?<![A-Za-z0-9])eyJ(?P<s>[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*)",
    r"-----BEGIN[A-Z ]{0,40}PRIVATE KEY-----(?P<s>[\s\S]*?)(?:-----END[A-Z ]{0,40}PRIVATE KEY-----|\Z)",
]

# `Authorization: Bearer x`, `"Authorization": "Bearer x"`, `{'authorization': 'Basic x'}`,
# `("authorization", "Bearer x")`, `\"Authorization\": \"Bearer x\"` (JSON inside a string).
_AUTH_HEADER = (
    r"(?i)(?<![A-Za-z0-9_\-])(?:proxy-)?authorization"
    r"(?:\\?[\"']?[ \t]*[:=][ \t]*|\\?[\"'][ \t]*,[ \t]*)\\?[\"']?[ \t]*"
    r"(?:(?:bearer|basic|token|digest|apikey|api-key|hmac|negotiate|ntlm|aws4-hmac-sha256)[ \t]+)?"
    r"(?P<s>[^\s\"'\\,;}\]]+)"
)
# A token after the word Bearer anywhere (a 401 body echoing it): must contain a digit or a symbol,
# so "the bearer instruments" stays.
_BEARER = r"(?i)(?<![A-Za-z0-9])bearer[ \t]+(?:token[ \t]+)?(?P<s>(?=[A-Za-z0-9\-._~+/]{0,400}[0-9\-._~+/])[A-Za-z0-9\-._~+/]{8,}=*)"
# `Basic <base64 of user:password>`: checked by decoding, so "Basic subscription" stays.
_BASIC = r"(?<![A-Za-z0-9])Basic[ \t]+(?P<s>[A-Za-z0-9+/]{6,}={0,2})(?![A-Za-z0-9+/=])"
_COOKIE = r"(?i)(?<![A-Za-z0-9_\-])(?:set-)?cookie\\?[\"']?[ \t]*:[ \t]*\\?[\"']?(?P<s>[^\n\r\"'\\]+)"

# Names whose value is a secret, with optional prefixes: api_key, x-api-key, access_token,
# client_secret, db.password, AWS_SECRET_ACCESS_KEY, PGPASSWORD. `max_tokens` is not one of them.
_SECRET_NAME = (
    r"(?:[A-Za-z0-9]{1,24}[_.\-]){0,4}"
    r"(?:api[_\-]?key|apikey|access[_\-]?key|secret[_\-]?key|private[_\-]?key|token|secret|password"
    r"|passwd|pwd|pass|passphrase|pgpassword|signature|sig|credentials?)"
)
_SECRET_NAME_ONLY = re.compile(rf"(?i){_SECRET_NAME}")
# name = value, name: value, "name": "value", name='quoted value', name="unclosed...
_NAME_VALUE = (
    rf"(?i)(?<![A-Za-z0-9]){_SECRET_NAME}(?![A-Za-z0-9])\\?[\"']?[ \t]*(?P<sep>[:=])[ \t]*(?:"
    r"\"(?P<s1>(?:[^\"\\\n]|\\.){0,4096})\""  # "closed"
    r"|'(?P<s2>(?:[^'\\\n]|\\.){0,4096})'"  # 'closed'
    r"|\\\"(?P<s3>[^\"\\\n]{0,4096})\\\""  # \"inside a JSON string\"
    r"|[\"'](?P<s4>[^\n]{0,4096})"  # an unclosed quote: everything to the end of the line
    r"|(?P<s5>[^\s\"'\\&,;}\]]{1,4096})"  # bare: up to a separator of query strings, DSNs, JSON
    r")"
)
# A long token after a key-like word, without `=`: "my api key is 3f9a...".
_NAMED_TOKEN = (
    r"(?i)(?<![A-Za-z0-9])(?:api[ _\-]?key|token|secret|password)[ \t]+(?:is[ \t]+|was[ \t]+)?"
    r"(?P<s>(?=[A-Za-z0-9_\-+/.=]{0,400}[0-9])[A-Za-z0-9_\-+/.=]{16,})"
)


# Prose, not a dump: "my password: can you reset it?" keeps its words.
_PROSE_WORDS_TEXT = (
    "a an and are can cannot can't could did didn't does doesn't don't for forgot had has have "
    "help how i i'm is isn't it it's just keeps my no not please reset should so still that the "
    "this was wasn't what when where which why will won't would you your"
)
_PROSE_WORDS = frozenset(_PROSE_WORDS_TEXT.split())


def _basic_has_colon(match: re.Match[str], secret: str) -> bool:
    try:
        return b":" in base64.b64decode(secret + "=" * (-len(secret) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False


def _not_prose(match: re.Match[str], secret: str) -> bool:
    return not (match.group("sep") == ":" and match.group("s5") and secret.lower() in _PROSE_WORDS)


Check = Callable[[re.Match[str], str], bool]
_PATTERNS: list[tuple[re.Pattern[str], Check | None]] = [
    *((re.compile(p), None) for p in _KEY_SHAPES),
    (re.compile(_AUTH_HEADER), None),
    (re.compile(_BEARER), None),
    (re.compile(_BASIC), _basic_has_colon),
    (re.compile(_COOKIE), None),
    (re.compile(_NAME_VALUE), _not_prose),
    (re.compile(_NAMED_TOKEN), None),
]
_SECRET_GROUP = re.compile(r"s\d*")

# URL user info. `scheme://user:` starts one; where the password ends is decided in `_password_end`.
_SCHEME_USER = re.compile(
    r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,30}://(?P<user>[^\s:/?#@\[\]\"'<>`]{0,256}):"
)
# `user:password@host:5432/db` without a scheme; `(?!/)` leaves `scheme://` to the rule above.
_BARE_USER = re.compile(r"(?<![^\s\"'=(\[,;<`])(?P<user>[A-Za-z0-9_.%+\-]{1,64}):(?![/\s])")
_HOSTISH = re.compile(r"\[|[A-Za-z0-9._\-]{1,253}[:/]")
_TOKEN_END = re.compile(r"[\s\"<>`]")
_NEXT_WORD = re.compile(r"[ \t]{1,8}([^\s\"<>`]{1,256})")
_DELIMS = "/?#"
_MAX_PASSES = 8
_TOKEN_LIMIT = 4096
"""How far a URL token is scanned for its `@`: bounds the work on hostile input."""


def _token_end(text: str, start: int) -> int:
    match = _TOKEN_END.search(text, start, min(len(text), start + _TOKEN_LIMIT))
    return match.start() if match else min(len(text), start + _TOKEN_LIMIT)


def _first_delim(token: str) -> int:
    positions = [i for i in (token.find(d) for d in _DELIMS) if i >= 0]
    return min(positions) if positions else len(token)


def _password_end(text: str, start: int, *, bare: bool) -> int | None:
    """Where the password that starts at `start` (just after `user:`) ends, or None: not a password.

    The user info ends at the last `@` before the first `/`, `?` or `#` (`p@ss@host/db`: "p@ss").
    With no `@` there, a number is a port (`host:8080/x?to=a@b` stays); anything else is masked up
    to the last `@` of the token (`se/cr?et#x@host`), or, with no `@` at all, as far as the first
    delimiter (`postgresql://user:secret` is host "user", port "secret": libpq echoes the port).
    """
    end = _token_end(text, start)
    token = text[start:end]
    delim = _first_delim(token)
    at = token.rfind("@", 0, delim)
    if at < 0:
        segment = token[:delim]
        if segment.isdigit() or not segment:
            return None
        at = token.rfind("@")
    if bare:
        # No scheme: only `user:password@host:port` or `@host/path` or `@[v6` counts, so that
        # "mailto:omar@brightpath.co" and "at 12:30@home" stay.
        if at < 0 or not _HOSTISH.match(token, at + 1):
            return None
        return start + at
    if at >= 0:
        return start + at
    # `postgresql://user:se cret@host`: a space in the password splits the token; take the next
    # word too when it holds the `@`.
    nxt = _NEXT_WORD.match(text, end)
    if nxt and "@" in nxt.group(1):
        word = nxt.group(1)
        at = word.rfind("@", 0, _first_delim(word))
        return nxt.start(1) + (at if at >= 0 else word.rfind("@"))
    return start + delim


def _url_spans(text: str) -> Iterator[Span]:
    if ":" not in text:
        return
    for rule, bare in ((_SCHEME_USER, False), (_BARE_USER, True)):
        pos = 0
        while match := rule.search(text, pos):
            start = match.end()
            end = _password_end(text, start, bare=bare)
            if end is not None and end > start:
                yield (start, end)
                pos = end
            else:
                # No password here: look again from the user part, so `x-postgresql://postgresql://u:p@h`
                # (a scheme swallowing the next one) still finds `u:p@h`.
                pos = max(match.start("user"), match.start() + 1)


def _shape_spans(text: str) -> Iterator[Span]:
    for pattern, check in _PATTERNS:
        for match in pattern.finditer(text):
            for name, value in match.groupdict().items():
                if value and _SECRET_GROUP.fullmatch(name) and (check is None or check(match, value)):
                    yield match.span(name)
    yield from _url_spans(text)


def _mask(text: str, spans: Iterable[Span]) -> str:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    if not merged:
        return text
    out: list[str] = []
    last = 0
    for start, end in merged:
        out.append(text[last:start])
        out.append(MASK)
        last = end
    out.append(text[last:])
    return "".join(out)


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception:
        return MASK


# --- public API ---------------------------------------------------------------------------------


class Redactor:
    """`redact` plus exact known secrets (the configured API key, the database password).

    A known secret is masked wherever it stands as a whole (not inside a longer word), also
    percent-encoded. Secrets shorter than `MIN_SECRET_LENGTH` are ignored.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values: set[str] = set()
        for secret in secrets:
            if not isinstance(secret, str) or not secret.strip("*"):
                continue
            for form in (secret, quote(secret, safe=""), quote_plus(secret)):
                if len(form) >= MIN_SECRET_LENGTH:
                    values.add(form)
        self.secrets: frozenset[str] = frozenset(values)
        alternatives = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
        self._known = (
            re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])") if alternatives else None
        )

    def spans(self, text: str) -> list[Span]:
        """Where the secrets in `text` are (shapes and known values)."""
        found = list(_shape_spans(text))
        if self._known is not None:
            found += [m.span() for m in self._known.finditer(text)]
        return found

    def redact(self, text: str) -> str:
        """`text` with every secret replaced by `***`; never raises (on failure: `***`).

        Masking can join two pieces into a new match (`key=***@host` after `key=user:,p@host`), so
        it repeats until nothing changes: redact(redact(x)) == redact(x).
        """
        try:
            text = _as_text(text)
            for _ in range(_MAX_PASSES):
                masked = _mask(text, self.spans(text))
                if masked == text:
                    return text
                text = masked
            return text
        except Exception:
            return MASK

    def redact_value(self, obj: T) -> T:
        """JSON-like data with every string redacted, keys too, and the values of secret-named keys masked.

        dict, list and tuple are rebuilt; a pydantic model (a LangChain message) is copied with its
        fields redacted; other values are returned as they are. A cycle, or any failure, gives `***`.
        """
        try:
            return self._walk(obj, set())
        except Exception:
            return MASK  # type: ignore[return-value]

    def _walk(self, obj: Any, seen: set[int]) -> Any:
        if isinstance(obj, str):
            return self.redact(obj)
        if obj is None or isinstance(obj, bool | int | float):
            return obj
        if id(obj) in seen:
            return MASK
        seen = seen | {id(obj)}
        if isinstance(obj, Mapping):
            return {
                (self.redact(k) if isinstance(k, str) else k): self._field(k, v, seen) for k, v in obj.items()
            }
        if isinstance(obj, list):
            return [self._walk(v, seen) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self._walk(v, seen) for v in obj)
        fields = getattr(type(obj), "model_fields", None)
        if isinstance(fields, Mapping) and hasattr(obj, "model_copy"):
            update = {name: self._field(name, getattr(obj, name, None), seen) for name in fields}
            return obj.model_copy(update=update)
        return obj

    def _field(self, key: object, value: Any, seen: set[int]) -> Any:
        if isinstance(key, str) and _secret_key(key):
            if isinstance(value, str) and value:
                return _keep_scheme(value) if "authorization" in key.lower() else MASK
            if isinstance(value, int | float) and not isinstance(value, bool):
                return MASK
        return self._walk(value, seen)

    def log_filter(self) -> RedactingFilter:
        return RedactingFilter(self)


def _secret_key(key: str) -> bool:
    lowered = key.lower()
    return bool(_SECRET_NAME_ONLY.fullmatch(key)) or lowered in {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
    }


def _keep_scheme(value: str) -> str:
    scheme = re.match(r"(?i)(bearer|basic|token|digest|apikey)[ \t]+", value)
    return f"{scheme.group(0)}{MASK}" if scheme else MASK


_DEFAULT = Redactor()


def redact(text: str) -> str:
    """`text` with API keys, tokens, Authorization headers and URL/DSN passwords masked as `***`."""
    return _DEFAULT.redact(text)


def redact_value(obj: T) -> T:
    """JSON-like data (dict/list/tuple/str, pydantic models) with every string redacted."""
    return _DEFAULT.redact_value(obj)


def url_secrets(url: str) -> list[str]:
    """What a connection URL or DSN can leak, for `Redactor(secrets=...)`.

    Drivers echo fragments of a malformed URL on their own: libpq reads `user:p@ss@host` as
    password "p" on host "ss@host" and then cannot resolve "ss@host"; it quotes a bad percent-escape
    (`"s%zzecret"`) or the rest after a `?` (`"et#x@localhost/app"`). So this returns the password
    as written, decoded, and every piece after an `@`, `/`, `?`, `#` or space in it, alone and with
    the host that follows.
    """
    try:
        url = _as_text(url)
        found: set[str] = set()
        for start, end in _shape_spans(url):
            password = url[start:end]
            if not password or password == MASK:
                continue
            found.update({password, unquote(password)})
            host = ""
            if url.startswith("@", end):  # the host a parser would read after a stray `@`
                host_end = _token_end(url, end)
                host = url[end : end + _first_delim(url[end:host_end])]
            for i, char in enumerate(password):
                if char in "@/?# ":
                    found.update({password[i + 1 :], password[i + 1 :] + host})
            found.update(re.split(r"[@/?# ]", password))
        return sorted(s for s in found if len(s) >= MIN_SECRET_LENGTH and s.strip("*"))
    except Exception:
        return []


_STANDARD_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the message, its args, the exception text and string extras.

    Attach it to handlers (`handler.addFilter(...)`): a logger's own filters do not see records
    that propagate from child loggers. The message is formatted once (`msg % args`) and stored
    redacted with no args; the traceback is formatted, redacted into `exc_text` and `exc_info` is
    dropped, so no later handler can format the raw exception. It never drops a record.
    """

    def __init__(self, redactor: Redactor | None = None, name: str = "") -> None:
        super().__init__(name)
        self.redactor = redactor or _DEFAULT

    def filter(self, record: logging.LogRecord) -> bool:
        r = self.redactor
        try:
            try:
                message = record.getMessage()
            except Exception:
                message = f"{_as_text(record.msg)} {_as_text(record.args)}"
            record.msg, record.args = r.redact(message), None
            if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            if record.exc_text:
                record.exc_text = r.redact(record.exc_text)
            if record.stack_info:
                record.stack_info = r.redact(record.stack_info)
            for key, value in list(vars(record).items()):
                if key not in _STANDARD_RECORD_ATTRS:
                    setattr(record, key, r.redact_value(value))
        except Exception:
            record.msg, record.args, record.exc_info, record.exc_text = (
                "[unredactable log record]",
                None,
                None,
                None,
            )
        return True
