"""Block-slot operators: Ultralytics' C3k2 with its inner bottleneck replaced by one of the searched blocks.

``C3k2_X(c1, c2, n, c3k, e, attn, g, shortcut, *extra)`` takes C3k2's own arguments (``slots.BLOCK``) and keeps
its structure: a 1x1 conv to 2c (c = int(c2*e)), split, n inner blocks applied in chain, concat of all, 1x1 conv
to c2 (the forward is Ultralytics' ``C2f.forward``). With ``c3k`` each inner block is a C3k-shaped CSP (two X
blocks at width c/2), as C3k2 does; Ultralytics forces ``c3k`` at the m/l/x scales for these classes too (the
parser sees a C3k2). The classes are made by ``c3k2_form`` for the operator table's rows and registered in this
module's namespace (``modules.csp.C3k2_GhostV2``) so checkpoints pickle and unpickle them by that path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from torch import nn
from ultralytics.nn.modules.block import C3, C2f
from ultralytics.nn.modules.conv import Conv

InnerFactory = Callable[..., nn.Module]  # (c, shortcut, e, **extra) -> a c -> c block


class C3kOf(C3):
    """C3k's CSP (1x1 convs to c_ = c2*e, n inner blocks, concat, 1x1) with any c_ -> c_ inner block.

    A ``C3`` subclass for Ultralytics' type checks; it builds its own layers instead of C3's bottlenecks.
    """

    def __init__(self, c1: int, c2: int, n: int, shortcut: bool, make_inner: InnerFactory, e: float = 0.5) -> None:
        nn.Module.__init__(self)
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(make_inner(c_, shortcut, 1.0) for _ in range(n)))


class C3k2Of(C2f):
    """Base of the ``C3k2_*`` classes: ``c3k2_form`` sets the inner block factory and the extra arguments."""

    make_inner: ClassVar[InnerFactory]
    extra: ClassVar[tuple[Any, ...]] = ()  # the row's ExtraArgs (name, choices, default, check)

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        c3k: bool = False,
        e: float = 0.5,
        attn: bool = False,
        g: int = 1,
        shortcut: bool = True,
        *extra_values: Any,
    ) -> None:
        nn.Module.__init__(self)
        name = type(self).__name__
        if attn:
            raise ValueError(f"{name}: attn=True (C3k2's PSA variant) cannot be combined with this block")
        if g != 1:
            raise ValueError(f"{name}: grouped inner blocks (g={g}) are not supported")
        if len(extra_values) > len(self.extra):
            raise ValueError(f"{name}: {len(extra_values)} arguments after C3k2's six, expected {len(self.extra)}")
        for i, arg in enumerate(self.extra):  # e.g. self.kernel
            setattr(self, arg.name, arg.check(extra_values[i] if i < len(extra_values) else arg.default, name))
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(
            C3kOf(self.c, self.c, 2, shortcut, self.inner) if c3k else self.inner(self.c, shortcut, 0.5)
            for _ in range(n)
        )

    def inner(self, c: int, shortcut: bool, e: float) -> nn.Module:
        """Return one c -> c inner block (``e`` is the bottleneck expansion C3k2 would use there)."""
        return type(self).make_inner(c, shortcut, e, **{arg.name: getattr(self, arg.name) for arg in self.extra})


def c3k2_form(name: str, inner: InnerFactory, extra: tuple[Any, ...] = ()) -> type[C3k2Of]:
    """Return the class ``C3k2_<name>`` (C3k2 with ``inner`` blocks, taking the ``extra`` arguments after C3k2's six),
    registered in this module so that it pickles as ``modules.csp.C3k2_<name>``."""
    cls_name = f"C3k2_{name}"
    args = "".join(f", {a.name}" for a in extra)
    doc = f"C3k2 with {name} inner blocks. YAML: ``[-1, n, {cls_name}, [c2, c3k, e, attn, g, shortcut{args}]]``."
    attrs = {
        "__module__": __name__,
        "__qualname__": cls_name,
        "__doc__": doc,
        "make_inner": staticmethod(inner),
        "extra": tuple(extra),
    }
    cls = type(cls_name, (C3k2Of,), attrs)
    globals()[cls_name] = cls
    return cls
