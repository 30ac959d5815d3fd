"""The labelled extraction corpus: every published form, every trap.

FORMS maps a form's name to (its source kind, a generator). A generator
takes an address and a `random.Random` and returns the HTML a site or a tool
publishes it as; each obfuscation algorithm is implemented here from its
documented behaviour (Joomla's email cloaking, TYPO3's character shift,
ROT13, Cloudflare's XOR, WordPress encoders' entity and %XX mixes ...), so
the corpus does not depend on anyone's plugin code. The traps (fragments
that look like addresses to a careless reader and publish none) are in
tests/extract_traps.py. `page()` embeds a fragment in a typical page, so
tests and bench/extract.py see each form in the company of ordinary markup.
"""

from __future__ import annotations

import base64
import codecs
import random
from typing import Callable
from urllib.parse import quote

# A generator returns the HTML, or (the HTML, other addresses it publishes).
Generator = Callable[[str, random.Random], "str | tuple[str, set[str]]"]


# ---------------------------------------------------------------- encoders


def entities(text: str, rng: random.Random | None = None) -> str:
    """Every character as a decimal or hexadecimal reference (WordPress
    "Email Address Encoder" style: a random mix of both)."""
    out = []
    for char in text:
        hexadecimal = rng.random() < 0.5 if rng is not None else False
        out.append(f"&#x{ord(char):x};" if hexadecimal else f"&#{ord(char)};")
    return "".join(out)


def percent(text: str) -> str:
    return "".join(f"%{byte:02x}" for byte in text.encode())


def cloudflare_hex(address: str, key: int) -> str:
    """Cloudflare email protection: a key byte, then each byte XOR-ed with it."""
    return f"{key:02x}" + "".join(f"{byte ^ key:02x}" for byte in address.encode())


def typo3_encrypt(text: str, offset: int) -> str:
    """TYPO3's spamProtectEmailAddresses: each character of "+" .. ":",
    "@" .. "Z" and "a" .. "z" moved by `offset` within its own range."""
    out = []
    for char in text:
        code = ord(char)
        for low, high in ((0x2B, 0x3A), (0x40, 0x5A), (0x61, 0x7A)):
            if low <= code <= high:
                code = low + (code - low + offset) % (high - low + 1)
                break
        out.append(chr(code))
    return "".join(out)


def js_literal_pieces(text: str, rng: random.Random, quote_char: str = "'") -> str:
    """`text` as a concatenation of 2-4 character string literals."""
    pieces, i = [], 0
    while i < len(text):
        size = rng.randint(2, 4)
        pieces.append(quote_char + text[i : i + size].replace(quote_char, "\\" + quote_char) + quote_char)
        i += size
    return " + ".join(pieces)


def _joomla_chunks(text: str, rng: random.Random) -> str:
    """Joomla's cloaking writes short chunks, some characters as entities."""
    chunks, i = [], 0
    while i < len(text):
        size = rng.randint(1, 4)
        chunk = "".join(f"&#{ord(c)};" if c in "@." or rng.random() < 0.3 else c for c in text[i : i + size])
        chunks.append(f"'{chunk}'")
        i += size
    return " + ".join(chunks)


# ---------------------------------------------------------------- the forms


def _joomla(address: str, rng: random.Random) -> str:
    ident = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    user, _, domain = address.partition("@")
    return (
        f'<span id="cloak{ident}">This email address is being protected from spambots. '
        "You need JavaScript enabled to view it.</span><script type='text/javascript'>\n"
        f"document.getElementById('cloak{ident}').innerHTML = '';\n"
        "var prefix = '&#109;a' + 'i&#108;' + '&#116;o';\n"
        "var path = 'hr' + 'ef' + '=';\n"
        f"var addy{ident} = {_joomla_chunks(user + '@', rng)};\n"
        f"addy{ident} = addy{ident} + {_joomla_chunks(domain, rng)};\n"
        f"var addy_text{ident} = {_joomla_chunks(address, rng)};"
        f"document.getElementById('cloak{ident}').innerHTML += '<a ' + path + '\\'' + prefix + ':' + "
        f"addy{ident} + '\\'>'+addy_text{ident}+'<\\/a>';\n</script>"
    )


def _joomla_1_5(address: str, rng: random.Random) -> str:
    ident = rng.randrange(10000, 99999)
    user, _, domain = address.partition("@")
    name, _, tld = domain.rpartition(".")
    return (
        "<script language='JavaScript' type='text/javascript'>\n <!--\n"
        " var prefix = 'ma' + 'il' + 'to';\n var path = 'hr' + 'ef' + '=';\n"
        f" var addy{ident} = '{user}' + '@';\n addy{ident} = addy{ident} + '{name}' + '.' + '{tld}';\n"
        f" document.write( '<a ' + path + '\\'' + prefix + ':' + addy{ident} + '\\'>' );\n"
        f" document.write( addy{ident} );\n document.write( '<\\/a>' );\n //-->\n </script>"
        "<script language='JavaScript' type='text/javascript'>\n <!--\n"
        " document.write( '<span style=\\'display: none;\\'>' );\n //-->\n </script>"
        "This e-mail address is being protected from spambots. You need JavaScript enabled to view it.\n"
        "<script language='JavaScript' type='text/javascript'>\n <!--\n document.write( '</' );\n"
        " document.write( 'span>' );\n //-->\n </script>"
    )


def _joomla_4(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    return (
        f'<joomla-hidden-mail  is-link="1" is-email="1" first="{b64(user)}" last="{b64(domain)}" '
        f'text="{b64(address)}" base="" >This email address is being protected from spambots. '
        "You need JavaScript enabled to view it.</joomla-hidden-mail>"
    )


def _cryptx(address: str, rng: random.Random) -> str:
    encoded = "".join(chr(ord(c) + 1) for c in address)
    return f"<a href=\"javascript:DeCryptX('{encoded}')\">Send mail</a>"


def _cryptx_shift(address: str, rng: random.Random) -> str:
    shift, sign = rng.randint(1, 5), rng.choice("01")
    moved = shift if sign == "1" else -shift  # the decoder subtracts (sign 1) or adds (sign 0) the shift
    encoded = "".join(chr(ord(c) + moved) for c in "mailto:" + address)[7:]
    return f"<a href=\"javascript:DeCryptX('{shift}\u00a6{encoded}\u00a6{sign}')\">Send mail</a>"


def _ascii_mixer(address: str, rng: random.Random) -> str:
    """WordPress email encoders' "ASCII mixer": a shuffled table of the
    characters of the link, and the link as table positions (+48)."""
    link = f'<a href="mailto:{address}">{address}</a>'
    table = list(dict.fromkeys(link))
    rng.shuffle(table)
    indices = "".join(chr(table.index(c) + 48) for c in link)
    escape = lambda text: text.replace("\\", "\\\\").replace('"', '\\"')  # noqa: E731
    return (
        '<script type="text/javascript">/*<![CDATA[*/'
        f'ML="{escape("".join(table))}";MI="{escape(indices)}";OT="";'
        "for(j=0;j<MI.length;j++){OT+=ML.charAt(MI.charCodeAt(j)-48);}document.write(OT);/*]]>*/</script>"
    )


def _coded_key(address: str, rng: random.Random) -> str:
    """The "coded"/"key" obfuscator: each alphanumeric character moved
    len(address) places along a shuffled key."""
    key = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    rng.shuffle(key)
    key = "".join(key)
    shift = len(address)
    coded = "".join(key[(key.index(c) + shift) % len(key)] if c in key else c for c in address)
    return (
        "<script type=\"text/javascript\">\n<!--\ncoded = \"" + coded + "\";\nkey = \"" + key + "\";\n"
        "shift = coded.length;\nlink = \"\";\nfor (i = 0; i < coded.length; i++) {\n"
        "  if (key.indexOf(coded.charAt(i)) == -1) { link += coded.charAt(i); }\n"
        "  else { pos = (key.indexOf(coded.charAt(i)) - shift + key.length) % key.length; link += key.charAt(pos); }\n"
        "}\ndocument.write(\"<a href='mailto:\" + link + \"'>\" + link + \"</a>\");\n//-->\n</script>"
    )


def _mail_call(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    name, _, tld = domain.rpartition(".")
    if rng.random() < 0.5:
        return f"<a href=\"javascript:mailme('{user}','{domain}')\">Mail</a>"
    return f"<a href=\"#\" onclick=\"sendMail('{user}', '{name}', '{tld}'); return false;\">Mail</a>"


def _javascript_href(address: str, rng: random.Random) -> str:
    return f"<a href=\"javascript:location.href='mai'+'lto:'+{js_literal_pieces(address, rng)}\">Mail us</a>"


def _at_image(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    source = rng.choice(["/images/at.gif", "/img/at-sign.png", "icons/email_at.svg"])
    return f'<p>E-mail: {user}<img src="{source}" alt="" width="12" height="12">{domain}</p>'


def _at_icon(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f'<p>{user}<i class="fa fa-at" aria-hidden="true"></i>{domain}</p>'


def _brace_list(address: str, rng: random.Random) -> tuple[str, set[str]]:
    user, _, domain = address.partition("@")
    other = "k.lee" if user != "k.lee" else "a.ng"
    return f"<p class=\"authors\">{{{user}, {other}}}@{domain}</p>", {f"{other}@{domain}"}


def _nospam(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return rng.choice([f"<p>{user}@NOSPAM.{domain}</p>", f"<p>{user}NOSPAM@{domain}</p>",
                       f"<p>{address}.REMOVE-THIS</p>"])


def _css_external_class(address: str, rng: random.Random) -> str:
    return f'<span class="eeb-rtl" data-eeb-type="mailto">{address[::-1]}</span>'


def _data_email_base64(address: str, rng: random.Random) -> str:
    return f'<a class="js-mail" href="#" data-email="{base64.b64encode(address.encode()).decode()}">Email</a>'


def _pipermail_page(address: str, rng: random.Random) -> tuple[str, set[str]]:
    """A whole pipermail message page: the list's mailto with In-Reply-To,
    the sender in words, a quoted address in the body."""
    user, _, domain = address.partition("@")
    return (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2//EN">\n<HTML>\n <HEAD>\n   <TITLE> [Tools-dev] Patch review\n'
        '   </TITLE>\n   <LINK REL="Index" HREF="index.html" >\n   <LINK REL="made" HREF="mailto:tools-dev%40lists.'
        'kernel-tools.org?Subject=Re%3A%20%5BTools-dev%5D%20Patch%20review&In-Reply-To=%3C87r5abcdef.fsf%40gnus.org%3E">\n'
        '   <META NAME="robots" CONTENT="index,nofollow">\n <style type="text/css">\n pre { white-space: pre-wrap; }\n'
        " </style>\n </HEAD>\n <BODY BGCOLOR=\"#ffffff\">\n   <H1>[Tools-dev] Patch review</H1>\n    <B>Jane Roe</B> \n"
        '    <A HREF="mailto:tools-dev%40lists.kernel-tools.org?Subject=Re%3A%20%5BTools-dev%5D%20Patch%20review&'
        'In-Reply-To=%3C87r5abcdef.fsf%40gnus.org%3E"\n       TITLE="[Tools-dev] Patch review">'
        f"{user} at {domain}\n       </A><BR>\n    <I>Tue Jan 17 18:02:18 CET 2006</I>\n    <P><UL>\n"
        '        <LI>Previous message: <A HREF="012344.html">[Tools-dev] Build failure at lab.example.org\n</A></li>\n'
        '        <LI> <B>Messages sorted by:</B> \n              <a href="date.html#12345">[ date ]</a>\n'
        '              <a href="thread.html#12345">[ thread ]</a>\n         </LI>\n       </UL>\n    <HR>  \n'
        "<!--beginarticle-->\n<PRE>On Mon, 16 Jan 2006 at 10:11, Bob Smith &lt;<A HREF=\"http://lists.kernel-tools.org/"
        'mailman/listinfo/tools-dev">bob.smith at kernel-tools.org</A>&gt; wrote:\n&gt;<i> I looked at docs.kernel-tools.org'
        "\n</I>&gt;<i> and the patch at bugs.kernel-tools.org/123 is fine.\n</I>\nThanks, I'm at pycon.org this week.\n"
        "</PRE>\n<!--endarticle-->\n    <HR>\n</body></html>",
        {"tools-dev@lists.kernel-tools.org", "bob.smith@kernel-tools.org"},
    )


def _document_write(address: str, rng: random.Random) -> str:
    return (
        "<script type=\"text/javascript\">\n<!--\n"
        f"document.write('<a href=\"mai' + 'lto:' + {js_literal_pieces(address, rng)} + '\">');\n"
        f"document.write({js_literal_pieces(address, rng)});\ndocument.write('</a>');\n//-->\n</script>"
    )


def _inner_html(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return (
        '<span id="contact-mail"></span><script>\n'
        f"var u = '{user}', d = '{domain}';\n"
        "var link = 'mailto:' + u + '@' + d;\n"
        "document.getElementById('contact-mail').innerHTML = '<a href=\"' + link + '\">' + u + '@' + d + '</a>';\n"
        "</script>"
    )


def _reversed(address: str, rng: random.Random) -> str:
    return f"<script>document.write('{address[::-1]}'.split('').reverse().join(''));</script>"


def _from_char_code(address: str, rng: random.Random) -> str:
    codes = ",".join(str(ord(c)) for c in f'<a href="mailto:{address}">{address}</a>')
    return f"<script>document.write(String.fromCharCode({codes}));</script>"


def _rot13(address: str, rng: random.Random) -> str:
    encoded = codecs.encode(f'<a href="mailto:{address}">{address}</a>', "rot13").replace('"', '\\"')
    return (
        '<script type="text/javascript">document.write("' + encoded + '".replace(/[a-zA-Z]/g, '
        'function(c){return String.fromCharCode((c<="Z"?90:122)>=(c=c.charCodeAt(0)+13)?c:c-26);}));</script>'
    )


def _data_attributes(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f'<a class="email-link" href="#" data-user="{user}" data-domain="{domain}">Send us an email</a>'


def _wordpress_entities(address: str, rng: random.Random) -> str:
    return f'<a href="{entities("mailto:" + address, rng)}">{entities(address, rng)}</a>'


def _wordpress_percent(address: str, rng: random.Random) -> str:
    return f'<a href="mailto:{percent(address)}">{entities(address, rng)}</a>'


def _wordpress_eval(address: str, rng: random.Random) -> str:
    code = f"document.write('<a href=\"mailto:{address}\">{address}</a>');"
    return f'<script type="text/javascript">eval(decodeURIComponent(\'{percent(code)}\'))</script>'


def _wordpress_enc_email(address: str, rng: random.Random) -> str:
    encoded = codecs.encode(address.replace("@", "[at]"), "rot13")
    return (
        f'<a href="javascript:;" data-enc-email="{encoded}" class="mail-link" data-wpel-link="ignore">'
        "<span>*protected email*</span></a>"
    )


def _typo3(address: str, rng: random.Random) -> str:
    offset = rng.choice([n for n in range(-10, 11) if n])
    token = typo3_encrypt("mailto:" + address, offset)
    user, _, domain = address.partition("@")
    return f"<a href=\"javascript:linkTo_UnCryptMailto('{token}');\">{user}(at){domain}</a>"


def _typo3_percent(address: str, rng: random.Random) -> str:
    offset = rng.choice([n for n in range(-10, 11) if n])
    token = quote(typo3_encrypt("mailto:" + address, offset))
    return f'<a href="javascript:linkTo_UnCryptMailto(%27{token}%27, {-offset});">Email</a>'


def _typo3_token(address: str, rng: random.Random) -> str:
    offset = rng.choice([n for n in range(-10, 11) if n])
    token = typo3_encrypt("mailto:" + address, offset)
    return f'<a href="#" data-mailto-token="{token}" data-mailto-vector="{offset}">Contact</a>'


def _rot13_class(address: str, rng: random.Random) -> str:
    return f'<span class="rot13">{codecs.encode(address, "rot13")}</span>'


def _spamspan(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return (
        f'<span class="spamspan"><span class="u">{user}</span> [at] '
        f'<span class="d">{domain.replace(".", " [dot] ")}</span></span>'
    )


def _spip(address: str, rng: random.Random) -> str:
    """SPIP's mail crypt: the link's title with "..åt..", an onclick joining
    the halves (or replacing the mark), an "@" drawn by a styled span."""
    user, _, domain = address.partition("@")
    call = rng.choice([f"lancerlien('{user}','{domain}')", f"mc_lancerlien('{user}','{domain}')",
                       f"lancerlien('{user}..&aring;t..{domain}','..&aring;t..')"])
    return (
        f'<a href="#" title="{user}..&aring;t..{domain}" onclick="location.href={call}; return false;" '
        f"class=\"spip_mail\">{user}<span class='spancrypt'>&nbsp;</span>{domain}</a>"
    )


def _onclick(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return (
        f"<a href=\"#\" onclick=\"location.href='mai'+'lto:'+'{user}'+'&#64;'+'{domain}'; return false;\">"
        "Write to us</a>"
    )


def _hidden_element(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f'{user}&#64;<img style="display:none" src="/img/x.gif" alt="">{domain}'


def _hidden_span(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f'{user}@<span style="display: none;">nospam</span>{domain}'


def _cloudflare(address: str, rng: random.Random) -> str:
    return (
        f'<a href="/cdn-cgi/l/email-protection" class="__cf_email__" '
        f'data-cfemail="{cloudflare_hex(address, rng.randrange(1, 255))}">[email&#160;protected]</a>'
    )


def _cloudflare_percent(address: str, rng: random.Random) -> str:
    return (
        f'<a href="/cdn-cgi/l/email-protection%23{cloudflare_hex(address, rng.randrange(1, 255))}">'
        "<span>[email&#160;protected]</span></a>"
    )


def _css_inline(address: str, rng: random.Random) -> str:
    return f'<span style="unicode-bidi: bidi-override; direction: rtl;">{address[::-1]}</span>'


def _css_class(address: str, rng: random.Random) -> str:
    return (
        "<style>.obf { direction: rtl; unicode-bidi: bidi-override; }</style>"
        f'<p>Mail: <span class="obf">{address[::-1]}</span></p>'
    )


def _pipermail_header(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return (
        "<H1>[Acme-dev] Release plans</H1>\n<B>Jane Roe</B>\n"
        '<A HREF="mailto:acme-dev%40lists.acme-project.org?Subject=Re%3A%20%5BAcme-dev%5D%20Release%20plans'
        '&In-Reply-To=%3C20060117170218.GC335%40divmod.com%3E" TITLE="[Acme-dev] Release plans">'
        f"{user} at {domain}\n       </A><BR>\n<I>Tue Jan 17 17:02:18 CET 2006</I>\n"
        "<P><UL><LI>Previous message: <A HREF=\"000123.html\">[Acme-dev] Build</A></li></UL>"
    )


def _pipermail_quote(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f"<PRE>On Mon, Jan 16, 2006 at 10:11:12AM +0100, {user} at {domain} wrote:\n&gt; I agree.\n</PRE>"


def _archive_in_prose(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return rng.choice([
        f"<pre>Please email {user} at {domain} for details.</pre>",
        f"<pre>Contact: {user} at {domain}\n</pre>",
        f"<pre>On Mon, 16 Jan 2006, Bob Smith, {user} at {domain} wrote:\n&gt; hi</pre>",
        f"<pre>-- \nJane Roe\n{user} at {domain}\n</pre>",
    ])


def _impressum(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    name, _, tld = domain.rpartition(".")
    return rng.choice([f"<p>E-Mail: {user}(at){name}(punkt){tld}</p>", f"<p>Courriel : {user} [at] {name} [point] {tld}</p>",
                       f"<p>E-Mail: {user} (at) {name} . {tld}</p>"])


def _no_break_spaces(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f"<td>{user}&nbsp;at&nbsp;{domain}</td>"


def _no_break_brackets(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f"<p>{user}&nbsp;[at]&nbsp;{domain.replace('.', '&nbsp;[dot]&nbsp;')}</p>"


def _at_then_dot(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return rng.choice([f"<p>{user}@{domain.replace('.', '[dot]')}</p>", f"<p>{user}@{domain.replace('.', ' dot ')}</p>",
                       f"<p>{user}@{domain.replace('.', '(punkt)')}</p>"])


def _at_span(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f'<span class="email">{user}<span class="at"></span>{domain}</span>'


def _archive_dot(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f"<p>Maintainer: {user} at {domain.replace('.', ' dot ')}</p>"


def _archive_paren(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f"<li>Send patches to {user} (at) {domain}</li>"


def _archive_upper(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f"<td>{user.upper()} AT {domain.upper().replace('.', ' DOT ')}</td>"


def _dash_at(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f"<p>(email : {user} -AT- {domain.replace('.', ' -DOT- ')})</p>"


def _hypermail(address: str, rng: random.Random) -> str:
    obscured = address.replace("@", "_at_")
    return (
        f'<!-- received="Tue Jan 17 17:02:18 2006" -->\n<!-- email="{obscured}" -->\n'
        '<!-- id="20060117170218.GC335_at_divmod.com" -->\n'
        f'<address class="headers"><span id="from"><dfn>From</dfn>: Jane Roe &lt;<a href="mailto:{obscured}'
        f'?Subject=Re:%20Release%20plans">{obscured}</a>&gt;</span><br />\n'
        '<span id="date"><dfn>Date</dfn>: Tue Jan 17 2006 - 17:02:18 CET</span><br />\n'
        '<span id="message-id"><dfn>Message-ID</dfn>: &lt;20060117170218.GC335_at_divmod.com&gt;</span></address>'
    )


def _hyperkitty(address: str, rng: random.Random) -> str:
    return f'<div class="email-body">Thanks, I pushed the fix.\n\n-- \n{address.replace("@", "(a)")}\n</div>'


def _mhonarc(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    rot = codecs.encode(address, "rot13")
    return (
        f"<!--X-Subject: Release plans -->\n<!--X-From-R13: Wnar Ebr &lt;{rot}&gt; -->\n"
        "<!--X-Message-Id: 20060117170218.GC335@divmod.com -->\n<!--X-Reference: 4A3B2C1D.5060708@acme.net -->\n"
        f"<ul><li><em>From</em>: Jane Roe &lt;{user}&#64;{domain}&gt;</li>\n"
        "<li><em>Message-id</em>: &lt;<a href=\"msg00012.html\">20060117170218.GC335&#64;divmod.com</a>&gt;</li>\n"
        "<li><em>References</em>: &lt;4A3B2C1D.5060708&#64;acme.net&gt;</li></ul>"
    )


def _comment_split(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f"<p>{user}<!-- -->&#64;<!-- -->{domain}</p>"


def _span_split(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f"<p>E-mail: <span>{user}</span>@<span>{domain}</span></p>"


def _bold_at(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f"<p>{user}<b>@</b>{domain}</p>"


def _wbr(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    name, _, tld = domain.rpartition(".")
    return f"<p>{user}<wbr>@{name}<wbr>.{tld}</p>"


def _soft_hyphen(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f"<p>{user[:2]}&shy;{user[2:]}@{domain[:3]}\u00ad{domain[3:]}</p>"


def _zero_width(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f"<p>{user[:1]}\u200b{user[1:]}\u200b@{domain.replace('.', chr(0x200B) + '.')}</p>"


def _spaced(address: str, rng: random.Random) -> str:
    user, _, domain = address.partition("@")
    return f"<p>Write to {user} @ {domain.replace('.', ' . ')}</p>"


def _full_width(address: str, rng: random.Random) -> str:
    return f"<p>连络: {address.replace('@', chr(0xFF20)).replace('.', chr(0xFF0E))}</p>"


FORMS: dict[str, tuple[str, Generator]] = {
    "plain": ("text", lambda a, r: f"<p>Contact: {a}</p>"),
    "mailto": ("mailto", lambda a, r: f'<a href="mailto:{a}?subject=Hello">Write to us</a>'),
    "entity": ("entity", lambda a, r: f"<p>{a.replace('@', '&#64;').replace('.', '&#46;')}</p>"),
    "bracketed": ("obfuscated", lambda a, r: f"<p>{a.replace('@', ' [at] ').replace('.', ' [dot] ')}</p>"),
    "jsonld": ("jsonld", lambda a, r: f'<script type="application/ld+json">{{"@type":"Organization","email":"{a}"}}</script>'),
    "itemprop": ("itemprop", lambda a, r: f'<span itemprop="email">{a}</span>'),
    "js_escape": ("js", lambda a, r: f'<script>var contact = "{a.replace("@", chr(92) + "u0040")}";</script>'),
    "cloudflare": ("cfemail", _cloudflare),
    "cloudflare_percent": ("cfemail", _cloudflare_percent),
    # archive
    "pipermail_header": ("archive", _pipermail_header),
    "pipermail_quote": ("archive", _pipermail_quote),
    "archive_in_prose": ("archive", _archive_in_prose),
    "impressum": ("obfuscated", _impressum),
    "at_span": ("markup", _at_span),
    "at_then_dot": ("obfuscated", _at_then_dot),
    "no_break_spaces": ("archive", _no_break_spaces),
    "no_break_brackets": ("obfuscated", _no_break_brackets),
    "archive_dot": ("obfuscated", _archive_dot),
    "archive_paren": ("obfuscated", _archive_paren),
    "archive_upper": ("obfuscated", _archive_upper),
    "dash_at": ("obfuscated", _dash_at),
    "hypermail": ("archive", _hypermail),
    "hyperkitty": ("archive", _hyperkitty),
    "mhonarc": ("entity", _mhonarc),
    # markup
    "comment_split": ("markup", _comment_split),
    "span_split": ("markup", _span_split),
    "bold_at": ("markup", _bold_at),
    "wbr": ("markup", _wbr),
    "soft_hyphen": ("markup", _soft_hyphen),
    "zero_width": ("markup", _zero_width),
    "spaced": ("markup", _spaced),
    "full_width": ("markup", _full_width),
    "hidden_image": ("markup", _hidden_element),
    "hidden_span": ("markup", _hidden_span),
    "spamspan": ("markup", _spamspan),
    # css
    "css_inline": ("css", _css_inline),
    "css_class": ("css", _css_class),
    # scripts
    "at_image": ("markup", _at_image),
    "at_icon": ("markup", _at_icon),
    "brace_list": ("text", _brace_list),
    "nospam": ("obfuscated", _nospam),
    "css_external_class": ("css", _css_external_class),
    "data_email_base64": ("script", _data_email_base64),
    "pipermail_page": ("archive", _pipermail_page),
    "joomla": ("script", _joomla),
    "joomla_1_5": ("script", _joomla_1_5),
    "joomla_4": ("script", _joomla_4),
    "cryptx": ("script", _cryptx),
    "cryptx_shift": ("script", _cryptx_shift),
    "ascii_mixer": ("script", _ascii_mixer),
    "coded_key": ("script", _coded_key),
    "mail_call": ("script", _mail_call),
    "javascript_href": ("script", _javascript_href),
    "document_write": ("script", _document_write),
    "inner_html": ("script", _inner_html),
    "reversed": ("script", _reversed),
    "from_char_code": ("script", _from_char_code),
    "rot13": ("script", _rot13),
    "rot13_class": ("script", _rot13_class),
    "data_attributes": ("script", _data_attributes),
    "wordpress_entities": ("entity", _wordpress_entities),
    "wordpress_percent": ("mailto", _wordpress_percent),
    "wordpress_eval": ("script", _wordpress_eval),
    "wordpress_enc_email": ("script", _wordpress_enc_email),
    "typo3": ("script", _typo3),
    "typo3_percent": ("script", _typo3_percent),
    "typo3_token": ("script", _typo3_token),
    "spip": ("script", _spip),
    "onclick": ("script", _onclick),
}

# Forms whose page shows a second address besides the generated one.
EXTRA_ADDRESSES = {"pipermail_header": {"acme-dev@lists.acme-project.org"}}


# ---------------------------------------------------------------- pages

_FILLER = (
    "<p>Our team builds quality products for customers in every market; the office is open at "
    "9:00 and support answers within a day.</p>"
)


def page(fragment: str, rng: random.Random, filler: int = 6, size: int = 0) -> str:
    """`fragment` in a typical page: head, navigation, prose, footer (and
    prose enough to reach `size` characters)."""
    filler = max(filler, size // len(_FILLER))
    head = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Contact</title>"
        "<link rel='icon' href='/img/logo@2x.png'><style>@media (max-width: 600px) { .nav { display: none } }"
        "</style></head><body><nav><a href='/'>Home</a> <a href='/about/'>About</a></nav><main>"
    )
    body = [_FILLER] * (filler if size else rng.randint(1, filler))
    body.insert(rng.randint(0, len(body)), fragment)
    return head + "".join(body) + "</main><footer>&copy; 2026 Acme</footer></body></html>"


_USERS = ("info", "jane.roe", "sales", "j.smith", "office", "press-desk", "mueller", "team42", "webmaster")
_DOMAINS = ("acme-project.org", "lab.uni-example.de", "widgets.co.uk", "mail.acme.net", "acme.io", "kernel-tools.org")


def address(rng: random.Random) -> str:
    return f"{rng.choice(_USERS)}@{rng.choice(_DOMAINS)}"


def fragment(name: str, published: str, rng: random.Random) -> tuple[str, set[str]]:
    """`name`'s form publishing `published`, and every address the fragment publishes."""
    made = FORMS[name][1](published, rng)
    body, others = made if isinstance(made, tuple) else (made, set())
    return body, {published} | others | EXTRA_ADDRESSES.get(name, set())


def form_sample(name: str, rng: random.Random, size: int = 0) -> tuple[str, set[str]]:
    """One page publishing `name`'s form, and every address it publishes."""
    body, truth = fragment(name, address(rng), rng)
    return page(body, rng, size=size), truth
