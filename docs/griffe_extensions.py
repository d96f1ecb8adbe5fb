"""Griffe extensions used by the API reference (``mkdocs.yml``); they change no library file.

* :class:`SphinxMarkup`: the docstrings are Google style with Sphinx markup, rendered here
  as Markdown. griffe's parser knows the plural ``Examples:`` section, whose ``>>>`` lines
  become highlighted code, but reads the singular ``Example:`` (which Google's style guide
  and Napoleon allow) as a generic admonition: Markdown then turns its ``>>>`` lines into
  nested block quotes and outputs such as ``v["params"]["c1"]`` into broken reference links.
  The header is renamed before parsing; roles such as ``:func:`~a.b``` become inline code
  (``b``) and the ``::`` that opens a literal block becomes ``:`` (the indented block is
  already Markdown code).
* :class:`GroupedParameters`: an ``Args:`` entry may document several parameters at once
  (``seed, epoch: ...``), which Sphinx's Napoleon accepts and griffe reads as one parameter
  named ``"seed, epoch"``. The entry is repeated once per name.
* :class:`FlaxModuleSignatures`: a Flax linen module is a dataclass made by
  ``nn.Module.__init_subclass__``, which static analysis cannot see, so griffe finds no
  ``__init__`` and reports every field documented under ``Args:`` as unknown. This gives such
  classes the ``__init__`` Flax generates: the annotated fields in declaration order (those
  of jaxcnn parent modules first), then Flax's keyword-only ``parent`` and ``name``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE_HEADER = re.compile(r"^Example:[ \t]*$", flags=re.MULTILINE)
_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|obj|exc):`(?P<tilde>~?)(?P<target>[^`]+)`")
_LITERAL_MARKER = re.compile(r"(?<=\S)::[ \t]*$", flags=re.MULTILINE)
_PARAMETER_SECTIONS = re.compile(
    r"^(args|arguments|params|parameters|(keyword|other) (args|arguments|params|parameters)):$",
    flags=re.IGNORECASE)
_GROUPED_ITEM = re.compile(r"^(?P<names>\w+(?:,[ \t]*\w+)+)(?P<rest>[ \t]*(?:\(.*\))?:.*)$")
_NAME_LIST = re.compile(r"^\w+(?:,[ \t]*\w+)*,$")
_FLAX_MODULE = {"flax.linen.Module", "flax.linen.module.Module"}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _role_as_code(match: re.Match) -> str:
    target = match["target"]
    return f"`{target.rsplit('.', 1)[-1] if match['tilde'] else target}`"


def sphinx_to_markdown(text: str) -> str:
    """``Example:`` headers, Sphinx roles and ``::`` markers of a docstring as Markdown.

    Example:
        >>> print(sphinx_to_markdown("See :func:`~a.b` and :mod:`jaxcnn.data`; in 2-D::"))
        See `b` and `jaxcnn.data`; in 2-D:
    """
    text = _EXAMPLE_HEADER.sub("Examples:", text)
    return _LITERAL_MARKER.sub(":", _ROLE.sub(_role_as_code, text))


class SphinxMarkup(griffe.Extension):
    """Rewrite ``Example:`` headers, Sphinx roles and ``::`` markers before parsing."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = sphinx_to_markdown(obj.docstring.value)


def split_grouped_items(text: str) -> str:
    """Repeat each ``a, b: description`` item of a parameter section once per name.

    Example:
        >>> print(split_grouped_items("Args:\\n  a, b: the ends.\\n    Inclusive.\\n  c: x"))
        Args:
          a: the ends.
            Inclusive.
          b: the ends.
            Inclusive.
          c: x
        >>> print(split_grouped_items("Args:\\n  a, b,\\n  c: as before.\\n  d: x"))
        Args:
          a: as before.
          b: as before.
          c: as before.
          d: x
    """
    lines, out, i = text.split("\n"), [], 0
    in_section, item_indent = False, None
    while i < len(lines):
        line = lines[i]
        if line and not line[0].isspace():  # a section header or prose: a new section
            in_section, item_indent = bool(_PARAMETER_SECTIONS.match(line.strip())), None
        elif in_section and line.strip():
            item_indent = _indent(line) if item_indent is None else item_indent
            # A list of names may wrap: "a, b,\n  c: ..." (each line ends with a comma).
            joined, last = line.strip(), i
            while (_NAME_LIST.match(joined) and last + 1 < len(lines)
                   and _indent(lines[last + 1]) == item_indent):
                last += 1
                joined += " " + lines[last].strip()
            match = _GROUPED_ITEM.match(joined)
            if match and _indent(line) == item_indent:
                i = last
                end = i + 1
                while end < len(lines) and (not lines[end].strip()
                                            or _indent(lines[end]) > item_indent):
                    end += 1
                for name in match["names"].split(","):
                    out.append(" " * item_indent + name.strip() + match["rest"])
                    out.extend(lines[i + 1:end])
                i = end
                continue
        out.append(line)
        i += 1
    return "\n".join(out)


class GroupedParameters(griffe.Extension):
    """Split ``Args:`` entries that name several parameters into one entry per name."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = split_grouped_items(obj.docstring.value)


def _flax_lineage(cls: griffe.Class) -> list[griffe.Class] | None:
    """``cls`` and its jaxcnn ancestors, root first, if it derives from ``flax.linen.Module``."""
    if any(getattr(base, "canonical_path", str(base)) in _FLAX_MODULE for base in cls.bases):
        return [cls]
    for parent in cls.resolved_bases:
        lineage = _flax_lineage(parent)
        if lineage is not None:
            return [*lineage, cls]
    return None


def _fields(cls: griffe.Class) -> list[griffe.Parameter]:
    return [
        griffe.Parameter(member.name, annotation=member.annotation, default=member.value,
                         kind=griffe.ParameterKind.positional_or_keyword)
        for member in cls.members.values()
        if member.is_attribute and not member.is_alias and member.annotation is not None
        and "instance-attribute" in member.labels and not member.name.startswith("_")
    ]


class FlaxModuleSignatures(griffe.Extension):
    """Give every Flax linen module the dataclass ``__init__`` Flax generates for it."""

    def on_class(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        lineage = _flax_lineage(cls)
        if lineage is None or "__init__" in cls.members:
            return
        keyword = griffe.ParameterKind.keyword_only
        cls.set_member("__init__", griffe.Function(
            "__init__", parent=cls, returns="None",
            parameters=griffe.Parameters(
                griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword),
                *(field for ancestor in lineage for field in _fields(ancestor)),
                griffe.Parameter("parent", kind=keyword, default="<set by Flax>"),
                griffe.Parameter("name", annotation="str | None", kind=keyword,
                                 default="None"),
            ),
        ))
