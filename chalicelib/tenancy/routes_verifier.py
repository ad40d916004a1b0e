"""Store staff routes: scoped to the store in the verifier token."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.core.auth.rules import VERIFIER
from chalicelib.core.http.api import Api, current_verifier, ok
from chalicelib.tenancy import accounts
from chalicelib.tenancy.models import StoreOut

verifier = Api(__name__, tag="verifier")


@verifier.endpoint("/v1/verifier/store", auth=VERIFIER, response=StoreOut, summary="The verifier's store", errors=(401,))
def get_store() -> Response:
    caller = current_verifier()
    return ok(StoreOut.from_domain(accounts.get_store(caller.tenant_id, caller.store_id)))
