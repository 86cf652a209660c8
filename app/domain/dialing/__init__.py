"""The dialer's domain: records, input events, opt-outs and the pure state machine.

Nothing here does I/O; agents/dial_leads.py stores the records and performs the actions.
"""

from realgeeks_sync.app.domain.dialing.answers import (
    answer_for_error,
    answer_for_placement,
    answer_for_window_closed,
)
from realgeeks_sync.app.domain.dialing.events import (
    CallAnswer,
    CallEnded,
    ContextSeen,
    DialerEvent,
    DialerRecordError,
    OperatorAction,
    Tick,
    answer_record,
    operator_record,
    outcome_record,
    parse_dialer_record,
    tick_record,
)
from realgeeks_sync.app.domain.dialing.gate import may_dial
from realgeeks_sync.app.domain.dialing.machine import (
    CallRequest,
    DeadLetter,
    DialerPolicy,
    DialerView,
    Emit,
    Step,
    step,
)
from realgeeks_sync.app.domain.dialing.optouts import (
    OptOut,
    OptOutError,
    optout_event,
    optout_key,
    parse_optout,
)
from realgeeks_sync.app.domain.dialing.records import (
    ALL_SITES,
    Attempt,
    AttemptState,
    DncEntry,
    LeadRecord,
    LeadStatus,
    SiteRecord,
    all_sites_key,
    is_all_sites,
)

__all__ = [
    "ALL_SITES",
    "Attempt",
    "AttemptState",
    "CallAnswer",
    "CallEnded",
    "CallRequest",
    "ContextSeen",
    "DeadLetter",
    "DialerEvent",
    "DialerPolicy",
    "DialerRecordError",
    "DialerView",
    "DncEntry",
    "Emit",
    "LeadRecord",
    "LeadStatus",
    "OperatorAction",
    "OptOut",
    "OptOutError",
    "SiteRecord",
    "Step",
    "Tick",
    "all_sites_key",
    "answer_for_error",
    "answer_for_placement",
    "answer_for_window_closed",
    "answer_record",
    "is_all_sites",
    "may_dial",
    "operator_record",
    "optout_event",
    "optout_key",
    "outcome_record",
    "parse_dialer_record",
    "parse_optout",
    "step",
    "tick_record",
]
