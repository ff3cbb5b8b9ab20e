"""Which globals a generated program reads but never defines."""

from __future__ import annotations

import builtins
import symtable


def undefined_globals(program: str, name: str) -> set[str]:
    """Names the program reads as globals (at module level or from a
    function) that it neither defines nor gets from builtins."""
    table = symtable.symtable(program, name, "exec")
    defined = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    missing = set()
    pending = [table]
    while pending:
        scope = pending.pop()
        pending.extend(scope.get_children())
        for symbol in scope.get_symbols():
            reads_global = symbol.is_global() or scope.get_type() == "module"
            if reads_global and symbol.is_referenced() and symbol.get_name() not in defined:
                missing.add(symbol.get_name())
    return missing - set(dir(builtins))
