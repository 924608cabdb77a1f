"""Credential shapes found inside free text: token formats, PEM private keys, passwords in
URLs and `password=…` pairs. Compiled once; the cheap `in` checks skip the regexes that
cannot match, so clean text costs one scan for the token prefixes.
"""

from __future__ import annotations

import re
from collections.abc import Callable

MARKER = "[REDACTED]"

# Well-known token formats, redacted wherever a word starts with one.
TOKENS = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    + "|".join(
        [
            r"mmc(?:p|psvc|s|r)_[0-9A-Za-z_]{20,}",  # our API keys, service credentials, sessions, refresh tokens
            r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}",  # JWTs
            r"(?:AKIA|ASIA)[0-9A-Z]{16}",  # AWS access key ids
            r"gh[pousr]_[0-9A-Za-z]{30,}",  # GitHub tokens
            r"github_pat_[0-9A-Za-z_]{40,}",
            r"glpat-[0-9A-Za-z_-]{20,}",  # GitLab
            r"xox[abposr]-[0-9A-Za-z-]{10,}",  # Slack
            r"sk-(?:proj-|ant-)?[0-9A-Za-z_-]{20,}",  # OpenAI / Anthropic
            r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}",  # Stripe
            r"AIza[0-9A-Za-z_-]{35}",  # Google API keys
            r"[Bb](?i:earer)\s+[A-Za-z0-9._~+/-]{16,}=*",
        ]
    )
    + ")"
)
# Every TOKENS match contains one of these; text without any skips the regex.
_TOKEN_HINTS = (
    "mmc", "eyJ", "AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_",
    "glpat-", "xox", "sk-", "sk_", "rk_", "AIza", "earer", "EARER",
)  # fmt: skip
# The same test as one regex scan: on short text (most payload strings) much cheaper than
# a loop of `in` over every hint; on long text the loop's substring search is faster.
_TOKEN_HINT = re.compile("|".join(re.escape(hint) for hint in _TOKEN_HINTS))
_SHORT_TEXT = 256

PEM_PRIVATE_KEY = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY( BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)

# scheme://user:password@host → keeps scheme, user and host (the match starts at `://`).
URL_PASSWORD = re.compile(r"(://[^\s/?#:@]*:)[^\s/?#]+@")

# `name=value` / `name: value` / `"name": "value"`; the name decides (see KeyMatcher).
KEY_VALUE = re.compile(
    r"""(?<![A-Za-z0-9_.-])([A-Za-z][A-Za-z0-9_.-]{0,63})(["']?[ \t]*[=:][ \t]*)(["']?)"""
    r"""((?:(?i:bearer|basic|token)[ \t]+)?[^\s"'&,;}<>?]+)"""
)

_PEM_MARKER = "-----BEGIN [REDACTED] PRIVATE KEY-----"


def scrub(text: str, is_secret_key: Callable[[str], bool], secret_words: tuple[str, ...]) -> str:
    """`text` with every credential shape replaced by the marker.

    `secret_words` are the glued configured words (`apikey`); a `name=value` pair can only
    name a secret if the text, lower-cased without `-_.`, contains one of them."""
    if "PRIVATE KEY" in text:
        text = PEM_PRIVATE_KEY.sub(_PEM_MARKER, text)
    if "://" in text:
        text = URL_PASSWORD.sub(lambda m: m.group(1) + MARKER + "@", text)
    if _TOKEN_HINT.search(text) if len(text) < _SHORT_TEXT else _contains_any(text, _TOKEN_HINTS):
        text = TOKENS.sub(MARKER, text)
    if ("=" in text or ":" in text) and _mentions(text, secret_words):
        text = _redact_pairs(text, is_secret_key)
    return text


def _redact_pairs(text: str, is_secret_key: Callable[[str], bool]) -> str:
    """Redacts the value of each secret-named pair; a non-secret pair's value is scanned on
    (in `config: pwd: x` the value of `config` holds the next pair)."""
    out: list[str] = []
    done = 0
    match = KEY_VALUE.search(text)
    while match is not None:
        if match.group(4) != MARKER and is_secret_key(match.group(1)):
            out.append(text[done : match.start(4)] + MARKER)
            done = match.end()
            match = KEY_VALUE.search(text, done)
        else:
            match = KEY_VALUE.search(text, match.end(2))
    return "".join(out) + text[done:] if out else text


_SQUEEZE = str.maketrans("", "", "-_.")


def _mentions(text: str, secret_words: tuple[str, ...]) -> bool:
    return _contains_any(text.lower().translate(_SQUEEZE), secret_words)


def _contains_any(text: str, needles: tuple[str, ...]) -> bool:
    # A plain loop: measurably cheaper than any() over a generator on the hot path.
    for needle in needles:
        if needle in text:
            return True
    return False
