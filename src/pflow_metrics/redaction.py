"""Secrets out of text: the one redactor for every text pflow-metrics stores or prints.

A neutral module (it imports only the standard library) so that the instrumentation, the
ledger and the CLI share it without depending on each other. `redact_text` masks, anywhere
in a text:

- known credential formats: `sk-...` (OpenAI, Anthropic), `ghp_...` and `github_pat_...`,
  `glpat-...`, AWS access key ids, Slack `xox?-...`, Google `AIza...`, JSON web tokens;
- HTTP credentials: `Bearer <token>` and `Basic <base64>` in any case, and the value of any
  `Authorization:` header whatever its scheme;
- the password of a URL with userinfo: `postgresql://alice:[REDACTED]@host`;
- the value of NAME=value / NAME: value / "NAME": "value" / --NAME value (env output, JSON,
  YAML, Python reprs, libpq conninfo, query strings) when NAME looks secret (`is_secret_key`):
  `DB_PASSWORD=...`, `AWS_SECRET_ACCESS_KEY=...`, `?password=...`, `"api_key": "..."`.

Secret keys are told by their words, so `author`, `authority` and token counts
(`max_tokens`, `input_tokens`) are not secret while `auth`, `pwd`, `access_tokens` are.

Most text holds none of this: each rule has substring hints (`in` tests, far cheaper than a
regex search) and runs only when one of them is there; clean short text costs about a
microsecond, 4 kB of clean text about 20. Every rule is linear in the text's length.
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import lru_cache
from typing import Any

REDACTED = "[REDACTED]"

# -- keys ---------------------------------------------------------------------------------

# Matched against a normalized key: camelCase split, lower case, every run of other
# characters one "_" (`X-Api-Key` -> `x_api_key`, `authToken` -> `auth_token`).
SECRET_KEY = re.compile(
    r"passw(?:or)?d|passphrase|pwd|secret|token|credential|cookie|session|authorization"
    r"|api_?key|private_?key|access_?key|signing_?key|encryption_?key"
    r"|(?:^|_)o?auth(?:_|$)"  # auth, oauth, basic_auth, auth_header; not author, authority
)
# A key made only of these words names a count of tokens, not a token (`max_tokens`,
# `cache_read_input_tokens`, `completion_tokens_details`); `token` alone is a credential.
_COUNT_WORDS = frozenset(
    "max min input output prompt completion total cache cached read write creation reasoning "
    "thinking remaining used num n count counts limit limits usage details per estimated audio "
    "text image accepted rejected prediction new generated available left billed billable "
    "context window budget avg mean sum llm model in out chunk overlap size length len "
    "token tokens tokenizer tokenize tokenized tokenization".split()
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def is_secret_key(key: Any) -> bool:
    """True when a key (a dict key, a variable or header name) says its value is a secret."""
    if not isinstance(key, str):
        return False
    return _secret_key(key) if len(key) <= 200 else _judge_key(key)


@lru_cache(maxsize=8192)
def _secret_key(key: str) -> bool:
    return _judge_key(key)


def _judge_key(key: str) -> bool:
    normal = _NOT_ALNUM.sub("_", _CAMEL.sub("_", key).lower()).strip("_")
    if not SECRET_KEY.search(normal):
        return False
    words = normal.split("_")
    return not (words != ["token"] and _COUNT_WORDS.issuperset(words))


# -- values -------------------------------------------------------------------------------

_TOKENS = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"sk-[A-Za-z0-9_\-]{8,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|glpat-[A-Za-z0-9_\-]{20,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|xox[abpre]-[A-Za-z0-9\-]{10,}"
    r"|AIza[0-9A-Za-z_\-]{35}"
    r")"
    # A JSON web token: only where a run of base64url starts (tried inside one, it would be
    # quadratic on a long run).
    r"|(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]*"
)
# Case matters. "gh" is frequent in English: GitHub tokens also need a "_".
_TOKEN_HINTS = ("sk-", "github_pat_", "glpat-", "AKIA", "ASIA", "xox", "AIza", "eyJ")

_SCHEME_CREDENTIAL = re.compile(r"\b(bearer|basic)([ \t]+)([A-Za-z0-9._~+/\-]{6,}=*)", re.IGNORECASE)

# scheme://user:PASSWORD@ : the password runs to the last "@" before a space or a quote (in
# 256 characters: bounded, so that no text costs more than linear time). Matched right after
# each "://" (found with str.find: a regex search would try every position).
_USERINFO = re.compile(r"([^\s:/@?#\"'<>`]{0,256}:)([^\s\"'<>`]{1,256})@")

# NAME=value: a word a secret key holds, the rest of the name, then a separator (searched in
# the lower-cased text; the whole name is then judged by is_secret_key). `--name value` too.
_NAME_WORDS = (r"(?:passw(?:or)?d|passphrase|pwd|secret|token|credential|cookie|session|auth"
               r"|api[_\-]?key|private[_\-]?key|access[_\-]?key|signing[_\-]?key|encryption[_\-]?key)")
# Name parts are bounded (64 characters each side of the word) to keep every search linear.
_ASSIGNMENT = re.compile(_NAME_WORDS + r"""[a-z0-9_.\-]{0,64}(?=\\?["'`]?[ \t]*(?:=>|:=|==|=|:(?!:|//)))""")
_FLAG = re.compile(r"(?<![a-z0-9_.\-])--?[a-z0-9_.\-]{0,64}?" + _NAME_WORDS + r"[a-z0-9_.\-]{0,64}(?=[ \t]+[^\s\-])")
_NAME_HINTS = ("pass", "pwd", "secret", "token", "credential", "cookie", "session", "auth", "key")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
_SEPARATOR = re.compile(r"""\\?["'`]?[ \t]*(?:=>|:=|==|=|:)[ \t]*""")
_FLAG_SEPARATOR = re.compile(r"[ \t]+")
_AUTH_SCHEME = re.compile(
    r"(?:bearer|basic|digest|token|negotiate|ntlm|apikey|api-key|aws4-hmac-sha256|hoba|mutual"
    r"|dpop|jwt|key|otp|sso)[ \t]+(?=\S)",
    re.IGNORECASE,
)
_BARE_VALUE = re.compile(r"""[^\s"'`\\&<>]+""")
_NOT_VALUES = frozenset({"none", "null", "nil", "true", "false", "undefined", "***"})
MAX_QUOTED = 1024  # a longer quoted value is masked up to its first space instead

# How far past a limit a bounded caller must look so that no secret is cut in two unseen.
WINDOW_MARGIN = 1024


def redact_text(text: str) -> str:
    """`text` with every secret it holds replaced by [REDACTED]. Idempotent."""
    lowered = _lower(text)
    if "://" in text:
        text = _redact_url_passwords(text)
        lowered = _lower(text)
    assigns, flags = ("=" in text or ":" in text), "-" in text
    if (assigns or flags) and any(hint in lowered for hint in _NAME_HINTS):
        if assigns:
            text = _redact_names(text, lowered, _ASSIGNMENT, _SEPARATOR)
        if flags:
            text = _redact_names(text, _lower(text) if assigns else lowered, _FLAG, _FLAG_SEPARATOR)
    if "bearer" in lowered or "basic" in lowered:
        text = _SCHEME_CREDENTIAL.sub(_scheme_credential, text)
    if any(hint in text for hint in _TOKEN_HINTS) or ("_" in text and "gh" in text):
        text = _TOKENS.sub(REDACTED, text)
    return text


def _lower(text: str) -> str:
    """`text` in lower case, each character where it was (the patterns index `text` by it)."""
    lowered = text.lower()
    # A few non-ASCII letters lower-case to two characters; the patterns are ASCII anyway.
    return lowered if len(lowered) == len(text) else text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def redact(value: Any) -> Any:
    """redact_text for a value that may be None or not a string (returned as it is)."""
    return redact_text(value) if isinstance(value, str) and value else value


def redact_name(value: Any) -> Any:
    """`redact` for short, repeated texts (ids, model names, actions): cached."""
    if not isinstance(value, str) or not value:
        return value
    return _redact_short(value) if len(value) <= 200 else redact_text(value)


@lru_cache(maxsize=4096)
def _redact_short(value: str) -> str:
    return redact_text(value)


def _redact_url_passwords(text: str) -> str:
    pieces: list[str] = []
    done = 0
    at = text.find("://")
    while at != -1:
        after = at + 3
        match = _USERINFO.match(text, after) if at > 0 and text[at - 1].isalnum() else None
        if match is not None and _is_password(match.group(2)):
            pieces.append(text[done:after] + match.group(1) + REDACTED + "@")
            done = after = match.end()
        at = text.find("://", after)
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def _is_password(password: str) -> bool:
    head, slash, _ = password.partition("/")
    # Not when already masked, nor host:port/path@... (no userinfo there).
    return password not in ("***", REDACTED) and not (slash and (not head or head.isdigit()))


def _scheme_credential(match: re.Match) -> str:
    scheme, space, credential = match.groups()
    if scheme.lower() == "bearer":
        secret = len(credential) >= 8
    else:  # Basic: base64 of user:password, not a word ("basic authentication")
        secret = _looks_like_basic(credential)
    return f"{scheme}{space}{REDACTED}" if secret else match.group(0)


def _looks_like_basic(credential: str) -> bool:
    if len(credential) < 8:
        return False
    try:
        if b":" in base64.b64decode(credential, validate=True):
            return True
    except (binascii.Error, ValueError):
        pass
    rest = credential[1:]
    return (any(ch.isdigit() or ch in "+/=" for ch in credential)
            or (any(ch.isupper() for ch in rest) and any(ch.islower() for ch in rest)))


def _redact_names(text: str, lowered: str, names: re.Pattern, separators: re.Pattern) -> str:
    """Mask the value after every NAME (found by `names` in `lowered`, the lower-cased `text`)
    that is a secret key."""
    pieces: list[str] = []
    done = 0  # text[:done] is in pieces
    search_from = 0
    while True:
        match = names.search(lowered, search_from)
        if match is None:
            break
        start, end = match.start(), match.end()
        search_from = end
        floor = max(done, start - 64)
        while start > floor and text[start - 1] in _NAME_CHARS:
            start -= 1
        if not is_secret_key(text[start:end]):
            continue
        separator = separators.match(text, end)
        span = None if separator is None else _value_span(text, separator.end(), "authoriz" in lowered[start:end])
        if span is None:
            continue
        pieces.append(text[done:span[0]])
        pieces.append(REDACTED)
        done = search_from = span[1]
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def _value_span(text: str, start: int, authorization: bool) -> tuple[int, int] | None:
    """Where the value starting at `start` is: inside its quotes when it is quoted on one
    line, else a run of characters up to a space, a quote, a backslash, & or <>."""
    size = len(text)
    if start >= size:
        return None
    quote = None
    if text[start] in "\"'`":
        quote = text[start]
    elif text[start] == "\\" and start + 1 < size and text[start + 1] in "\"'":
        quote = text[start:start + 2]
    if quote is not None:
        inner = start + len(quote)
        close = _closing_quote(text, quote, inner)
        if close == inner:
            return None  # an empty value
        if close > inner:
            value = text[inner:close]
            if value == REDACTED or value.lower() in _NOT_VALUES:
                return None
            return inner, close
        start = inner  # not closed on this line: the run after the quote
    if authorization:
        scheme = _AUTH_SCHEME.match(text, start)
        if scheme is not None:
            start = scheme.end()
    run = _BARE_VALUE.match(text, start)
    if run is None:
        return None
    value = run.group()
    if value.startswith(REDACTED) or value[0] in "{[(" or value.lower() in _NOT_VALUES:
        return None
    return start, run.end()


def _closing_quote(text: str, quote: str, start: int) -> int:
    """The index of the quote closing a value opened before `start`, on the same line and
    within MAX_QUOTED characters (so that many unclosed quotes cost linear time); -1."""
    line_end = text.find("\n", start, start + MAX_QUOTED)
    if line_end == -1:
        line_end = min(len(text), start + MAX_QUOTED)
    at = start
    while True:
        at = text.find(quote, at, line_end)
        if at == -1:
            return -1
        if len(quote) == 1 and at > start and text[at - 1] == "\\":
            at += 1  # an escaped quote inside the value
            continue
        return at


# -- run records --------------------------------------------------------------------------

def redact_node(node: Any) -> Any:
    """Redact, in place, the texts of a NodeRecord; returns it."""
    node.node_id = redact_name(node.node_id)
    node.node_type = redact_name(node.node_type)
    node.action = redact_name(node.action)
    if node.error:
        node.error = redact_text(node.error)
    return node


def redact_call(call: Any) -> Any:
    """Redact, in place, the texts of an LLMCallRecord (prompt and response included)."""
    call.node_id = redact_name(call.node_id)
    call.model = redact_name(call.model)
    call.resolved_model = redact_name(call.resolved_model)
    call.provider = redact_name(call.provider)
    call.price_source = redact_name(call.price_source)
    if call.prompt:
        call.prompt = redact_text(call.prompt)
    if call.response:
        call.response = redact_text(call.response)
    return call


def redact_record(record: Any, *, parts: bool = True) -> Any:
    """Redact, in place, every text of a RunRecord: its error, workflow, tags and CI context,
    and (unless `parts` is False) every node and call. Returns the record. Idempotent."""
    record.workflow = redact_name(record.workflow)
    if record.error:
        record.error = redact_text(record.error)
    if record.tags:
        record.tags = {key: redact(value) for key, value in record.tags.items()}
    if record.ci:
        record.ci = {key: redact(value) for key, value in record.ci.items()}
    if parts:
        for node in record.nodes:
            redact_node(node)
        for call in record.llm_calls:
            redact_call(call)
    return record
