"""Every incident gets a fault report (R-INC-6): resolving one drafts it, or refreshes the draft.

The engineer completes the text and publishes; a published report is left as the customer got it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from opsdesk.alerting import incidents
from opsdesk.alerting.models import Incident, IncidentStatus
from opsdesk.reports import service


@incidents.on_incident_change
def draft_when_resolved(session: Session, incident: Incident, what: str) -> None:
    if what == IncidentStatus.resolved.value:
        service.fault_of(session, incident)
