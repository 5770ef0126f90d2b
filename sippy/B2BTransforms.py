"""Per-call transforms named on the command line or in a route.

Two families live here because both are small, pure, and validated when the configuration is
read (so a typo stops the daemon before it starts, not on the first call):

* ``PROCSPEC`` routines (``--pre_auth_proc=HDR2Xattrs[X-Foo]``, route ``po_proc=VAL2Xattrs[a=b]``):
  callables ``proc(cc, msg_or_event)`` that add RADIUS attributes to a call controller.
* number translation rules ``s/regexp/replacement/[flags]`` (``-t``/``-T``,
  ``--static_tr_in``/``--static_tr_out``) applied to CLD/CLI.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Callable

__all__ = (
    "HDR2Xattrs",
    "VAL2Xattrs",
    "VAL2XattrsA",
    "VAL2XattrsO",
    "Nop",
    "TransProcError",
    "getTransProc",
    "hdr_values_to_xattrs",
    "TranslationError",
    "NumberTranslator",
)


class TransProcError(ValueError):
    """A PROCSPEC that names no known routine or has a bad argument."""


def hdr_values_to_xattrs(values: Iterable[str]) -> list[tuple[str, str]]:
    """Split header values ``k1=v1;k2=v2`` into ``(k, v)`` pairs; pairs without a value are dropped."""
    pairs = []
    for value in values:
        for item in value.split(";"):
            key, _, val = item.partition("=")
            key = key.strip()
            val = val.strip()
            if key and val:
                pairs.append((key, val))
    return pairs


class _TransProc:
    """Base: keeps the spec text so routes and configs can print themselves back."""

    name = ""

    def __init__(self, arg: str) -> None:
        self.arg = arg

    def __str__(self) -> str:
        return f"{self.name}[{self.arg}]"

    def __repr__(self) -> str:
        return f"<{self}>"


class HDR2Xattrs(_TransProc):
    """pre_auth_proc: copy ``key=value`` pairs of a request header into ``cc.extra_attributes``.

    The call controller then sends them with the RADIUS authorisation request.
    """

    name = "HDR2Xattrs"

    def __init__(self, arg: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9!%*_+`'~.-]+", arg):
            raise TransProcError(f"HDR2Xattrs: bad header name {arg!r}")
        super().__init__(arg)

    def __call__(self, cc: Any, req: Any) -> None:
        hfs = req.getHFs(self.arg)
        if not hfs:
            return
        attrs = hdr_values_to_xattrs(str(hf.getBody()) for hf in hfs)
        if not attrs:
            return
        if getattr(cc, "extra_attributes", None) is None:
            cc.extra_attributes = attrs
        else:
            cc.extra_attributes.extend(attrs)


class VAL2Xattrs(_TransProc):
    """po_proc: add fixed ``key=value`` attributes to the accounting of both call legs.

    Calls ``addAttributes(list_of_pairs)`` on ``cc.acctA`` / ``cc.acctO`` when they exist.
    """

    name = "VAL2Xattrs"
    do_answer = True
    do_originate = True

    def __init__(self, arg: str) -> None:
        attrs = []
        for item in arg.split(","):
            key, _, val = item.partition("=")
            if not key.strip() or not val:
                raise TransProcError(f"{self.name}: expected comma-separated key=value pairs, got {arg!r}")
            attrs.append((key.strip(), val))
        super().__init__(arg)
        self.attributes: tuple[tuple[str, str], ...] = tuple(attrs)

    @property
    def radius_parameters(self) -> list[tuple[str, str]]:
        """Sippy 2.x's name for the pairs."""
        return list(self.attributes)

    def __call__(self, cc: Any, event: Any) -> None:
        if self.do_originate and getattr(cc, "acctO", None) is not None:
            cc.acctO.addAttributes(list(self.attributes))
        if self.do_answer and getattr(cc, "acctA", None) is not None:
            cc.acctA.addAttributes(list(self.attributes))


class VAL2XattrsA(VAL2Xattrs):
    """VAL2Xattrs for the answering (ingress) leg's accounting only."""

    name = "VAL2XattrsA"
    do_originate = False


class VAL2XattrsO(VAL2Xattrs):
    """VAL2Xattrs for the originating (egress) leg's accounting only."""

    name = "VAL2XattrsO"
    do_answer = False


class Nop(_TransProc):
    """Does nothing: lets a route or config keep a PROCSPEC slot switched off."""

    name = "Nop"

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        return None


_ROUTINES: dict[str, type[_TransProc]] = {
    cls.name: cls for cls in (HDR2Xattrs, VAL2Xattrs, VAL2XattrsA, VAL2XattrsO, Nop)
}


def getTransProc(value: str) -> Callable[..., None]:
    """Build the routine named by a PROCSPEC ``Name[argument]``; TransProcError if unknown or bad."""
    name, sep, rest = value.strip().partition("[")
    if not sep or not rest.endswith("]"):
        raise TransProcError(f"{value!r} should be in the format Name[argument]")
    cls = _ROUTINES.get(name)
    if cls is None:
        known = ", ".join(sorted(_ROUTINES))
        raise TransProcError(f"unknown routine {name!r} in {value!r} (known: {known})")
    return cls(rest[:-1])


class TranslationError(ValueError):
    """A number translation rule that does not parse or does not compile."""


class _Rule:
    __slots__ = ("regex", "repl", "count")

    def __init__(self, regex: re.Pattern[str], repl: str, count: int) -> None:
        self.regex = regex
        self.repl = repl
        self.count = count


def _take_until_slash(spec: str, pos: int) -> tuple[str, int]:
    """Read up to the next unescaped '/'; ``\\/`` stands for a literal slash."""
    out = []
    while pos < len(spec):
        ch = spec[pos]
        if ch == "\\" and pos + 1 < len(spec) and spec[pos + 1] == "/":
            out.append("/")
            pos += 2
            continue
        if ch == "/":
            return "".join(out), pos + 1
        out.append(ch)
        pos += 1
    raise TranslationError(f"unterminated rule in {spec!r}")


class NumberTranslator:
    """``s/regexp/replacement/[gi]`` rules, ``;``-separated, applied in order to a number.

    Without ``g`` only the first match of a rule is replaced (as in Sippy); ``i`` ignores case.
    The replacement uses Python ``re`` syntax (``\\1``, ``\\g<name>``).
    """

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.rules: list[_Rule] = []
        pos = 0
        while True:
            while pos < len(spec) and spec[pos] in " \t;":
                pos += 1
            if pos >= len(spec):
                break
            if not spec.startswith("s/", pos):
                raise TranslationError(f"rule should look like s/regexp/replacement/ at {spec[pos:]!r}")
            pattern, pos = _take_until_slash(spec, pos + 2)
            repl, pos = _take_until_slash(spec, pos)
            end = spec.find(";", pos)
            flags = (spec[pos:] if end < 0 else spec[pos:end]).strip()
            pos = len(spec) if end < 0 else end
            if set(flags) - set("gi"):
                raise TranslationError(f"unknown flags {flags!r} in {spec!r}")
            try:
                regex = re.compile(pattern, re.IGNORECASE if "i" in flags else 0)
                regex.sub(repl, "")
            except re.error as exc:
                raise TranslationError(f"bad rule s/{pattern}/{repl}/: {exc}") from None
            self.rules.append(_Rule(regex, repl, 0 if "g" in flags else 1))
        if not self.rules:
            raise TranslationError(f"no rules in {spec!r}")

    def __call__(self, number: str) -> str:
        for rule in self.rules:
            number = rule.regex.sub(rule.repl, number, rule.count)
        return number

    def __str__(self) -> str:
        return self.spec

    def __repr__(self) -> str:
        return f"NumberTranslator({self.spec!r})"
