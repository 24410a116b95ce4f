"""The REST API at /api/v1/: mounts each area's router and maps domain errors to JSON."""

from offboard import __version__
from offboard.accounts.api import router as accounts_router
from offboard.cases.api import router as cases_router
from offboard.clients.api import router as clients_router
from offboard.connectors.api import router as connectors_router
from offboard.core.api import BearerToken, OffboardApi, install_error_handlers, require_scopes
from offboard.core.inputs import check_inputs
from offboard.evidence.api import router as evidence_router
from offboard.inbound.api import router as inbound_router
from offboard.ledger.api import router as ledger_router
from offboard.packs.api import router as evidence_pack_router
from offboard.playbooks.api import router as playbooks_router
from offboard.portal.api import router as portal_router
from offboard.webhooks.api import router as webhooks_router

api = OffboardApi(
    title="Offboard API",
    version=__version__,
    description="Client offboarding cases, registers, approvals and evidence. Authenticate with "
    '`Authorization: Bearer <token>`; errors are `{"error": {"code", "message", "details"}}`.',
    auth=BearerToken(),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)
install_error_handlers(api)
# Each operation's token check is for the scope its view declares (`@scope`, or `read` for a
# GET): a 403 `insufficient_scope` before the body is read, and the scope in the OpenAPI
# document (core/scopes.py, decision 0029).
api.add_decorator(require_scopes, mode="view")
# Integers, dates and text out of what the database and the services can hold: a 422 naming
# the field, for every operation, before its view runs.
api.add_decorator(check_inputs, mode="operation")  # wraps the view: parsed inputs
api.add_router("", accounts_router)
api.add_router("/clients", clients_router)
api.add_router("/evidence", evidence_router)
api.add_router("/playbooks", playbooks_router)
api.add_router("/cases", cases_router)
api.add_router("/cases", evidence_pack_router)
api.add_router("/ledger", ledger_router)
api.add_router("", portal_router)
api.add_router("/inbound", inbound_router)
api.add_router("/webhooks", webhooks_router)
api.add_router("", connectors_router)
