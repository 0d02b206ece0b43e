"""infra/firestore.indexes.json serves every query the services make (domain.md §2.4).

How: the service modules are read with `ast`, not run. Every `<x>.query(...)` call in
shared/src/playbook_core/service is found, and its collection, `Where(field, op, …)` list and
`OrderBy(field, direction)` list are derived by a small abstract interpreter over the enclosing
function: it follows assignments, `append`/`extend`/`+=`, `if`/`else` branches (a filter appended
under an `if` is optional: both shapes are produced), conditional expressions, module constants
(also imported ones), helper functions that build a collection path (`versions_path(…)` →
`versions`), and parameters of helpers (resolved at the helper's call sites). Each combination is
one query shape. Then each shape is ordered as the Firestore adapter orders it (explicit orders,
then inequality fields, then `__name__` ascending) and checked against the declared indexes with
Firestore's rules: equality-only queries and a lone ascending order are served by the automatic
single-field indexes; anything else needs composite indexes whose fields are equality fields of
the query followed by exactly its ordering, and several such indexes may be merged to cover all
the equality fields.

A static scan sees every branch, including ones no test exercises, which a recording store proxy
would miss. Where it cannot derive a shape (a list comprehension, a value from another object) it
fails and names the call, rather than passing silently: write the filters as literal
`Where(...)`/`OrderBy(...)` calls, or teach the interpreter here.
"""

from __future__ import annotations

import ast
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from playbook_core.domain.collections import (
    EXECUTIONS,
    PLAYBOOKS,
    RETAINED,
    SCHEDULES,
    VERSIONS,
)

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "shared" / "src" / "playbook_core"
SERVICE = PACKAGE / "service"
ADAPTER = PACKAGE / "adapters" / "firestore.py"
INDEXES = ROOT / "infra" / "firestore.indexes.json"

EQUALITY = {"==", "in", "array-contains", "array-contains-any"}
ARRAY_OPS = {"array-contains", "array-contains-any"}
INEQUALITY = {"<", "<=", ">", ">=", "!=", "not-in"}
# adapters/firestore.py ends every query with order_by("__name__"): ascending.
TIE_BREAK = "asc"
MAX_ALTERNATIVES = 4096  # a guard against a combinatorial blow-up, not a limit anyone should hit


# ---------------------------------------------------------------------------------------------
# Abstract values. A term is one possible value of an expression; evaluation yields a set of them.


class Unresolved(Exception):  # a reason, carried up to the failing call site
    pass


@dataclass(frozen=True)
class Unknown:
    reason: str


@dataclass(frozen=True)
class Param:
    """A function parameter: its values are the arguments at the function's call sites."""

    function: tuple[str, str]  # (module name, qualified function name)
    name: str


@dataclass(frozen=True)
class ListTerm:
    items: tuple  # terms, or ("*", term) for a splatted part


@dataclass(frozen=True)
class WhereTerm:
    field: object
    op: object


@dataclass(frozen=True)
class OrderTerm:
    field: object
    direction: object


@dataclass(frozen=True)
class Text:
    parts: tuple  # str or term, concatenated (an f-string)


@dataclass(frozen=True)
class Concat:
    left: object
    right: object


@dataclass(frozen=True)
class CallResult:
    """What a helper returns for these arguments, worked out only if a query needs it."""

    function: tuple[str, str]
    arguments: tuple  # ((parameter, frozenset of terms), ...)


@dataclass
class FunctionInfo:
    module: Module
    node: ast.FunctionDef | ast.AsyncFunctionDef
    qualname: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.module.name, self.qualname)

    def parameters(self) -> list[str]:
        args = self.node.args
        return [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]

    def defaults(self) -> dict[str, ast.expr]:
        args = self.node.args
        positional = [*args.posonlyargs, *args.args]
        named = [a.arg for a in positional[len(positional) - len(args.defaults) :]]
        found = dict(zip(named, args.defaults, strict=True))
        found.update(
            {a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d}
        )
        return found


@dataclass
class QuerySite:
    origin: str
    function: tuple[str, str] | None
    collection: set
    where: set
    order_by: set


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    constants: dict[str, ast.expr] = field(default_factory=dict)
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    imported: dict[str, tuple[str, str]] = field(default_factory=dict)  # alias → (module, name)
    modules: dict[str, str] = field(default_factory=dict)  # alias → module

    @property
    def origin(self) -> str:
        return str(self.path.relative_to(ROOT)) if self.path.is_absolute() else str(self.path)


class Program:
    """The playbook_core modules the services reach, parsed once, and what running them saw."""

    def __init__(self) -> None:
        self.modules: dict[str, Module] = {}
        self.call_sites: dict[tuple[str, str], list[dict[str, set]]] = {}
        self.queries: list[QuerySite] = []
        self.functions: dict[tuple[str, str], FunctionInfo] = {}
        self._returns: dict[CallResult, set] = {}

    def module(self, name: str) -> Module | None:
        if name in self.modules:
            return self.modules[name]
        if not name.startswith("playbook_core."):
            return None
        relative = Path(*name.split(".")[1:])
        for candidate in (
            PACKAGE / relative.with_suffix(".py"),
            PACKAGE / relative / "__init__.py",
        ):
            if candidate.exists():
                tree = ast.parse(candidate.read_text(encoding="utf-8"))
                return self._index(Module(name, candidate, tree))
        return None

    def load_source(self, name: str, source: str) -> Module:
        """A module from text (the interpreter's own tests)."""
        return self._index(Module(name, Path(f"<{name}>"), ast.parse(source)))

    def _index(self, module: Module) -> Module:  # noqa: C901, PLR0912 - one case per statement kind
        self.modules[module.name] = module
        for node in module.tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    module.constants[target.id] = node.value
                elif (  # A, B = "a", "b"
                    isinstance(target, ast.Tuple)
                    and isinstance(node.value, ast.Tuple)
                    and len(target.elts) == len(node.value.elts)
                ):
                    for name, value in zip(target.elts, node.value.elts, strict=True):
                        if isinstance(name, ast.Name):
                            module.constants[name.id] = value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if node.value is not None:
                    module.constants[node.target.id] = node.value
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    local = alias.asname or alias.name
                    submodule = f"{node.module}.{alias.name}"
                    if self.module(submodule) is not None:
                        module.modules[local] = submodule
                    else:
                        module.imported[local] = (node.module, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    module.modules[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        self._register(FunctionInfo(module, item, f"{node.name}.{item.name}"))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self._register(FunctionInfo(module, node, node.name))
        return module

    def _register(self, info: FunctionInfo) -> None:
        info.module.functions[info.qualname] = info
        self.functions[info.key] = info

    # -- name resolution -----------------------------------------------------------------------

    def constant(self, module: Module, name: str, depth: int = 0) -> set | None:
        if name in module.constants:
            return Evaluator(self, module).eval(module.constants[name])
        if name in module.imported and depth < 5:
            source, original = module.imported[name]
            target = self.module(source)
            if target is not None:
                return self.constant(target, original, depth + 1)
        return None

    def function(self, module: Module, name: str, depth: int = 0) -> FunctionInfo | None:
        if name in module.functions:
            return module.functions[name]
        if name in module.imported and depth < 5:
            source, original = module.imported[name]
            target = self.module(source)
            if target is not None:
                return self.function(target, original, depth + 1)
        return None

    # -- analysis ------------------------------------------------------------------------------

    def analyse(self, module: Module) -> None:
        """Run every function and method of the module, recording queries and call sites."""
        for info in list(module.functions.values()):
            Evaluator(self, module, info, recording=True).run()

    def returns(self, result: CallResult) -> set:
        if result not in self._returns:
            self._returns[result] = {Unknown("a recursive helper")}
            info = self.functions[result.function]
            evaluator = Evaluator(self, info.module, info, recording=False)
            evaluator.run(dict(result.arguments))
            self._returns[result] = evaluator.returned or {Unknown(f"{info.qualname}() result")}
        return self._returns[result]

    def contexts(self, site: QuerySite) -> list[dict[Param, set]]:
        """One binding of the query's own function parameters per call site of that function.

        Parameters used together (a helper's collection and filters) take their values from the
        same call, so two callers' arguments are never mixed into a shape neither makes.
        """
        used = {
            term
            for terms in (site.collection, site.where, site.order_by)
            for top in terms
            for term in _subterms(top)
            if isinstance(term, Param) and term.function == site.function
        }
        if not used:
            return [{}]
        sites = self.call_sites.get(site.function, [])
        if not sites:
            names = ", ".join(sorted(p.name for p in used))
            raise Unresolved(f"parameters {names} of {site.function[1]}() have no call site")
        return [{p: arguments.get(p.name, {Unknown(p.name)}) for p in used} for arguments in sites]

    def concretize(  # noqa: C901, PLR0911, PLR0912 - one case per term
        self, term: object, depth: int = 0, bindings: dict[Param, set] | None = None
    ) -> set:
        """Every concrete value a term can take: str, or a tuple of ("W", f, op)/("O", f, dir)."""
        if depth > 12:
            raise Unresolved("values nest too deeply")
        if bindings:
            return self._concretize_bound(term, depth, bindings)
        if isinstance(term, str | int | float | bool) or term is None:
            return {term}
        if isinstance(term, Unknown):
            raise Unresolved(term.reason)
        if isinstance(term, Choice):
            return set(term.values)
        if isinstance(term, Param):
            return self._param_values(term, depth)
        if isinstance(term, CallResult):
            values: set = set()
            for option in self.returns(term):
                values |= self.concretize(option, depth + 1)
            return _bounded(values)
        if isinstance(term, WhereTerm | OrderTerm):
            first = self.concretize(term.field, depth)
            second = self.concretize(
                term.op if isinstance(term, WhereTerm) else term.direction, depth
            )
            kind = "W" if isinstance(term, WhereTerm) else "O"
            return {(kind, a, b) for a in first for b in second}
        if isinstance(term, ListTerm):
            pieces = []
            for item in term.items:
                if isinstance(item, tuple) and item and item[0] == "*":
                    pieces.append({tuple(v) for v in self.concretize(item[1], depth)})
                else:
                    pieces.append({(v,) for v in self.concretize(item, depth)})
            return _bounded({sum(combo, ()) for combo in itertools.product(*pieces)})
        if isinstance(term, Text):
            parts = [{p} if isinstance(p, str) else self._text_part(p, depth) for p in term.parts]
            return _bounded({"".join(combo) for combo in itertools.product(*parts)})
        if isinstance(term, Concat):
            lefts, rights = self.concretize(term.left, depth), self.concretize(term.right, depth)
            return _bounded({a + b for a in lefts for b in rights})
        raise Unresolved(f"cannot interpret {term!r}")

    def _concretize_bound(self, term: object, depth: int, bindings: dict[Param, set]) -> set:
        if isinstance(term, Param) and term in bindings:
            values: set = set()
            for option in bindings[term]:  # the caller's own terms: its context, not ours
                values |= self.concretize(option, depth + 1)
            return values
        if isinstance(term, WhereTerm | OrderTerm | ListTerm | Text | Concat):
            return self.concretize(_substitute(term, bindings, self, depth), depth)
        return self.concretize(term, depth)

    def _text_part(self, term: object, depth: int) -> set:
        try:
            return {str(v) for v in self.concretize(term, depth)}
        except Unresolved:
            return {"{*}"}  # an id inside a path: any value

    def _param_values(self, term: Param, depth: int) -> set:
        values: set = set()
        for site in self.call_sites.get(term.function, []):
            for option in site.get(term.name, set()):
                values |= self.concretize(option, depth + 1)
        if not values:
            raise Unresolved(
                f"parameter '{term.name}' of {term.function[1]}() has no call site in the services"
            )
        return values


def _subterms(term: object):
    yield term
    if isinstance(term, ListTerm | Text):
        for item in term.items if isinstance(term, ListTerm) else term.parts:
            yield from _subterms(
                item[1] if isinstance(item, tuple) and item[:1] == ("*",) else item
            )
    elif isinstance(term, WhereTerm):
        yield from _subterms(term.field)
        yield from _subterms(term.op)
    elif isinstance(term, OrderTerm):
        yield from _subterms(term.field)
        yield from _subterms(term.direction)
    elif isinstance(term, Concat):
        yield from _subterms(term.left)
        yield from _subterms(term.right)


def _substitute(term: object, bindings: dict[Param, set], program: Program, depth: int) -> object:  # noqa: PLR0911 - one case per term
    """The term with bound parameters replaced by one concrete choice each (as a Choice term)."""
    if isinstance(term, Param) and term in bindings:
        return Choice(
            frozenset(v for o in bindings[term] for v in program.concretize(o, depth + 1))
        )
    if isinstance(term, ListTerm):
        return ListTerm(
            tuple(
                ("*", _substitute(i[1], bindings, program, depth))
                if isinstance(i, tuple) and i[:1] == ("*",)
                else _substitute(i, bindings, program, depth)
                for i in term.items
            )
        )
    if isinstance(term, Text):
        return Text(tuple(_substitute(p, bindings, program, depth) for p in term.parts))
    if isinstance(term, WhereTerm):
        return WhereTerm(
            _substitute(term.field, bindings, program, depth),
            _substitute(term.op, bindings, program, depth),
        )
    if isinstance(term, OrderTerm):
        return OrderTerm(
            _substitute(term.field, bindings, program, depth),
            _substitute(term.direction, bindings, program, depth),
        )
    if isinstance(term, Concat):
        return Concat(
            _substitute(term.left, bindings, program, depth),
            _substitute(term.right, bindings, program, depth),
        )
    return term


@dataclass(frozen=True)
class Choice:
    """Already concrete alternatives (a bound parameter's values at one call site)."""

    values: frozenset


def _bounded(values: set) -> set:
    if len(values) > MAX_ALTERNATIVES:
        raise Unresolved("too many alternative shapes")
    return values


class Evaluator:
    """Runs one function body abstractly: each variable maps to the set of terms it may hold."""

    def __init__(
        self,
        program: Program,
        module: Module,
        info: FunctionInfo | None = None,
        *,
        recording: bool = False,
        closure: dict[str, set] | None = None,
    ) -> None:
        self.program, self.module, self.info, self.recording = program, module, info, recording
        self.env: dict[str, set] = dict(closure or {})
        self.local_functions: dict[str, FunctionInfo] = {}
        self.returned: set = set()

    # -- functions -----------------------------------------------------------------------------

    def run(self, arguments: dict[str, set] | None = None) -> None:
        assert self.info is not None
        for name in self.info.parameters():
            given = (arguments or {}).get(name)
            self.env[name] = set(given) if given else {Param(self.info.key, name)}
        self.block(self.info.node.body, self.env)

    # -- statements ----------------------------------------------------------------------------

    def block(self, statements: list[ast.stmt], env: dict[str, set]) -> tuple[dict, bool]:
        """Run statements from a state; the state after them, and whether every path left."""
        for statement in statements:
            env, left = self.statement(statement, env)
            if left:
                return env, True
        return env, False

    def statement(self, node: ast.stmt, env: dict[str, set]) -> tuple[dict, bool]:  # noqa: C901, PLR0911, PLR0912, PLR0915 - one case per statement kind
        self.env = env
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            nested = FunctionInfo(self.module, node, f"{self.info.qualname}.{node.name}")
            self.program.functions[nested.key] = nested
            self.local_functions[node.name] = nested
            if self.recording:  # a closure: it sees the enclosing variables as they are here
                Evaluator(self.program, self.module, nested, recording=True, closure=env).run()
            return {**env, node.name: {Unknown("a local function")}}, False
        if isinstance(node, ast.If):
            self.scan(node.test)
            outcomes = [self.block(node.body, dict(env)), self.block(node.orelse, dict(env))]
            return _join(env, outcomes)
        if isinstance(node, ast.For | ast.AsyncFor | ast.While):
            looping = isinstance(node, ast.For | ast.AsyncFor)
            self.scan(node.iter if looping else node.test)
            if looping:
                env = self.assign(node.target, {Unknown("a loop variable")}, env)
            state = env
            for _ in range(2):  # zero, one or two passes: enough to see what a pass appends
                after, _left = self.block(node.body, dict(state))
                state, _ = _join(state, [(state, False), (after, False)])
            return self.block(node.orelse, state)[0], False
        if isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                self.scan(item.context_expr)
                if item.optional_vars is not None:
                    env = self.assign(item.optional_vars, {Unknown("a context value")}, env)
            return self.block(node.body, env)
        if isinstance(node, ast.Try | ast.TryStar):
            body = self.block(node.body, dict(env))
            raised_from = _join(env, [(env, False), (body[0], False)])[0]
            outcomes = [self.block(node.orelse, body[0]) if not body[1] else body]
            outcomes += [self.block(h.body, dict(raised_from)) for h in node.handlers]
            joined, left = _join(env, outcomes)
            final, final_left = self.block(node.finalbody, joined)
            return final, left or final_left
        if isinstance(node, ast.Match):
            self.scan(node.subject)
            outcomes = [self.block(case.body, dict(env)) for case in node.cases]
            return _join(env, [*outcomes, (env, False)])
        if isinstance(node, ast.Return):
            if node.value is not None:
                self.scan(node.value)
                self.returned |= self.eval(node.value)
            return env, True
        if isinstance(node, ast.Raise):
            return env, True
        if isinstance(node, ast.Assign):
            self.scan(node.value)
            values = self.eval(node.value)
            for target in node.targets:
                env = self.assign(target, values, env)
            return env, False
        if isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.scan(node.value)
                env = self.assign(node.target, self.eval(node.value), env)
            return env, False
        if isinstance(node, ast.AugAssign):
            self.scan(node.value)
            if isinstance(node.target, ast.Name) and isinstance(node.op, ast.Add):
                name = node.target.id
                current = env.get(name, {Unknown(f"{name} before +=")})
                added = self.eval(node.value)
                return {**env, name: _limit({_concat(a, b) for a in current for b in added})}, False
            return env, False
        if isinstance(node, ast.Expr):
            self.scan(node.value)
            return self.mutation(node.value, env), False
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.scan(child)
        return env, False

    def assign(self, target: ast.expr, values: set, env: dict[str, set]) -> dict[str, set]:
        if isinstance(target, ast.Name):
            return {**env, target.id: values}
        if isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                env = self.assign(element, {Unknown("an unpacked value")}, env)
        return env

    def mutation(self, call: ast.expr, env: dict[str, set]) -> dict[str, set]:
        """`x.append(v)` / `x.extend(v)` on a variable."""
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id in env
            and call.func.attr in {"append", "extend", "insert", "remove", "pop", "clear"}
        ):
            return env
        name, method = call.func.value.id, call.func.attr
        if method not in {"append", "extend"} or len(call.args) != 1:
            return {**env, name: {Unknown(f"{name}.{method}(...)")}}
        added = self.eval(call.args[0])
        if method == "append":
            added = {ListTerm((value,)) for value in added}
        return {**env, name: _limit({_concat(a, b) for a in env[name] for b in added})}

    # -- calls ---------------------------------------------------------------------------------

    def scan(self, node: ast.expr) -> None:
        """Record the query calls and helper call sites inside an expression."""
        if not self.recording:
            return
        for child in ast.walk(node):
            if not isinstance(child, ast.Call):
                continue
            func = child.func
            if isinstance(func, ast.Attribute) and func.attr == "query":
                if child.args or child.keywords:
                    self.record_query(child)
                continue
            callee = self.resolve_callee(func)
            if callee is not None:
                self.program.call_sites.setdefault(callee.key, []).append(self.bind(callee, child))

    def resolve_callee(self, func: ast.expr) -> FunctionInfo | None:
        if isinstance(func, ast.Name):
            if func.id in self.local_functions:
                return self.local_functions[func.id]
            if func.id in self.env:
                return None
            return self.program.function(self.module, func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            alias = self.module.modules.get(func.value.id)
            target = self.program.module(alias) if alias else None
            if target is not None:
                return target.functions.get(func.attr)
        return None

    def bind(self, callee: FunctionInfo, call: ast.Call) -> dict[str, set]:
        parameters = callee.parameters()
        if "." in callee.qualname and parameters and parameters[0] in {"self", "cls"}:
            parameters = parameters[1:]
        bound: dict[str, set] = {}
        for name, argument in zip(parameters, call.args, strict=False):  # extra args: *args
            if isinstance(argument, ast.Starred):
                break
            bound[name] = self.eval(argument)
        for keyword in call.keywords:
            if keyword.arg is not None:
                bound[keyword.arg] = self.eval(keyword.value)
        for name, default in callee.defaults().items():
            if name not in bound:
                bound[name] = Evaluator(self.program, callee.module).eval(default)
        return bound

    def record_query(self, call: ast.Call) -> None:
        names = ["collection", "where", "order_by"]
        given: dict[str, ast.expr] = dict(zip(names, call.args, strict=False))
        given.update({k.arg: k.value for k in call.keywords if k.arg in names})
        empty = {ListTerm(())}
        self.program.queries.append(
            QuerySite(
                origin=f"{self.module.origin}:{call.lineno}",
                function=self.info.key if self.info else None,
                collection=self.eval(given["collection"])
                if "collection" in given
                else {Unknown("no collection argument")},
                where=self.eval(given["where"]) if "where" in given else empty,
                order_by=self.eval(given["order_by"]) if "order_by" in given else empty,
            )
        )

    # -- expressions ---------------------------------------------------------------------------

    def eval(self, node: ast.expr) -> set:
        return _limit(self._eval(node))

    def _eval(self, node: ast.expr) -> set:  # noqa: PLR0911 - one case per node type
        if isinstance(node, ast.Constant):
            return {node.value}
        if isinstance(node, ast.Name):
            if node.id in self.env:
                return self.env[node.id]
            found = self.program.constant(self.module, node.id)
            return found if found is not None else {Unknown(f"name '{node.id}'")}
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            alias = self.module.modules.get(node.value.id)
            target = self.program.module(alias) if alias else None
            found = self.program.constant(target, node.attr) if target else None
            return found if found is not None else {Unknown(f"'{ast.unparse(node)}'")}
        if isinstance(node, ast.List | ast.Tuple):
            parts = [
                {("*", v) for v in self.eval(e.value)}
                if isinstance(e, ast.Starred)
                else self.eval(e)
                for e in node.elts
            ]
            return {ListTerm(tuple(combo)) for combo in itertools.product(*parts)}
        if isinstance(node, ast.IfExp):
            return self.eval(node.body) | self.eval(node.orelse)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return {_concat(a, b) for a in self.eval(node.left) for b in self.eval(node.right)}
        if isinstance(node, ast.JoinedStr):
            parts = [
                {str(v.value)} if isinstance(v, ast.Constant) else self.eval(v.value)
                for v in node.values
                if isinstance(v, ast.Constant | ast.FormattedValue)
            ]
            return {Text(tuple(combo)) for combo in itertools.product(*parts)}
        if isinstance(node, ast.Call):
            return self._eval_call(node)
        return {Unknown(f"'{ast.unparse(node)}'")}

    def _eval_call(self, node: ast.Call) -> set:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name in {"Where", "OrderBy"}:
            params = ["field", "op", "value"] if name == "Where" else ["field", "direction"]
            given = dict(zip(params, node.args, strict=False))
            given.update({k.arg: k.value for k in node.keywords if k.arg})
            if "field" not in given or (name == "Where" and "op" not in given):
                return {Unknown(f"'{ast.unparse(node)}'")}
            fields = self.eval(given["field"])
            if name == "Where":
                return {WhereTerm(f, o) for f in fields for o in self.eval(given["op"])}
            directions = self.eval(given["direction"]) if "direction" in given else {"asc"}
            return {OrderTerm(f, d) for f in fields for d in directions}
        if name in {"list", "tuple"} and isinstance(func, ast.Name) and len(node.args) == 1:
            return self.eval(node.args[0])
        callee = self.resolve_callee(func)
        if callee is None:
            return {Unknown(f"'{ast.unparse(node)}'")}
        arguments = tuple(sorted((k, frozenset(v)) for k, v in self.bind(callee, node).items()))
        return {CallResult(callee.key, arguments)}


def _concat(left: object, right: object) -> object:
    if isinstance(left, ListTerm) and isinstance(right, ListTerm):
        return ListTerm(left.items + right.items)
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    return Concat(left, right)


def _limit(values: set) -> set:
    if len(values) > MAX_ALTERNATIVES:
        return {Unknown("too many alternatives")}
    return values


def _join(before: dict, outcomes: list[tuple[dict, bool]]) -> tuple[dict, bool]:
    """Where branches meet: each variable may hold what any live branch left in it."""
    live = [env for env, left in outcomes if not left]
    if not live:
        return before, True
    joined = {}
    for name in set().union(*live):
        values: set = set()
        for env in live:
            values |= env.get(name, before.get(name, {Unknown(f"'{name}' unset on a branch")}))
        joined[name] = _limit(values)
    return joined, False


# ---------------------------------------------------------------------------------------------
# Query shapes and the index model.


@dataclass(frozen=True)
class Shape:
    collection: str  # the collection group id: the last segment of the collection path
    where: tuple[tuple[str, str], ...]  # (field, op)
    order: tuple[tuple[str, str], ...]  # (field, direction) as requested
    origin: str

    def ordering(self) -> list[tuple[str, str]]:
        """The adapter's ordering: explicit, then inequality fields, then __name__ (tie-break)."""
        orders = [(f, d) for f, d in self.order if f != "__name__"]
        last = orders[-1][1] if orders else "asc"
        implicit = {f for f, op in self.where if op in INEQUALITY} - {f for f, _ in orders}
        orders += [(f, last) for f in sorted(implicit)]
        return orders

    def equality(self) -> dict[str, bool]:
        """Equality-class fields → whether the filter is on array membership."""
        return {f: op in ARRAY_OPS for f, op in self.where if op in EQUALITY}

    def needs_composite(self) -> bool:
        orders = self.ordering()
        if not orders:
            return False  # equality only: Firestore merges the automatic single-field indexes
        lone = len(orders) == 1 and orders[0][1] == TIE_BREAK
        return not (lone and set(self.equality()) <= {orders[0][0]})

    def required(self) -> dict:
        """The one composite index that serves this shape alone, as firestore.indexes.json writes it."""
        fields = [
            {"fieldPath": f, "arrayConfig": "CONTAINS"}
            if array
            else {"fieldPath": f, "order": "ASCENDING"}
            for f, array in sorted(self.equality().items())
        ]
        fields += [{"fieldPath": f, "order": _DIRECTION[d]} for f, d in self.ordering()]
        if fields[-1].get("order") != _DIRECTION[TIE_BREAK]:
            fields.append({"fieldPath": "__name__", "order": _DIRECTION[TIE_BREAK]})
        return {"collectionGroup": self.collection, "queryScope": "COLLECTION", "fields": fields}


_DIRECTION = {"asc": "ASCENDING", "desc": "DESCENDING"}


def normalized(index: dict) -> list[tuple[str, str]]:
    """An index's fields with the implicit trailing __name__ made explicit."""
    fields = [(f["fieldPath"], f.get("order") or f["arrayConfig"]) for f in index["fields"]]
    if fields[-1][0] != "__name__":
        last = fields[-1][1]
        fields.append(("__name__", last if last in {"ASCENDING", "DESCENDING"} else "ASCENDING"))
    return fields


def covered(shape: Shape, indexes: list[dict]) -> bool:
    """Some declared indexes, merged if need be, serve the shape (Firestore's index merging)."""
    suffix = [(f, _DIRECTION[d]) for f, d in shape.ordering()] + [
        ("__name__", _DIRECTION[TIE_BREAK])
    ]
    equality = shape.equality()
    reached: set[str] = set()
    for index in indexes:
        if index["collectionGroup"] != shape.collection or index.get("queryScope") != "COLLECTION":
            continue
        fields = normalized(index)
        if len(fields) < len(suffix) or fields[len(fields) - len(suffix) :] != suffix:
            continue
        prefix = fields[: len(fields) - len(suffix)]
        usable = all(
            name in equality and ((kind == "CONTAINS") == equality[name]) for name, kind in prefix
        )
        if not usable:
            continue
        if not prefix and not equality:
            return True
        reached |= {name for name, _ in prefix}
    return bool(equality) and reached == set(equality)


# ---------------------------------------------------------------------------------------------
# The services' shapes.


def derive(program: Program) -> tuple[list[Shape], list[str]]:
    shapes, problems = [], []
    for site in program.queries:
        try:
            combinations = set()
            for bindings in program.contexts(site):
                parts = [
                    set().union(*(program.concretize(t, 0, bindings) for t in terms))
                    for terms in (site.collection, site.where, site.order_by)
                ]
                combinations |= set(itertools.product(*parts))
        except Unresolved as exc:
            problems.append(f"{site.origin}: cannot derive the query shape ({exc})")
            continue
        for collection, where, order in combinations:
            if not isinstance(collection, str) or not _valid(where, "W") or not _valid(order, "O"):
                problems.append(f"{site.origin}: not a collection, Where list and OrderBy list")
                continue
            group = collection.split("/")[-1]
            shapes.append(
                Shape(
                    group,
                    tuple((f, op) for _, f, op in where),
                    tuple((f, d) for _, f, d in order),
                    site.origin,
                )
            )
    return shapes, problems


def _valid(items: object, kind: str) -> bool:
    return isinstance(items, tuple) and all(
        isinstance(i, tuple)
        and len(i) == 3
        and i[0] == kind
        and all(isinstance(x, str) for x in i[1:])
        for i in items
    )


def service_program() -> Program:
    program = Program()
    names = sorted(
        "playbook_core.service." + ".".join(p.relative_to(SERVICE).with_suffix("").parts)
        for p in SERVICE.rglob("*.py")
        if p.stem != "__init__"
    )
    modules = [program.module(name) for name in names]
    for module in modules:
        program.analyse(module)
    return program


@pytest.fixture(scope="module")
def service_shapes() -> list[Shape]:
    shapes, problems = derive(service_program())
    assert not problems, "\n".join(problems)
    return shapes


@pytest.fixture(scope="module")
def declared() -> dict:
    return json.loads(INDEXES.read_text(encoding="utf-8"))


def test_every_service_query_has_its_indexes(service_shapes, declared):
    missing = {}
    for shape in service_shapes:
        if shape.needs_composite() and not covered(shape, declared["indexes"]):
            missing.setdefault(json.dumps(shape.required()), []).append(shape.origin)
    assert not missing, "add to infra/firestore.indexes.json:\n" + "\n".join(
        f"{index}  # {', '.join(sorted(set(origins)))}" for index, origins in missing.items()
    )


def test_the_scan_sees_the_services_queries(service_shapes):
    # A scanner that silently finds nothing would pass the test above; these queries exist.
    by_collection = {shape.collection for shape in service_shapes}
    assert {PLAYBOOKS, VERSIONS, SCHEDULES, EXECUTIONS} <= by_collection
    listing = [s for s in service_shapes if "service/authoring/playbook_list.py:" in s.origin]
    assert any(("searchTokens", "array-contains-any") in s.where for s in listing)
    assert any(("category", "==") in s.where and ("agent", "==") in s.where for s in listing)
    assert any(len(s.where) == 2 for s in listing)  # orgId and the archived/status filter only


def test_the_model_matches_the_adapters_ordering():
    source = ADAPTER.read_text(encoding="utf-8")
    # The shapes above assume these two adapter behaviours; change the model with them.
    assert 'query = query.order_by("__name__")' in source
    assert "implicit = {w.field for w in where if w.op in _INEQUALITY}" in source


# ---------------------------------------------------------------------------------------------
# The file itself.


def test_indexes_are_well_formed_and_unique(declared):
    seen = set()
    for index in declared["indexes"]:
        assert set(index) == {"collectionGroup", "queryScope", "fields"}, index
        assert index["queryScope"] in {"COLLECTION", "COLLECTION_GROUP"}
        assert len(index["fields"]) >= 2, index
        for position, item in enumerate(index["fields"]):
            assert item["fieldPath"]
            assert ("order" in item) != ("arrayConfig" in item), item
            assert item.get("order", "ASCENDING") in {"ASCENDING", "DESCENDING"}
            assert item.get("arrayConfig", "CONTAINS") == "CONTAINS"
            if item["fieldPath"] == "__name__":
                assert position == len(index["fields"]) - 1, index
        key = (index["collectionGroup"], index["queryScope"], tuple(normalized(index)))
        assert key not in seen, f"duplicate index {index}"
        seen.add(key)


# domain.md §2.4, as written there (↑ ascending, ↓ descending).
SPEC_INDEXES = """
playbooks: orgId ↑, status ↑, updatedAt ↓
playbooks: orgId ↑, category ↑, updatedAt ↓
playbook_event_listeners: orgId ↑, status ↑, eventName ↑
playbook_schedules: status ↑, nextRunAt ↑
playbook_executions: orgId ↑, playbookId ↑, createdAt ↓
playbook_executions: orgId ↑, status ↑, createdAt ↓
playbook_executions: status ↑, expectedProgressBy ↑
playbook_deliveries: orgId ↑, attributable ↑, customerId ↑, sentAt ↓
playbook_deliveries: orgId ↑, attributable ↑, recipientEmail ↑, sentAt ↓
playbook_deliveries: orgId ↑, attributable ↑, recipientPhone ↑, sentAt ↓
playbook_deliveries: orgId ↑, playbookId ↑, status ↑, createdAt ↓
playbook_deliveries: orgId ↑, status ↑, skipReason ↑, createdAt ↓
playbook_approvals: orgId ↑, status ↑, requestedAt ↓
playbook_approvals: status ↑, expiresAt ↑
playbook_attributions: orgId ↑, status ↑, orderAt ↓
playbook_attributions: orgId ↑, lastTouch.playbookId ↑, orderAt ↓
playbook_event_log: orgId ↑, receivedAt ↓
playbook_event_log: orgId ↑, outcome ↑, receivedAt ↓
playbook_event_log: orgId ↑, name ↑, receivedAt ↓
playbook_stats_daily: orgId ↑, date ↑
playbook_stats_daily: orgId ↑, playbookId ↑, date ↑
customer_dates: orgId ↑, field ↑, monthDay ↑
customer_dates: orgId ↑, field ↑, date ↑
customers: orgId ↑, email ↑
orders: brandId ↑, createdAt ↓
orders: retailerId ↑, createdAt ↓
"""


@pytest.mark.parametrize("line", SPEC_INDEXES.strip().splitlines())
def test_every_index_domain_md_lists_is_declared(line, declared):
    collection, fields = line.split(": ")
    wanted = [
        (name, "ASCENDING" if arrow == "↑" else "DESCENDING")
        for name, arrow in (f.rsplit(" ", 1) for f in fields.split(", "))
    ]
    candidates = [
        [(f, o) for f, o in normalized(i) if f != "__name__"]
        for i in declared["indexes"]
        if i["collectionGroup"] == collection
    ]
    assert wanted in candidates


# TTL (domain.md §2.1: every collection with a retention carries expiresAt) and exemptions (§2.4).
EXEMPT_FIELDS = {"event", "trace", "output", "preview", "definition"}


def test_ttl_policies_cover_every_collection_with_a_retention(declared):
    ttl = {
        o["collectionGroup"]
        for o in declared["fieldOverrides"]
        if o.get("ttl") and o["fieldPath"] == "expiresAt"
    }
    assert ttl == RETAINED


def test_large_fields_are_exempt_from_indexing(declared):
    exempt = {o["fieldPath"] for o in declared["fieldOverrides"] if o["indexes"] == []}
    assert exempt == EXEMPT_FIELDS


def test_ttl_fields_keep_the_indexes_their_sweeps_use(declared):
    for override in declared["fieldOverrides"]:
        if override.get("ttl"):
            orders = {i.get("order") for i in override["indexes"]}
            assert orders == {"ASCENDING", "DESCENDING"}, override


# ---------------------------------------------------------------------------------------------
# The interpreter itself, on small programs.


def shapes_of(source: str) -> list[Shape]:
    program = Program()
    module = program.load_source("playbook_core.service.sample", source)
    program.analyse(module)
    shapes, problems = derive(program)
    assert not problems, problems
    return shapes


def test_an_optional_filter_yields_both_shapes():
    shapes = shapes_of(
        "def f(store, status):\n"
        "    where = [Where('orgId', '==', 1)]\n"
        "    if status:\n"
        "        where.append(Where('status', '==', status))\n"
        "    return store.query('runs', where, [OrderBy('createdAt', 'desc')])\n"
    )
    assert {s.where for s in shapes} == {
        (("orgId", "=="),),
        (("orgId", "=="), ("status", "==")),
    }


def test_a_conditional_expression_and_early_return_are_followed():
    shapes = shapes_of(
        "RUNS = 'runs'\n"
        "def f(store, a):\n"
        "    if not a:\n"
        "        return None\n"
        "    field = 'x' if a else 'y'\n"
        "    return store.query(RUNS, [Where(field, '<', 3)], limit=5)\n"
    )
    assert {(s.collection, s.where) for s in shapes} == {
        ("runs", (("x", "<"),)),
        ("runs", (("y", "<"),)),
    }


def test_a_helpers_parameters_resolve_at_its_call_sites():
    shapes = shapes_of(
        "def _page(store, collection, where, order):\n"
        "    return store.query(collection, where, order)\n"
        "def a(store):\n"
        "    return _page(store, f'playbooks/{1}/versions', [], [OrderBy('version', 'desc')])\n"
        "def b(store):\n"
        "    return _page(store, 'runs', [Where('s', '==', 1)], order=[])\n"
    )
    assert {(s.collection, s.order) for s in shapes} == {
        ("versions", (("version", "desc"),)),
        ("runs", ()),
    }


def test_an_unknown_filter_list_fails_loudly():
    program = Program()
    module = program.load_source(
        "playbook_core.service.sample",
        "def f(store, fields):\n"
        "    return store.query('runs', [Where(x, '==', 1) for x in fields])\n",
    )
    program.analyse(module)
    _, problems = derive(program)
    assert problems
    assert "cannot derive" in problems[0]


def test_the_index_model():
    def shape(where, order=()):
        return Shape("c", tuple(where), tuple(order), "here")

    def index(*fields):
        return {
            "collectionGroup": "c",
            "queryScope": "COLLECTION",
            "fields": [
                {"fieldPath": f, "arrayConfig": "CONTAINS"}
                if o == "C"
                else {"fieldPath": f, "order": o}
                for f, o in fields
            ],
        }

    equality_only = shape([("a", "=="), ("b", "in")])
    lone_ascending = shape([], [("t", "asc")])
    lone_descending = shape([], [("t", "desc")])
    range_on_one = shape([("t", ">=")])
    mixed = shape([("a", "=="), ("t", "<")])
    merged = shape([("a", "=="), ("b", "=="), ("tags", "array-contains-any")], [("t", "desc")])
    assert not equality_only.needs_composite()
    assert not lone_ascending.needs_composite()
    assert not range_on_one.needs_composite()
    assert lone_descending.needs_composite()
    assert mixed.needs_composite()
    assert covered(mixed, [index(("a", "ASCENDING"), ("t", "ASCENDING"))])
    assert not covered(mixed, [index(("a", "ASCENDING"), ("t", "DESCENDING"))])
    descending = [("a", "ASCENDING"), ("t", "DESCENDING")]
    parts = [
        index(*descending[:1], ("b", "ASCENDING"), *descending[1:], ("__name__", "ASCENDING")),
        index(*descending[:1], ("tags", "C"), *descending[1:], ("__name__", "ASCENDING")),
    ]
    assert covered(merged, parts)
    assert not covered(merged, parts[:1])
    assert not covered(merged, [index(("a", "ASCENDING"), ("t", "DESCENDING"))])  # ties: desc
    assert merged.required()["fields"][-1] == {"fieldPath": "__name__", "order": "ASCENDING"}
