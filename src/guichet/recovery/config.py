"""The gates' configuration file (YAML): which status-board procedure governs each online
function of an organisation. Declarative: loading a file makes the organisation's gates exactly
what it says. See docs/guide-degraded-mode.md.

    portal: saint-nazaire
    organisation: ville
    gates:
      - function: booking          # booking | cancellation | payment
        activity: alsh-mercredis   # optional: one activity (booking, cancellation); none = all
        service: enfance           # the status board's service slug...
        procedure: inscriptions    # ...and its procedure slug
        when_degraded: warn        # optional: warn (default: stay open with the message) | close
"""

from __future__ import annotations

import datetime as dt

import yaml

from guichet.bookings.models import Activity
from guichet.catalog.models import Organisation, Procedure
from guichet.common.actor import Actor

from . import services
from .models import Function, OnlineGate


class ConfigError(ValueError):
    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def parse(text: str) -> tuple[Organisation, list[services.GateSpec]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {str(exc).splitlines()[0]}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(["the file must be a mapping with portal, organisation and gates"])
    errors = []
    unknown = set(data) - {"portal", "organisation", "gates"}
    if unknown:
        errors.append(f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    org = Organisation.objects.filter(portal__slug=str(data.get("portal", "")),
                                      slug=str(data.get("organisation", ""))).first()
    if org is None:
        raise ConfigError([*errors, "portal/organisation: no such organisation"])
    gates = data.get("gates")
    if not isinstance(gates, list):
        raise ConfigError([*errors, "gates: a list is required (an empty list removes every gate)"])
    specs = []
    for i, g in enumerate(gates):
        path = f"gates[{i}]"
        if not isinstance(g, dict):
            errors.append(f"{path}: a mapping is required")
            continue
        extra = set(g) - {"function", "activity", "service", "procedure", "when_degraded"}
        if extra:
            errors.append(f"{path}: unknown keys: {', '.join(sorted(map(str, extra)))}")
        function = str(g.get("function", ""))
        if function not in Function.values:
            errors.append(f"{path}.function: one of {', '.join(Function.values)}")
        mode = str(g.get("when_degraded", OnlineGate.WhenDegraded.WARN))
        if mode not in OnlineGate.WhenDegraded.values:
            errors.append(f"{path}.when_degraded: warn or close")
        procedure = Procedure.objects.filter(service__organisation__portal=org.portal,
                                             service__slug=str(g.get("service", "")),
                                             slug=str(g.get("procedure", ""))).first()
        if procedure is None:
            errors.append(f"{path}.procedure: no procedure {g.get('procedure')!r} in service {g.get('service')!r} "
                          "of this portal's status board")
        activity = None
        if g.get("activity") is not None:
            if function == Function.PAYMENT:
                errors.append(f"{path}.activity: payment is per organisation, not per activity")
            activity = Activity.objects.filter(organisation=org, slug=str(g["activity"])).first()
            if activity is None:
                errors.append(f"{path}.activity: no activity {g['activity']!r} in this organisation")
        if procedure is not None:
            specs.append(services.GateSpec(function, procedure, activity, mode))
    if errors:
        raise ConfigError(errors)
    return org, specs


def load(text: str, *, actor: Actor, now: dt.datetime) -> tuple[Organisation, dict]:
    org, specs = parse(text)
    return org, services.gates_replace(organisation=org, specs=specs, actor=actor, now=now)
