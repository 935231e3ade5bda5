"""Decoded spaces: address ranges above :data:`~imgdiff.source.VBASE` that hold decoded data of both sides.

A compressed file inside an image (a zstd initrd), or an image file that is stored at different places in A and B,
is analysed in a decoded space: the engine decodes (or copies) each side's payload, gives the pair one slot at
the same offset on both sides (keyed by the holder's key chain, never by offset), compares the two payloads into
the shared :class:`~imgdiff.source.DiffMap`, and only then parses them, so that parsers see exactly which decoded
bytes differ (``ParseContext.interesting``).  The holder's stored bytes are then a field declared
:class:`~imgdiff.model.Derived` over the decoded space: whatever explains the decoded difference takes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from imgdiff.model import Extent
from imgdiff.source import SLOT, VBASE, DiffMap, LayeredSource, Source, compare_regions

MAX_SPACES = (1 << 63) // SLOT - VBASE // SLOT - 1
"""Slots available above VBASE."""


@dataclass(slots=True)
class Space:
    """One decoded space: the same slot on both sides, each side with its own payload (or none)."""

    slot: int
    key: str
    """Identity of the pair: the holder's key chain and what produced the payload (``.../initrd.zst#zstd``)."""
    label: str
    sizes: dict[str, int] = field(default_factory=dict)
    """Payload size per side (``"a"``, ``"b"``); a side without the payload is absent."""
    compared: bool = False

    @property
    def base(self) -> int:
        """Return the offset of the space's first byte."""
        return VBASE + self.slot * SLOT

    def extent(self, side: str) -> Extent:
        """Return the whole payload of ``side`` as an extent (empty when the side has none)."""
        return Extent(self.base, self.sizes.get(side, 0))


@dataclass(slots=True)
class SpaceTable:
    """All decoded spaces of one comparison, shared by both sides' parse contexts."""

    sources: dict[str, LayeredSource]
    dm: DiffMap
    spaces: list[Space] = field(default_factory=list)
    by_key: dict[str, Space] = field(default_factory=dict)
    deferred: list[Callable[[], None]] = field(default_factory=list)
    """Parser callbacks waiting for the spaces to be compared (:meth:`ParseContext.defer`)."""
    peers: dict[tuple[str, int, int], object] = field(default_factory=dict)
    """What side A's parser of a region left for side B's (``(format, base, size)`` -> its scan results): a parser
    may reuse the parts of A's scan whose bytes do not differ instead of scanning them again."""
    standalone: bool = False
    """True for a table made by a parser used outside a comparison: nothing is compared, nothing waits."""
    _named: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def open_named(self, side: str, label: str, name: str, payload: Source) -> Space:
        """Open the n-th space called ``name`` of the region ``label`` on ``side`` (n counted per side)."""
        n = self._named.get((side, label, name), 0) + 1
        self._named[(side, label, name)] = n
        return self.open(side, f"{label}#{name}#{n}", f"{label}: {name}", payload)

    def settle(self) -> None:
        """Compare pending spaces and run deferred callbacks until neither is left (callbacks may open more)."""
        while True:
            self.compare_pending()
            if not self.deferred:
                return
            todo, self.deferred = self.deferred, []
            for fn in todo:
                fn()

    def open(self, side: str, key: str, label: str, payload: Source) -> Space:
        """Attach ``payload`` as ``side``'s data of the space ``key`` (allocated on first use) and return it."""
        sp = self.by_key.get(key)
        if sp is None:
            if len(self.spaces) >= MAX_SPACES:
                raise ValueError("too many decoded spaces")
            sp = Space(slot=len(self.spaces), key=key, label=label)
            self.spaces.append(sp)
            self.by_key[key] = sp
        if sp.compared:
            raise ValueError(f"decoded space {key} was already compared")
        self.sources[side].attach(sp.slot, payload)
        sp.sizes[side] = payload.size
        return sp

    def compare_pending(self) -> int:
        """Compare every space not compared yet (in slot order) into the shared diff map; return how many."""
        done = 0
        for sp in self.spaces:
            if sp.compared:
                continue
            sp.compared = True
            if self.standalone:
                continue
            size_a, size_b = sp.sizes.get("a", 0), sp.sizes.get("b", 0)
            if size_a == size_b:
                pa, pb = self.sources["a"].slots.get(sp.slot), self.sources["b"].slots.get(sp.slot)
                same_as = getattr(pa, "same_as", None)
                if same_as is not None and same_as(pb):
                    done += 1
                    continue  # the payload says both sides hold the same bytes (a moved squashfs file)
            common = min(size_a, size_b)
            runs = compare_regions(self.sources["a"], self.sources["b"], sp.base, sp.base, common)
            longest = max(size_a, size_b)
            if longest > common:
                runs.add_run(sp.base + common, sp.base + longest)
            self.dm.insert_runs(runs)
            done += 1
        return done

    def compared(self, offset: int) -> bool:
        """Return True when the space holding ``offset`` has been compared (its differing bytes are known)."""
        slot = (offset - VBASE) // SLOT
        return 0 <= slot < len(self.spaces) and self.spaces[slot].compared

    def space_of(self, offset: int) -> Space | None:
        """Return the space holding ``offset`` (or None below VBASE)."""
        if offset < VBASE:
            return None
        slot = (offset - VBASE) // SLOT
        return self.spaces[slot] if 0 <= slot < len(self.spaces) else None
