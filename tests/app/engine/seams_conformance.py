"""Type-checked, never run (`tests/test_types.py`): the shell's parts fit the seams and the
cores' views structurally, so a method renamed on one side fails the type check."""

from __future__ import annotations

from typing import Any

from faust.tables.table import Table as FaustTable
from faust.types import Message

from resontinex.agents.budget import BudgetView
from resontinex.agents.gate import AwaitingView, GateView
from resontinex.agents.outcomes import OutcomesView
from resontinex.agents.trajectory import Analyzer, Scorer

from resontinex.app.engine.continuity import FetchedEvent, FetchedMessage
from resontinex.app.engine.seams import Event, Sink, Table
from resontinex.app.engine.seams import Message as SeamMessage
from resontinex.app.engine.sink import OutputSink
from resontinex.app.wiring.budget import CostsView
from resontinex.app.wiring.fusion import AwaitingTable
from resontinex.app.wiring.gate import TablesView
from resontinex.app.wiring.outcomes import StateView


def views(gate: TablesView, costs: CostsView, outcomes: StateView, awaiting: AwaitingTable,
          analyzer: Analyzer) -> None:
    _gate: GateView = gate
    _costs: BudgetView = costs
    _outcomes: OutcomesView = outcomes
    _awaiting: AwaitingView = awaiting
    _scorer: Scorer = analyzer


def parts(sink: OutputSink, table: FaustTable[str, Any], event: FetchedEvent) -> None:
    _sink: Sink = sink
    _table: Table = table
    _event: Event = event


def messages(fetched: FetchedMessage, faust_message: Message) -> None:
    _fetched: SeamMessage = fetched
    _faust: SeamMessage = faust_message
