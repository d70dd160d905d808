"""
What one node knows of the other nodes: which are alive and which
(realm, match, topic) subscriptions each has, indexed so a publication finds
the nodes that want it without a scan (one :class:`PatternIndex` per realm,
whose items are sets of node names).
"""

from __future__ import annotations

from router.matching import PatternIndex

__all__ = ["RemoteTables", "Entry"]

Entry = tuple[str, str, str]  # (realm, match, topic)


class _Nodes(set):
    """The nodes holding one entry; ``uri`` for the index's wildcard precedence (PatternIndex.best)."""

    __slots__ = ("uri",)


class RemoteTables:
    def __init__(self) -> None:
        self._by_realm: dict[str, PatternIndex] = {}
        self._by_node: dict[str, set[Entry]] = {}

    @property
    def nodes(self) -> list[str]:
        """The other live nodes, sorted."""
        return sorted(self._by_node)

    def knows(self, node: str) -> bool:
        return node in self._by_node

    def held(self, entry: Entry) -> bool:
        """Whether any other node has ``entry``."""
        return any(entry in entries for entries in self._by_node.values())

    def topics_of(self, node: str) -> frozenset[Entry]:
        return frozenset(self._by_node.get(node, ()))

    def meet(self, node: str) -> None:
        """A node announced itself (it may have no subscription yet)."""
        self._by_node.setdefault(node, set())

    def replace(self, found: dict[str, set[Entry]]) -> None:
        """Forget everything; know exactly ``found`` (node -> its subscriptions)."""
        self._by_realm = {}
        self._by_node = {}
        for node, entries in found.items():
            self.meet(node)
            for entry in entries:
                self.add(node, entry)

    def add(self, node: str, entry: Entry) -> None:
        topics = self._by_node.setdefault(node, set())
        if entry in topics:
            return
        topics.add(entry)
        realm, match, topic = entry
        index = self._by_realm.get(realm)
        if index is None:
            index = self._by_realm[realm] = PatternIndex()
        nodes = index.get(topic, match)
        if nodes is None:
            nodes = _Nodes((node,))
            nodes.uri = topic
            index.add(topic, match, nodes)
        else:
            nodes.add(node)

    def remove(self, node: str, entry: Entry) -> None:
        topics = self._by_node.get(node)
        if topics is None or entry not in topics:
            return
        topics.discard(entry)
        realm, match, topic = entry
        index = self._by_realm[realm]
        nodes = index.get(topic, match)
        nodes.discard(node)
        if not nodes:
            index.remove(topic, match)

    def forget(self, node: str) -> None:
        for entry in list(self._by_node.get(node, ())):
            self.remove(node, entry)
        self._by_node.pop(node, None)

    def targets(self, realm: str, topic: str) -> set[str] | None:
        """The nodes with a subscription matching ``topic`` in ``realm`` (None or empty: none)."""
        index = self._by_realm.get(realm)
        if index is None or not len(index):
            return None
        found: set[str] = set()
        for _, nodes in index.matches(topic):
            found |= nodes
        return found
