"""The outcomes agent's core: what happened to a decision teaches the router and the trust
calibration.

`plan_outcomes` is the batch core: outcome records and a read-only `OutcomesView` in,
`Effects` out (`resontinex.agents.effects`). A routed decision's outcome updates its
tenant's router policy once, however often it is redelivered; a labelled outcome adds a
sample to its tenant's score calibration, refitted every `REFIT_EVERY` samples.
`resontinex.app.wiring.outcomes` wires it to Kafka and Faust.
"""

from ._calibration import MAX_SAMPLES, REFIT_EVERY, Sample, refit
from ._plan import OUTCOME_LIMIT, OutcomeBatch, OutcomesConfig, plan_outcomes
from ._view import Known, OutcomesView

__all__ = ["MAX_SAMPLES", "OUTCOME_LIMIT", "REFIT_EVERY", "Known", "OutcomeBatch", "OutcomesConfig", "OutcomesView",
           "Sample", "plan_outcomes", "refit"]
