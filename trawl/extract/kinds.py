"""The source kinds an address can be found in: the values of its `sources`
field. Documented one by one in the package docstring (trawl/extract/__init__.py)."""

TEXT = "text"
MAILTO = "mailto"
ENTITY = "entity"
OBFUSCATED = "obfuscated"
CFEMAIL = "cfemail"
JS = "js"
JSONLD = "jsonld"
ITEMPROP = "itemprop"
META = "meta"
ARCHIVE = "archive"
MARKUP = "markup"
CSS = "css"
SCRIPT = "script"
SOURCE_KINDS = (TEXT, MAILTO, ENTITY, OBFUSCATED, CFEMAIL, JS, JSONLD, ITEMPROP, META, ARCHIVE, MARKUP, CSS, SCRIPT)
