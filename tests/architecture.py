"""An import-linter contract type: another domain is entered only through its declared public modules.

Built-in ``protected`` contracts must list every module to keep private, so a module added later is public
until someone remembers to list it. This contract inverts that: each domain declares what is public, and any
import into a domain from outside it (other than from the wiring) must land in one of those modules.

    [importlinter:contract:public-faces]
    type = public_faces
    domains =
        chalicelib.tenancy: access models
        chalicelib.mall:
    allowed_everywhere = chalicelib.wiring
"""

from __future__ import annotations

from dataclasses import dataclass

import grimp
from importlinter import Contract, ContractCheck, fields, output


@dataclass(frozen=True)
class Entry:
    importer: str
    imported: str
    lines: tuple[int, ...]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


class PublicFacesContract(Contract):
    domains = fields.ListField(subfield=fields.StringField())
    allowed_everywhere = fields.ListField(subfield=fields.StringField(), required=False)

    def _faces(self) -> dict[str, tuple[str, ...]]:
        faces: dict[str, tuple[str, ...]] = {}
        for line in self.domains:  # type: ignore[attr-defined]
            domain, _, public = str(line).partition(":")
            faces[domain.strip()] = tuple(f"{domain.strip()}.{name}" for name in public.split())
        return faces

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        trusted = [str(m) for m in (self.allowed_everywhere or [])]  # type: ignore[attr-defined]
        illegal: list[Entry] = []
        for domain, public in self._faces().items():
            for imported in sorted(m for m in graph.modules if _within(m, domain)):
                if any(_within(imported, face) for face in public):
                    continue
                for importer in sorted(graph.find_modules_that_directly_import(imported)):
                    if _within(importer, domain) or any(_within(importer, t) for t in trusted):
                        continue
                    details = graph.get_import_details(importer=importer, imported=imported)
                    illegal.append(Entry(importer, imported, tuple(d["line_number"] for d in details)))
        return ContractCheck(kept=not illegal, metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        output.print_error("Imports into a domain's private modules from outside it:", bold=False)
        output.new_line()
        for entry in check.metadata["illegal"]:
            output.print_error(f"- {entry.importer} -> {entry.imported} (l.{', '.join(map(str, entry.lines))})", bold=False)
            output.new_line()
