"""What scripts assemble, read without a browser ("script").

Address-hiding scripts build the address from pieces the source keeps
apart. A small evaluator (`evaluate`) follows what they do with string
literals only: concatenation with `+` and `+=` into variables (Joomla's
email cloaking builds `addy…` this way), `document.write(…)` and
`….innerHTML = …`, `'…'.split('').reverse().join('')`, `String.fromCharCode(…)`,
`unescape` / `decodeURIComponent` / `atob`, and `eval` of what those give
(WordPress email encoders). Nothing is executed: no loops, no functions, no
property lookups beyond the names assigned in the same script; whatever is
unknown becomes a character that no address contains.

Two table ciphers are read from the script's own strings: WordPress
encoders' "ASCII mixer" (`ML.charAt(MI.charCodeAt(j)-48)`) and the
"coded"/"key" obfuscator (`key.indexOf(coded.charAt(i))-shift`). Only small
scripts (12 KB) that mention something of an address are evaluated.

Beside scripts, the markup the decoders read: TYPO3 `linkTo_UnCryptMailto('…')`
and `data-mailto-token` (a shift of every character of the `mailto:` link,
read by trying each offset), CryptX's `DeCryptX('…')` (a shift of every
character), ROT13 decoders (the literals of a script that rotates by 13),
`data-enc-email` (ROT13 with "[at]"), Joomla 4's `<joomla-hidden-mail>`
(Base64 halves), `data-*mail*` values in Base64, attribute pairs such as
`data-user` + `data-domain`, SPIP's `lancerlien('user','host')` and other
mail-building calls, and handlers (`onclick="location.href='mai'+'lto:'…"`,
`href="javascript:…"`). A script or attribute that a decoder read is marked
encoded (`scan.suppress`): its literals are never reported as they stand.
Commented-out scripts and handlers are not read.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
from urllib.parse import unquote

from trawl.extract import anchors
from trawl.extract.address import addresses_in, normalize_email
from trawl.extract.kinds import SCRIPT

_UNKNOWN = "\x00"  # stands for any value the evaluator cannot know
_MAX_TOKENS = 5_000
# Address-hiding scripts are small; a bigger inline script is a library, not worth evaluating.
_MAX_SCRIPT = 12_288
_MAX_DEPTH = 3
_MAX_NESTING = 60
_TOKEN = re.compile(
    r"""'[^'\\\n]*(?:\\.[^'\\\n]*)*'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"|`[^`\\]*(?:\\.[^`\\]*)*`"""
    r"""|//[^\n]*|/\*.*?\*/|[A-Za-z_$][\w$]*|0[xX][0-9a-fA-F]+|\d+|\+=|===?|!==?|\S""",
    re.S,
)
_JS_STRING_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)", re.S)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_KEYWORDS = frozenset({"var", "let", "const", "return", "new", "typeof", "void", "else", "in", "of"})
_HANDLER = re.compile(r"""onclick\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)
_ROT13_MARK = re.compile(r"rot-?13|\b13\b")
_TYPO3_CALL = re.compile(r"""linkto_uncryptmailto\(\s*['"]([^'"]{4,512})['"]\s*(?:,\s*(-?\d+))?""", re.I)
_TYPO3_TOKEN = re.compile(r"""data-mailto-token\s*=\s*["']([^"']{4,512})["']""", re.I)
_ENC_EMAIL = re.compile(r"""data-enc-email\s*=\s*["']([^"']{3,512})["']""", re.I)
_DATA_ATTRIBUTE = re.compile(r"""data-([\w-]+)\s*=\s*["']([^"'<>]{1,128})["']""", re.I)
_STRING = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")
_MAIL_CALL = re.compile(
    r"""(\w+)\s*\(\s*((?:'[^'\n]{1,64}'|"[^"\n]{1,64}")"""
    r"""(?:\s*,\s*(?:'[^'\n]{1,64}'|"[^"\n]{1,64}")){1,2})\s*\)""",
    re.I,
)
_CRYPT_CALL = re.compile(r"""\w*(?:crypt|mail)\w*\s*\(\s*['"]([^'"]{4,512})['"]\s*(?:,\s*-?\d+\s*)?\)""", re.I)
_CHAR_TABLE = re.compile(r"([\w$]+)\.charAt\(\s*([\w$]+)\.charCodeAt\(\s*[\w$]+\s*\)\s*-\s*(\d+)\s*\)")
_KEY_CIPHER = re.compile(r"([\w$]+)\.indexOf\(\s*([\w$]+)\.charAt\(\s*[\w$]+\s*\)\s*\)\s*-\s*[\w$]+")
_DATA_MAIL = re.compile(r"""data-[\w-]*mail[\w-]*\s*=\s*["']([^"'<>]{4,256})["']""", re.I)
_ATTRIBUTE = re.compile(r"""([\w-]+)\s*=\s*["']([^"']{0,512})["']""")
_USER_KEYS = ("user", "account", "local", "mailbox", "u", "prefix", "name", "nom")
_DOMAIN_KEYS = ("domain", "host", "d", "server", "domaine")
_TLD_KEYS = ("tld", "ext", "suffix")


def run(scan) -> None:
    """Every decoder pass whose anchor is on the page."""
    lowered = scan.lowered
    scripts = [at for at in scan.markup_starts if lowered.startswith("<script", at)]
    if scripts:
        for start, end in _script_blocks(lowered, scripts):
            code_lowered = lowered[start:end]
            if (
                not scan.hidden(start)  # a commented-out script never runs
                and end - start <= _MAX_SCRIPT
                and anchors.any_in(code_lowered, anchors.SCRIPT_LITERALS)
                and anchors.any_in(code_lowered, anchors.SCRIPT_ADDRESS_MARKS)
            ):
                _script(scan, scan.text[start:end], code_lowered, start, end)
    handlers = anchors.positions(lowered, (anchors.HANDLER,)) + [
        match.start() for match in anchors.JAVASCRIPT_URL.finditer(lowered)
    ]
    if handlers:
        _handlers(scan, handlers)
    for at in scan.mail:
        for name, offset in anchors.MAIL_ANCHORS.items():
            if lowered.startswith(name, at - offset):
                _MAIL_ANCHOR_PASSES[name](scan, at - offset)
                break
        else:
            data = lowered.rfind("data-", max(0, at - 24), at)
            if data != -1:
                _data_mail_attribute(scan, data)
    pairs = anchors.positions(lowered, (anchors.ATTRIBUTE_PAIR,))
    if pairs:
        _attribute_pairs(scan, pairs)


def _script_blocks(lowered: str, openings: list[int]):
    """(start, end) of the code of each <script> that is code, not data (JSON, JSON-LD)."""
    end = 0
    for at in openings:
        if at < end:
            continue  # "<script" inside a script
        opened = lowered.find(">", at)
        end = lowered.find("</script", opened)
        if opened == -1 or end == -1:
            return
        if "json" not in lowered[at:opened] and "template" not in lowered[at:opened]:
            yield opened + 1, end


# ---------------------------------------------------------------- scripts


def _script(scan, code: str, code_lowered: str, start: int, end: int) -> None:
    evaluator = _Evaluator(code, 0)
    outputs = evaluator.run()
    decoded = _table_ciphers(evaluator.env, code, code_lowered)
    if "13" in code_lowered and _ROT13_MARK.search(code_lowered) and (
        "charcodeat" in code_lowered or "rot" in code_lowered
    ):
        decoded += [codecs.decode(value, "rot13") for value in evaluator.literals]
    if decoded:
        scan.suppress(start, end)  # the literals are the encoded form
    _report(scan, outputs + decoded + _mail_calls(code, code_lowered), code, start, evaluator.literals)


def _handlers(scan, positions: list[int]) -> None:
    """onclick="..." and href="javascript:...": evaluated, and their calls decoded."""
    text = scan.text
    for at in positions:
        if text[at] in "jJ":
            quote_char = text[at - 1 : at]
            end = text.find(quote_char, at) if quote_char in ("'", '"') else -1
            value = text[at:end] if end != -1 else None
        else:
            match = _HANDLER.match(text, at)
            value = None if match is None else match.group(1) if match.group(1) is not None else match.group(2)
        if value is None or "(" not in value and "+" not in value:
            continue
        code = html.unescape(value) if "&" in value else value
        if code[:11].lower() == "javascript:":
            code = unquote(code[11:])
        if scan.hidden(at):
            continue
        lowered = code.lower()
        _report(scan, evaluate(code) + _mail_calls(code, lowered) + _shifted_calls(code), code, at)


def _table_ciphers(env: dict, code: str, code_lowered: str) -> list[str]:
    """What two table decoders assemble from the script's own strings:
    `table.charAt(indices.charCodeAt(j) - 48)` (WordPress email encoders'
    "ASCII mixer"), and `key.indexOf(coded.charAt(i)) - shift` (the
    "coded"/"key" email obfuscator of many academic pages)."""
    found = []
    if "charat(" not in code_lowered:
        return found
    for match in _CHAR_TABLE.finditer(code):
        table, indices = env.get(match.group(1)), env.get(match.group(2))
        if isinstance(table, str) and isinstance(indices, str):
            offset = int(match.group(3))
            found.append("".join(_at(table, ord(c) - offset) for c in indices))
    for match in _KEY_CIPHER.finditer(code):
        key, coded = env.get(match.group(1)), env.get(match.group(2))
        if isinstance(key, str) and isinstance(coded, str) and key:
            shift = len(coded)
            found.append("".join(key[(key.index(c) - shift) % len(key)] if c in key else c for c in coded))
    return found


def _at(table: str, index: int) -> str:
    return table[index] if 0 <= index < len(table) else _UNKNOWN


def _mail_calls(code: str, code_lowered: str) -> list[str]:
    """Calls of a mail-building function with the address's halves as string
    arguments: SPIP's lancerlien('acme.com','info'), mail('info','acme','com') ...
    The natural order is tried first, then the reversed one (SPIP's)."""
    found = []
    for at in anchors.positions(code_lowered, ("mail", "lancerlien", "contact")):
        start = at
        while start and (code[start - 1].isalnum() or code[start - 1] == "_"):
            start -= 1
        match = _MAIL_CALL.match(code, start)
        if match is None:
            continue
        p = [_js_string(literal) for literal in _STRING.findall(match.group(2))]
        if len(p) == 2 and p[1] and p[1] in p[0]:  # SPIP: lancerlien('info..åt..acme.com', '..åt..')
            found.append(p[0].replace(p[1], "@"))
            continue
        orders = [f"{p[0]}@{p[1]}", f"{p[1]}@{p[0]}"] if len(p) == 2 else [f"{p[0]}@{p[1]}.{p[2]}", f"{p[1]}@{p[2]}.{p[0]}"]
        found += [value for value in orders if normalize_email(value) is not None][:1]  # the natural order first
    return found


def _shifted_calls(code: str) -> list[str]:
    """A decrypting call's string argument, every character shifted back:
    CryptX's DeCryptX('jogpAbdnf/dpn') (+1, or "shift¦text¦sign"), and
    UnCryptMailto('nbjmup;...') variants; kept when the result is a mailto:
    link or exactly an address."""
    found = []
    for match in _CRYPT_CALL.finditer(code):
        encoded = match.group(1)
        if encoded.count("\u00a6") == 2:  # CryptX: shift, text, sign
            shift, encoded, sign = encoded.split("\u00a6")
            shifts = [int(shift) if sign != "0" else -int(shift)] if shift.isdigit() else []
        else:
            shifts = [n for n in range(-26, 27) if n]
        for shift in shifts:
            if len(shifts) > 1 and "@" not in _shift(encoded[:80], shift) and _shift(encoded[:7], shift).lower() != "mailto:":
                continue  # neither a mailto: link nor an address at this shift
            decoded = _shift(encoded, shift)
            if decoded[:7].lower() == "mailto:":
                found.append(decoded[7:].partition("?")[0])
                break
            if normalize_email(decoded) is not None and decoded.strip() == decoded:
                found.append(decoded)
                break
    return found


def _data_mail_attribute(scan, at: int) -> None:
    """data-email="aW5mb0BhY21lLmNvbQ==" and the like: a theme's script shows
    the decoded value. Tried: Base64, reversed, ROT13, percent-encoding."""
    match = _DATA_MAIL.match(scan.text, at)
    if match is None or "cfemail" in match.group() or normalize_email(match.group(1)) is not None:
        return  # a plain value is the plain pass's
    value = html.unescape(match.group(1))
    for decoded in (_base64(value), value[::-1], codecs.decode(value, "rot13"), unquote(value)):
        if decoded and "@" in decoded:
            address = normalize_email(decoded.strip())
            if address is not None:
                scan.suppress(match.start(1), match.end(1))
                scan.add(address, SCRIPT)
                return


def _shift(text: str, shift: int) -> str:
    return "".join(chr(ord(c) - shift) if 0 <= ord(c) - shift < 0x110000 else _UNKNOWN for c in text)


def _joomla_hidden_mail(scan, at: int) -> None:
    """Joomla 4's <joomla-hidden-mail first="base64 user" last="base64 domain" text="...">."""
    end = scan.lowered.find(">", at)
    if end == -1:
        return
    attributes = {m.group(1).lower(): m.group(2) for m in _ATTRIBUTE.finditer(scan.text, at, end)}
    user, domain = _base64(attributes.get("first")), _base64(attributes.get("last"))
    if user is not None and domain is not None:
        scan.add(normalize_email(f"{user}@{domain}"), SCRIPT, at)
    text = _base64(attributes.get("text"))
    for address in addresses_in(text or ""):
        scan.add(address, SCRIPT, at)


def _base64(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def _report(scan, outputs: list[str], raw: str, at: int, literals: list[str] | None = None) -> None:
    whole = None
    seen = set()
    for value in outputs:
        if "@" not in value and "&" not in value and "%" not in value:
            continue
        for shown in _readings(value):
            for address in addresses_in(shown):
                if whole is None:
                    # An address whole in one literal (plain, escaped or with entities) is the plain family's.
                    values = _literals(raw) if literals is None else literals
                    whole = " ".join(html.unescape(value) for value in values).lower()
                if address not in seen and address not in whole:
                    seen.add(address)
                    scan.add(address, SCRIPT)


def _readings(value: str) -> list[str]:
    """The text of a value as the page would show it: entities decoded, and a
    percent-encoded mailto: link decoded."""
    shown = html.unescape(value) if "&" in value else value
    return [shown, unquote(shown)] if "%" in shown else [shown]


def _literals(code: str) -> list[str]:
    return [_js_string(token) for token in _TOKEN.findall(code) if token[0] in "'\"`"]


def _js_string(literal: str) -> str:
    body = literal[1:-1]
    return _JS_STRING_ESCAPE.sub(_js_escape, body) if "\\" in body else body


def _js_escape(match: re.Match) -> str:
    escape = match.group(1)
    if escape[0] == "u" and len(escape) > 1:
        code = int(escape[2:-1] if escape[1] == "{" else escape[1:], 16)
        return chr(code) if code < 0x110000 else _UNKNOWN
    if escape[0] == "x" and len(escape) == 3:
        return chr(int(escape[1:], 16))
    return _SIMPLE_ESCAPES.get(escape, escape)


def evaluate(code: str, depth: int = 0) -> list[str]:
    """Every string value the script's literal expressions produce."""
    return _Evaluator(code, depth).run()


class _Evaluator:
    """Reads a script as statements of string expressions; see the module docstring."""

    def __init__(self, code: str, depth: int):
        self.tokens: list[tuple[str, str]] = []
        self.literals: list[str] = []  # every string literal, decoded
        for token in _TOKEN.findall(code, 0, len(code))[:_MAX_TOKENS]:
            first = token[0]
            if first in "'\"`":
                self.tokens.append(("str", token))
                self.literals.append(_js_string(token))
            elif first.isdigit():
                self.tokens.append(("num", token))
            elif first.isalpha() or first in "_$":
                self.tokens.append(("name", token))
            elif not token.startswith(("//", "/*")):
                self.tokens.append(("op", token))
        self.tokens.append(("end", ""))
        self.depth = depth
        self.nesting = 0  # of terms inside terms: "((((" must not exhaust the stack
        self.env: dict[str, object] = {}
        self.outputs: list[str] = []

    def run(self) -> list[str]:
        i, tokens = 0, self.tokens
        while tokens[i][0] != "end":
            kind, value = tokens[i]
            if kind == "name" and value in _KEYWORDS:
                i += 1
                continue
            if kind == "name":
                path, j = self._path(i)
                if tokens[j][1] in ("=", "+="):
                    result, k = self._expression(j + 1)
                    if tokens[j][1] == "+=":
                        result = _concat(self.env.get(path), result)
                    self.env[path] = result
                    self._output(result)
                    i = max(k, j + 1)
                    continue
            if kind in ("name", "str", "num") or value in ("(", "["):
                result, k = self._expression(i)
                self._output(result)
                i = max(k, i + 1)
                continue
            i += 1
        return self.outputs

    def _output(self, value: object) -> None:
        if isinstance(value, str) and value.strip(_UNKNOWN):
            self.outputs.append(value)

    def _path(self, i: int) -> tuple[str, int]:
        """A dotted name (document.getElementById, addy123) and the index after it."""
        tokens, names = self.tokens, [self.tokens[i][1]]
        j = i + 1
        while tokens[j][1] == "." and tokens[j + 1][0] == "name":
            names.append(tokens[j + 1][1])
            j += 2
        return ".".join(names), j

    def _expression(self, i: int) -> tuple[object, int]:
        value, i = self._term(i)
        while self.tokens[i][1] == "+":
            right, i = self._term(i + 1)
            value = _concat(value, right)
        return value, i

    def _term(self, i: int) -> tuple[object, int]:
        self.nesting += 1
        try:
            return self._term_at(i) if self.nesting < _MAX_NESTING else (None, i + 1)
        finally:
            self.nesting -= 1

    def _term_at(self, i: int) -> tuple[object, int]:
        kind, token = self.tokens[i]
        if kind == "str":
            return self._postfix(_js_string(token), i + 1)
        if kind == "num":
            return self._postfix(str(int(token, 16) if token[1:2] in "xX" else int(token)), i + 1)
        if token == "(":
            value, i = self._expression(i + 1)
            if self.tokens[i][1] == ")":
                i += 1
            return self._postfix(value, i)
        if token == "[":
            items, i = self._arguments(i + 1, "]")
            return self._postfix(items, i)
        if kind == "name":
            path, j = self._path(i)
            if self.tokens[j][1] == "(":
                arguments, j = self._arguments(j + 1, ")")
                return self._postfix(self._call(path, arguments), j)
            return self._postfix(self.env.get(path), j)
        return None, i

    def _arguments(self, i: int, closing: str) -> tuple[list, int]:
        values = []
        while self.tokens[i][1] not in (closing, ";") and self.tokens[i][0] != "end":
            value, j = self._expression(i)
            values.append(value)
            i = j if j > i else i + 1
            if self.tokens[i][1] == ",":
                i += 1
        return values, (i + 1 if self.tokens[i][1] == closing else i)

    def _postfix(self, value: object, i: int) -> tuple[object, int]:
        """Method calls on a value: split / reverse / join / replace / case, concat."""
        tokens = self.tokens
        while tokens[i][1] == "." and tokens[i + 1][0] == "name" and tokens[i + 2][1] == "(":
            method = tokens[i + 1][1]
            arguments, i = self._arguments(i + 3, ")")
            value = _method(value, method, arguments)
        return value, i

    def _call(self, path: str, arguments: list) -> object:
        name = path.rpartition(".")[2]
        first = arguments[0] if arguments else None
        if name == "fromCharCode":
            try:
                return "".join(chr(int(a)) for a in arguments)
            except (TypeError, ValueError, OverflowError):
                return None
        if not isinstance(first, str):
            return None
        if name in ("unescape", "decodeURIComponent", "decodeURI"):
            return unquote(first)
        if name == "atob":
            try:
                return base64.b64decode(first, validate=False).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return None
        if name == "eval" and self.depth < _MAX_DEPTH:
            self.outputs += evaluate(first, self.depth + 1)
            return None
        if name in ("write", "writeln"):
            return "".join(a if isinstance(a, str) else _UNKNOWN for a in arguments)
        return None


def _concat(left: object, right: object) -> str:
    return (left if isinstance(left, str) else _UNKNOWN) + (right if isinstance(right, str) else _UNKNOWN)


def _method(value: object, method: str, arguments: list) -> object:
    first = arguments[0] if arguments else None
    if method == "split" and isinstance(value, str) and isinstance(first, str):
        return list(value) if first == "" else value.split(first)
    if method == "reverse" and isinstance(value, list):
        return value[::-1]
    if method == "join" and isinstance(value, list):
        separator = first if isinstance(first, str) else ","
        return separator.join(v if isinstance(v, str) else _UNKNOWN for v in value)
    if method == "replace" and isinstance(value, str) and len(arguments) == 2:
        if isinstance(first, str) and isinstance(arguments[1], str):
            return value.replace(first, arguments[1], 1)
    if method in ("toLowerCase", "toUpperCase") and isinstance(value, str):
        return value.lower() if method == "toLowerCase" else value.upper()
    if method == "concat" and isinstance(value, str):
        return value + "".join(a if isinstance(a, str) else _UNKNOWN for a in arguments)
    return None


# ---------------------------------------------------------------- decoders in markup


def typo3_decrypt(encoded: str, offset: int) -> str:
    """TYPO3's spam protection undone: each character of the ranges "+" .. ":",
    "@" .. "Z" and "a" .. "z" shifted by `offset` within its range."""
    out = []
    for char in encoded:
        code = ord(char)
        for low, high in ((0x2B, 0x3A), (0x40, 0x5A), (0x61, 0x7A)):
            if low <= code <= high:
                code = low + (code - low + offset) % (high - low + 1)
                break
        out.append(chr(code))
    return "".join(out)


def _typo3(scan, at: int) -> None:
    """linkTo_UnCryptMailto('...') or data-mailto-token="...": TYPO3's shift of the mailto: link."""
    window = scan.text[at : at + 600]
    window = unquote(html.unescape(window)) if "%" in window or "&" in window else window
    for pattern in (_TYPO3_CALL, _TYPO3_TOKEN):
        match = pattern.match(window)
        if match is not None:
            encoded = match.group(1)
            for offset in range(-26, 27):  # whichever shift gives a mailto: link (tried on the head first)
                if typo3_decrypt(encoded[:7], offset).lower() == "mailto:":
                    decoded = typo3_decrypt(encoded, offset)
                    for address in addresses_in(unquote(decoded[7:].partition("?")[0])):
                        scan.add(address, SCRIPT)
                    break


def _encoder_attribute(scan, at: int) -> None:
    """data-enc-email="vasb[at]npzr.pbz": ROT13 with "[at]" for "@"."""
    match = _ENC_EMAIL.match(scan.text, at)
    if match is not None:
        scan.suppress(match.start(1), match.end(1))
        decoded = codecs.decode(html.unescape(match.group(1)), "rot13").replace("[at]", "@")
        for address in addresses_in(decoded):
            scan.add(address, SCRIPT)


def _attribute_pairs(scan, positions: list[int]) -> None:
    """<a data-user="info" data-domain="acme.com">: a script joins them with "@"."""
    text, lowered = scan.text, scan.lowered
    for at in positions:
        start = lowered.rfind("<", max(0, at - 1024), at)
        end = lowered.find(">", at)
        if start == -1 or end == -1:
            continue
        attributes = {m.group(1).lower(): html.unescape(m.group(2)) for m in _DATA_ATTRIBUTE.finditer(text, start, end)}
        user = _value(attributes, _USER_KEYS)
        domain = _value(attributes, _DOMAIN_KEYS)
        if user is None or domain is None:
            continue
        if _value(attributes, ("name", "nom")) == user and "mail" not in lowered[start:end]:
            continue  # data-name is a person's name unless the element is about mail
        tld = _value(attributes, _TLD_KEYS)
        scan.add(normalize_email(f"{user}@{domain}{'.' + tld.lstrip('.') if tld else ''}"), SCRIPT, start)


def _value(attributes: dict[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        for name, value in attributes.items():
            if name == key or name.endswith("-" + key):
                return value.strip()
    return None


_MAIL_ANCHOR_PASSES = {
    "data-enc-email": _encoder_attribute,
    "linkto_uncryptmailto": _typo3,
    "data-mailto-token": _typo3,
    "joomla-hidden-mail": _joomla_hidden_mail,
}
