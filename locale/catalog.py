"""The translation catalogs: what needs translating, and whether each catalog has it all.

    .venv/bin/python locale/catalog.py update      # new texts into every django.po, untranslated
    .venv/bin/python locale/catalog.py check       # exit 1 if a text is missing or untranslated
    .venv/bin/python locale/catalog.py init de     # a catalog for another language (a locale name)

It finds texts as Django's makemessages does (templates through Django's own templatize, Python
sources by their gettext calls) but with Babel instead of GNU gettext, so no machine needs
xgettext or msgfmt; `make install` compiles the catalogs with Babel's `pybabel compile`.
"""

from __future__ import annotations

import ast
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
SOURCES = ["dashboard"]
TEMPLATES = ["templates", "dashboard/templates"]
SKIPPED = {"migrations", "__pycache__"}
# Django's translation functions, in Babel's notation: argument positions, "c" the context.
KEYWORDS = {
    "_": None,
    "gettext": None,
    "gettext_lazy": None,
    "gettext_noop": None,
    "ngettext": (1, 2),
    "ngettext_lazy": (1, 2),
    "pgettext": ((1, "c"), 2),
    "pgettext_lazy": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3),
    "npgettext_lazy": ((1, "c"), 2, 3),
}


@dataclass(frozen=True)
class Text:
    """One text to translate, where it was found."""

    id: str | tuple[str, str]  # (singular, plural) for a plural
    context: str | None
    path: str
    comments: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.id[0] if isinstance(self.id, tuple) else self.id, self.context)


def found_texts() -> list[Text]:
    """Every text the sources and templates mark for translation, in file order."""
    return [*_python_texts(), *_template_texts()]


def _files(folders: list[str], suffix: str) -> Iterator[Path]:
    for folder in folders:
        base = ROOT / folder
        if not base.is_dir():
            continue
        for directory, subdirectories, names in os.walk(base):
            subdirectories[:] = sorted(d for d in subdirectories if d not in SKIPPED)
            for name in sorted(names):
                if name.endswith(suffix):
                    yield Path(directory, name)


def _extract(code: bytes, path: Path) -> Iterator[Text]:
    relative = path.relative_to(ROOT).as_posix()
    options = {"encoding": "utf-8"}
    for _line, message, comments, context in extract(
        "python", io.BytesIO(code), KEYWORDS, ("Translators:",), options
    ):
        yield Text(message, context, relative, tuple(comments))


def _python_texts() -> Iterator[Text]:
    # The syntax tree, not tokens: a call inside an f-string is found too.
    for path in _files(SOURCES, ".py"):
        relative = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_bytes(), filename=relative)
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
        for call in sorted(calls, key=lambda node: (node.lineno, node.col_offset)):
            found = _marked(call)
            if found is not None:
                yield Text(*found, relative, ())


def _marked(call: ast.Call) -> tuple[str | tuple[str, str], str | None] | None:
    """(text, context) of a call to one of Django's translation functions with literal texts."""
    function = call.func
    name = function.id if isinstance(function, ast.Name) else getattr(function, "attr", "")
    if name not in KEYWORDS:
        return None
    spec = KEYWORDS[name] or (1,)
    context = None
    texts = []
    for position in spec:
        index, is_context = (
            (position[0], True) if isinstance(position, tuple) else (position, False)
        )
        argument = call.args[index - 1] if len(call.args) >= index else None
        if not (isinstance(argument, ast.Constant) and isinstance(argument.value, str)):
            return None  # a variable: its texts are marked where they are written
        if is_context:
            context = argument.value
        else:
            texts.append(argument.value)
    return (texts[0] if len(texts) == 1 else (texts[0], texts[1])), context


def _template_texts() -> Iterator[Text]:
    # Django's own rewrite of a template into gettext calls, as makemessages feeds xgettext.
    from django.utils.translation.template import templatize

    for path in _files(TEMPLATES, ".html"):
        code = templatize(path.read_text(encoding="utf-8"), origin=str(path))
        # Python's tokenizer (unlike xgettext) minds the template's indentation: drop it. Each
        # gettext call templatize writes is on one line, so no text changes.
        flat = "\n".join(line.lstrip() for line in code.splitlines())
        yield from _extract(flat.encode("utf-8"), path)


def template_catalog() -> Catalog:
    catalog = Catalog(project="modelarts-dashboard", domain="django", fuzzy=False)
    for text in found_texts():
        catalog.add(
            text.id,
            locations=[(text.path, None)],
            auto_comments=text.comments,
            context=text.context,
        )
    return catalog


def catalog_paths() -> list[Path]:
    return sorted(LOCALE.glob("*/LC_MESSAGES/django.po"))


def read(path: Path) -> Catalog:
    with path.open("rb") as po:
        return read_po(po, locale=path.parent.parent.name, domain="django")


def write(catalog: Catalog, path: Path) -> None:
    with path.open("wb") as po:
        write_po(po, catalog, width=100, include_lineno=False, ignore_obsolete=True)


def update() -> None:
    """Bring every catalog up to date with the sources: new texts added untranslated, texts no
    longer used dropped, translations kept."""
    template = template_catalog()
    for path in catalog_paths():
        catalog = read(path)
        template.creation_date = catalog.creation_date  # no header churn from a mere update
        catalog.update(template, no_fuzzy_matching=True, update_header_comment=False)
        write(catalog, path)
        print(f"{path.relative_to(ROOT)}: {len(template)} texts")


def init(locale: str) -> None:
    """An empty catalog for another language, then filled with every text, untranslated."""
    path = LOCALE / locale / "LC_MESSAGES" / "django.po"
    if path.exists():
        raise SystemExit(f"{path.relative_to(ROOT)} exists: use update")
    path.parent.mkdir(parents=True)
    write(Catalog(locale=locale, domain="django", project="modelarts-dashboard", fuzzy=False), path)
    update()


@dataclass(frozen=True)
class Problems:
    missing: list[str]  # in the sources, not in the catalog
    untranslated: list[str]  # in the catalog with an empty (or partly empty) translation
    fuzzy: list[str]  # marked fuzzy: Django would not use them
    unused: list[str]  # in the catalog, no longer in the sources

    def __bool__(self) -> bool:
        return bool(self.missing or self.untranslated or self.fuzzy or self.unused)


def _name(key: tuple[str, str | None]) -> str:
    text, context = key
    return f"{text!r} (context {context!r})" if context else repr(text)


def problems(path: Path) -> Problems:
    wanted = {text.key for text in found_texts()}
    catalog = read(path)
    entries = {
        (m.id[0] if isinstance(m.id, tuple) else m.id, m.context): m for m in catalog if m.id
    }
    strings = [
        (key, m.string if isinstance(m.string, tuple | list) else (m.string,))
        for key, m in entries.items()
    ]
    return Problems(
        missing=sorted(_name(key) for key in wanted - entries.keys()),
        untranslated=sorted(_name(key) for key, found in strings if not all(found)),
        fuzzy=sorted(_name(key) for key, m in entries.items() if m.fuzzy),
        unused=sorted(_name(key) for key in entries.keys() - wanted),
    )


def check() -> int:
    failed = False
    for path in catalog_paths():
        found = problems(path)
        for kind in ("missing", "untranslated", "fuzzy", "unused"):
            for name in getattr(found, kind):
                print(f"{path.relative_to(ROOT)}: {kind}: {name}")
        failed = failed or bool(found)
    if failed:
        print("Run `.venv/bin/python locale/catalog.py update`, translate, then `make install`.")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    import django

    django.setup()
    if argv == ["update"]:
        update()
        return 0
    if argv == ["check"]:
        return check()
    if len(argv) == 2 and argv[0] == "init":
        init(argv[1])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
