"""The support desk: six capabilities over one embedded SQLite database (`SupportDB`).

Each keeps its database in the graph's data directory (`RunContext.data_dir`) unless its `db`
option names an absolute file. Imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graph._lazy import exports

if TYPE_CHECKING:
    from capabilities.support_desk.account import Account, AccountInputs
    from capabilities.support_desk.billing import Billing, BillingInputs
    from capabilities.support_desk.db import SupportDB, SupportDBs
    from capabilities.support_desk.incidents import Incidents, IncidentsInputs
    from capabilities.support_desk.knowledge_search import KnowledgeSearch
    from capabilities.support_desk.refund import Refund, RefundInputs
    from capabilities.support_desk.sales import Sales, SalesInputs

_EXPORTS = {
    "Account": "capabilities.support_desk.account",
    "AccountInputs": "capabilities.support_desk.account",
    "Billing": "capabilities.support_desk.billing",
    "BillingInputs": "capabilities.support_desk.billing",
    "SupportDB": "capabilities.support_desk.db",
    "SupportDBs": "capabilities.support_desk.db",
    "Incidents": "capabilities.support_desk.incidents",
    "IncidentsInputs": "capabilities.support_desk.incidents",
    "KnowledgeSearch": "capabilities.support_desk.knowledge_search",
    "Refund": "capabilities.support_desk.refund",
    "RefundInputs": "capabilities.support_desk.refund",
    "Sales": "capabilities.support_desk.sales",
    "SalesInputs": "capabilities.support_desk.sales",
}

__all__ = [
    "Account",
    "AccountInputs",
    "Billing",
    "BillingInputs",
    "Incidents",
    "IncidentsInputs",
    "KnowledgeSearch",
    "Refund",
    "RefundInputs",
    "Sales",
    "SalesInputs",
    "SupportDB",
    "SupportDBs",
]

if not TYPE_CHECKING:  # type checkers see the imports above, and flag a name not among them
    __getattr__, __dir__ = exports(globals(), _EXPORTS)
