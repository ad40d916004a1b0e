"""The public-faces import contract: a domain's private modules are private by default."""

from __future__ import annotations

import grimp

from tests.architecture import PublicFacesContract


def _graph(*imports: tuple[str, str]) -> grimp.ImportGraph:
    graph = grimp.ImportGraph()
    for module in (
        "app",
        "app.wiring",
        "app.points",
        "app.points.engine",
        "app.points.store",
        "app.points.new_module",
        "app.mall",
        "app.mall.shop",
    ):
        graph.add_module(module)
    for importer, imported in imports:
        graph.add_import(importer=importer, imported=imported, line_number=3, line_contents=f"import {imported}")
    return graph


def _check(graph: grimp.ImportGraph) -> tuple[bool, list[str]]:
    contract = PublicFacesContract(
        name="faces",
        session_options={"root_packages": ["app"]},
        contract_options={"domains": ["app.points: engine", "app.mall:"], "allowed_everywhere": ["app.wiring"]},
    )
    result = contract.check(graph, verbose=False)
    return result.kept, [f"{e.importer} -> {e.imported}" for e in result.metadata["illegal"]]


def test_imports_through_a_public_module_or_inside_the_domain_are_kept() -> None:
    # Given the mall using the points engine, points using its own store, and the wiring importing the mall
    graph = _graph(("app.mall.shop", "app.points.engine"), ("app.points.engine", "app.points.store"), ("app.wiring", "app.mall.shop"))
    # Then the contract holds
    assert _check(graph) == (True, [])


def test_a_module_nobody_declared_public_is_private() -> None:
    # Given the mall importing the points store and a points module added later (declared nowhere)
    graph = _graph(("app.mall.shop", "app.points.store"), ("app.mall.shop", "app.points.new_module"))
    # Then both imports break the contract, named
    assert _check(graph) == (False, ["app.mall.shop -> app.points.new_module", "app.mall.shop -> app.points.store"])


def test_a_domain_with_no_public_module_is_closed_to_other_domains() -> None:
    graph = _graph(("app.points.engine", "app.mall.shop"))
    assert _check(graph) == (False, ["app.points.engine -> app.mall.shop"])
