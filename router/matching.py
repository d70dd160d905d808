"""
URI match indexes for subscriptions and registrations: ``exact``, ``prefix``
and ``wildcard`` (the spec's pattern-based subscriptions and registrations).

* exact: a dict.
* prefix: a dict per pattern plus the set of pattern lengths in use; a URI is
  matched by looking up each of its prefixes of a length in use (string
  prefixes, as the spec's ``com.myapp.myobject1-mysubobject1`` example shows).
* wildcard: a trie of URI components where an empty component matches any one
  component; matching walks only the branches that can match.

None of them scans all patterns per look-up.

The hot path (a CALL or PUBLISH to an exact URI) needs no call into this
module: the broker and dealer read :attr:`PatternIndex.exact` (a plain dict)
and call :meth:`~PatternIndex.matches` / :meth:`~PatternIndex.best` only while
:attr:`~PatternIndex.patterned` says a prefix or wildcard pattern exists.

For routing a call (:meth:`PatternIndex.best`) the spec's precedence applies:
exact, then the longest prefix, then the wildcard pattern whose runs of
literal components, read left to right, are longest (``a1.b2..d4`` beats
``a1...d4``; ``a1.b2..d4.e5..g7`` beats ``a1.b2..d4..f6.g7``).
"""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

__all__ = ["PatternIndex", "MATCH_POLICIES", "wildcard_rank"]

MATCH_POLICIES = ("exact", "prefix", "wildcard")

T = TypeVar("T")


class _Node:
    __slots__ = ("children", "item")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.item = None


def wildcard_rank(pattern: str) -> tuple[int, ...]:
    """Lengths of the literal runs between wildcards, for precedence (bigger wins)."""
    runs = [0]
    for part in pattern.split("."):
        if part:
            runs[-1] += 1
        else:
            runs.append(0)
    return tuple(runs)


class PatternIndex(Generic[T]):
    """
    ``exact`` (read-only for callers: change it through :meth:`add` and
    :meth:`remove`) maps an exact URI to its item; ``patterned`` is true while
    any prefix or wildcard pattern is indexed.
    """

    def __init__(self) -> None:
        self._exact: dict[str, T] = {}
        self.exact = self._exact
        self.patterned = False
        self._prefix: dict[str, T] = {}
        self._prefix_lengths: dict[int, int] = {}  # length -> patterns of that length
        self._wildcard: dict[str, T] = {}
        self._trie = _Node()

    def __len__(self) -> int:
        return len(self._exact) + len(self._prefix) + len(self._wildcard)

    def get(self, uri: str, match: str) -> T | None:
        """The item registered for exactly this pattern and policy."""
        if match == "exact":
            return self._exact.get(uri)
        if match == "prefix":
            return self._prefix.get(uri)
        return self._wildcard.get(uri)

    def add(self, uri: str, match: str, item: T) -> None:
        if match == "exact":
            self._exact[uri] = item
        elif match == "prefix":
            self._prefix[uri] = item
            size = len(uri)
            self._prefix_lengths[size] = self._prefix_lengths.get(size, 0) + 1
        elif match == "wildcard":
            self._wildcard[uri] = item
            node = self._trie
            for part in uri.split("."):
                child = node.children.get(part)
                if child is None:
                    child = node.children[part] = _Node()
                node = child
            node.item = item
        else:
            raise ValueError(f"unknown match policy {match!r}")
        if match != "exact":
            self.patterned = True

    def remove(self, uri: str, match: str) -> None:
        if match == "exact":
            self._exact.pop(uri, None)
        elif match == "prefix":
            if self._prefix.pop(uri, None) is not None:
                size = len(uri)
                left = self._prefix_lengths[size] - 1
                if left:
                    self._prefix_lengths[size] = left
                else:
                    del self._prefix_lengths[size]
        elif match == "wildcard":
            if self._wildcard.pop(uri, None) is None:
                return
            path = [self._trie]
            parts = uri.split(".")
            for part in parts:
                path.append(path[-1].children[part])
            path[-1].item = None
            # prune empty branches
            for depth in range(len(parts), 0, -1):
                node = path[depth]
                if node.item is None and not node.children:
                    del path[depth - 1].children[parts[depth - 1]]
                else:
                    break
        if match != "exact":
            self.patterned = bool(self._prefix or self._wildcard)

    def matches(self, uri: str) -> Iterator[tuple[str, T]]:
        """Every (policy, item) whose pattern matches ``uri``: exact, prefixes, wildcards."""
        item = self._exact.get(uri)
        if item is not None:
            yield "exact", item
        if self._prefix_lengths:
            size = len(uri)
            prefix = self._prefix
            for length in self._prefix_lengths:
                if length <= size:
                    item = prefix.get(uri[:length])
                    if item is not None:
                        yield "prefix", item
        if self._wildcard:
            for item in self._wildcards(uri):
                yield "wildcard", item

    def _wildcards(self, uri: str) -> list[T]:
        parts = uri.split(".")
        last = len(parts)
        found = []
        stack = [(self._trie, 0)]
        while stack:
            node, depth = stack.pop()
            if depth == last:
                if node.item is not None:
                    found.append(node.item)
                continue
            children = node.children
            child = children.get(parts[depth])
            if child is not None:
                stack.append((child, depth + 1))
            if parts[depth]:
                any_child = children.get("")
                if any_child is not None:
                    stack.append((any_child, depth + 1))
        return found

    def best(self, uri: str) -> tuple[str, T] | None:
        """The single (policy, item) a call to ``uri`` routes to, by the spec's precedence."""
        item = self._exact.get(uri)
        if item is not None:
            return "exact", item
        if self._prefix_lengths:
            size = len(uri)
            for length in sorted(self._prefix_lengths, reverse=True):
                if length <= size:
                    item = self._prefix.get(uri[:length])
                    if item is not None:
                        return "prefix", item
        if self._wildcard:
            found = self._wildcards(uri)
            if found:
                return "wildcard", max(found, key=lambda it: wildcard_rank(it.uri))
        return None

    def by_policy(self) -> dict[str, list[T]]:
        return {
            "exact": list(self._exact.values()),
            "prefix": list(self._prefix.values()),
            "wildcard": list(self._wildcard.values()),
        }
