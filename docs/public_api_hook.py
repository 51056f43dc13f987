"""MkDocs hook: the list of tfvamp's public API on docs/api/tfvamp.md.

Replaces ``<!-- public API -->`` with one entry per name of ``tfvamp.__all__``
(read statically by griffe, like the reference itself), linked to where the
reference documents it (its module's page) and with its docstring's first
paragraph. A public name without a docstring is a warning (an error with
``--strict``): the reference has no entry for it.
"""
import logging
import os

import griffe

MARKER = "<!-- public API -->"
PACKAGE = "tfvamp"
GROUPS = (("class", "Classes"), ("function", "Functions"), ("module", "Modules"),
          ("attribute", "Attributes"))

log = logging.getLogger(f"mkdocs.hooks.{__name__}")


def on_page_markdown(markdown, page, config, files, **kwargs):
    if MARKER not in markdown:
        return markdown
    root = os.path.dirname(config.config_file_path)
    package = griffe.load(PACKAGE, search_paths=[root], allow_inspection=False,
                          resolve_aliases=True)
    entries = {kind: [] for kind, _ in GROUPS}
    for name in [str(name) for name in package.exports or []]:
        if name.startswith("__"):  # __version__
            continue
        obj = package[name]
        target = obj.final_target if obj.is_alias else obj
        if not target.docstring:
            log.warning(f"{PACKAGE}.{name} ({target.path}) is in {PACKAGE}.__all__ but has "
                        "no docstring, so the API reference does not document it")
            continue
        summary = " ".join(target.docstring.value.split("\n\n", 1)[0].split())
        entries.setdefault(target.kind.value, []).append(
            f"- [`{PACKAGE}.{name}`][{target.path}]: {summary}")
    if not any(entries.values()):
        return markdown.replace(MARKER, f"`{PACKAGE}.__all__` lists no names yet.")
    text = []
    for kind, title in GROUPS:
        if entries.get(kind):
            text += [f"**{title}**", "", *entries[kind], ""]
    return markdown.replace(MARKER, "\n".join(text))
