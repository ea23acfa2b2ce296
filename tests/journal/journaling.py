"""Static analysis: which functions of Guichet reach ``journal_append`` / ``journal_append_many``.

Every module of ``src/guichet`` is parsed (never imported). A function *reaches* another when
its body calls it or merely names it (a dispatch table such as ``HANDLERS = {"op": _op}`` counts:
naming a module-level variable reaches every function its value names), through local
functions, functions imported from other Guichet modules (``from x import f``, ``import x``,
``x.f``), and methods (``self.m()``, or any method ``m`` of a class of the same module for
``obj.m()``). The analysis over-approximates on purpose: it may believe a function journals when
only one of its branches does, never the reverse. Runtime tests check the branches.

An *ORM write* is a call to ``save``, ``delete``, ``bulk_create``, ``bulk_update``,
``get_or_create``, ``update_or_create`` on anything, or to ``create`` / ``update`` on a
manager or queryset (``X.objects...``, ``.filter(...)``...).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

SINKS = {("guichet.journal.services", "journal_append"), ("guichet.journal.services", "journal_append_many")}
ALWAYS_WRITES = {"save", "delete", "bulk_create", "bulk_update", "get_or_create", "update_or_create"}
QUERYSET_WRITES = {"create", "update"}
QUERYSET_HINTS = {"objects", "filter", "exclude", "all", "select_for_update", "using", "_base_manager", "_default_manager"}

Key = tuple[str, str]  # (module, qualified name), e.g. ("guichet.bookings.services", "booking_cancel")


@dataclass
class Function:
    key: Key
    path: Path
    line: int
    public: bool
    top_level: bool
    refs: set[Key] = field(default_factory=set)
    writes: list[int] = field(default_factory=list)  # lines of direct ORM writes


def _module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_queryset(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and sub.attr in QUERYSET_HINTS:
            return True
    return False


class _Module:
    def __init__(self, name: str, path: Path, tree: ast.Module):
        self.name, self.path, self.tree = name, path, tree
        self.imports: dict[str, Key] = {}  # local name -> (module, name)
        self.module_aliases: dict[str, str] = {}  # local name -> module
        self.globals: dict[str, ast.AST] = {}  # module-level variable -> value
        self.functions: dict[str, ast.AST] = {}  # qualified name -> def node
        self.methods_by_name: dict[str, list[str]] = {}
        package = name.rsplit(".", 1)[0] if path.name != "__init__.py" else name
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module is not None or node.level):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    local = alias.asname or alias.name
                    self.imports[local] = (base, alias.name)
                    self.module_aliases.setdefault(local, f"{base}.{alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.module_aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.functions[node.name] = node
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        self.functions[f"{node.name}.{item.name}"] = item
                        self.methods_by_name.setdefault(item.name, []).append(f"{node.name}.{item.name}")
            elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        self.globals[t.id] = node.value


class Index:
    def __init__(self, root: Path):
        self.root = root
        self.modules: dict[str, _Module] = {}
        for path in sorted(root.rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = _module_name(root, path)
            self.modules[name] = _Module(name, path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        self.functions: dict[Key, Function] = {}
        for module in self.modules.values():
            for qual, node in module.functions.items():
                self.functions[(module.name, qual)] = self._function(module, qual, node)
        self._journals = self._closure()

    # --- resolution -----------------------------------------------------------------------

    def _resolve_name(self, module: _Module, name: str, cls: str | None, seen: set[str]) -> set[Key]:
        if name in module.functions:
            return {(module.name, name)}
        if name in module.imports:
            target = module.imports[name]
            if target in SINKS:
                return {target}
            other = self.modules.get(target[0])
            if other is not None and target[1] in other.functions:
                return {target}
            return set()
        if name in module.globals and name not in seen:
            seen.add(name)
            found: set[Key] = set()
            for sub in ast.walk(module.globals[name]):
                if isinstance(sub, ast.Name):
                    found |= self._resolve_name(module, sub.id, cls, seen)
            return found
        return set()

    def _function(self, module: _Module, qual: str, node) -> Function:
        cls = qual.split(".")[0] if "." in qual else None
        fn = Function(
            key=(module.name, qual), path=module.path, line=node.lineno,
            public=not node.name.startswith("_"), top_level=cls is None,
        )
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                fn.refs |= self._resolve_name(module, sub.id, cls, set())
            elif isinstance(sub, ast.Attribute):
                value = sub.value
                if isinstance(value, ast.Name) and value.id in module.module_aliases and value.id not in module.functions:
                    target = (module.module_aliases[value.id], sub.attr)
                    other = self.modules.get(target[0])
                    if target in SINKS or (other is not None and sub.attr in other.functions):
                        fn.refs.add(target)
                        continue
                for method in module.methods_by_name.get(sub.attr, []):
                    if isinstance(value, ast.Name) and value.id in ("self", "cls") and cls and not method.startswith(f"{cls}."):
                        continue
                    fn.refs.add((module.name, method))
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute):
                attr = sub.func.attr
                if attr in ALWAYS_WRITES or (attr in QUERYSET_WRITES and _is_queryset(sub.func.value)):
                    fn.writes.append(sub.lineno)
        fn.refs.discard(fn.key)
        return fn

    def _closure(self) -> set[Key]:
        journals = set(SINKS)
        changed = True
        while changed:
            changed = False
            for key, fn in self.functions.items():
                if key not in journals and fn.refs & journals:
                    journals.add(key)
                    changed = True
        return journals

    # --- questions ------------------------------------------------------------------------

    def journals(self, key: Key) -> bool:
        return key in self._journals

    def reaches_write(self, key: Key) -> list[str]:
        """Where a function (or anything it reaches) writes through the ORM: 'path:line' list."""
        seen, todo, found = set(), [key], []
        while todo:
            k = todo.pop()
            if k in seen or k not in self.functions:
                continue
            seen.add(k)
            fn = self.functions[k]
            found += [f"{fn.path.relative_to(self.root.parent.parent)}:{line}" for line in fn.writes]
            todo += list(fn.refs)
        return found

    def callers(self, key: Key) -> list[Key]:
        return [k for k, fn in self.functions.items() if key in fn.refs]

    def covered(self, key: Key, _seen: frozenset = frozenset()) -> bool:
        """Journaled by itself, or only ever reached from functions that are covered (a helper
        that writes inside its callers' transaction, every caller journaling)."""
        if self.journals(key):
            return True
        callers = [k for k in self.callers(key) if k not in _seen]
        return bool(callers) and all(self.covered(k, _seen | {key}) for k in callers)

    def declared_read_only(self) -> dict[Key, str]:
        """``JOURNAL_READ_ONLY = {"function": "why it writes nothing"}`` in a services module:
        read-only helpers declared next to their code (a literal dict, checked like READ_ONLY)."""
        return self.declared("JOURNAL_READ_ONLY")

    def declared(self, variable: str) -> dict[Key, str]:
        """A module-level literal ``{"function": "reason"}`` named ``variable``, in every module."""
        found = {}
        for module in self.modules.values():
            value = module.globals.get(variable)
            if isinstance(value, ast.Dict):
                for k, v in zip(value.keys, value.values, strict=True):
                    if isinstance(k, ast.Constant) and isinstance(v, ast.Constant):
                        found[(module.name, str(k.value))] = str(v.value)
        return found

    def service_functions(self) -> list[Function]:
        """The public top-level functions of every ``<app>/services.py``."""
        return [
            fn for (module, _q), fn in sorted(self.functions.items())
            if module.endswith(".services") and module != "guichet.journal.services" and fn.public and fn.top_level
        ]

    def direct_writers(self) -> list[Function]:
        """Public top-level functions of any other module that write through the ORM themselves."""
        return [
            fn for (module, _q), fn in sorted(self.functions.items())
            if not module.endswith(".services") and fn.public and fn.top_level and fn.writes
        ]
