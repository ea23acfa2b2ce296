"""The opening-day rush scenario, written straight into the database (setup is not measured).

One organisation; a holiday leisure activity with a single "day" part and one unit, "full_day";
``centres`` centres x 10 holiday days (two Monday-to-Friday weeks) x ``places`` places; families
of 1-2 children, each with a guardian account, each wanting one week (5 days) at one centre;
``popular_share`` of them want the same week; centres' popularity is skewed. A registration
window opens at the given instant. Authentication is prepared beforehand: a Django session and
a CSRF secret per guardian (or an API token), so logging in is not part of what is measured.

Needs Django set up (``django.setup()``) on the target database.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import string
from dataclasses import dataclass, field
from importlib import import_module

DAYS_PER_WEEK = 5
WEEKS = 2


@dataclass(frozen=True)
class Params:
    families: int = 3000
    centres: int = 20
    places: int = 60
    popular_share: float = 0.7
    two_children_share: float = 0.6
    partial_share: float = 0.5  # the rest ask "all or nothing"
    skew: float = 0.8  # centre i is chosen with weight 1 / (i + 1) ** skew
    seed: int = 20240604

    @property
    def days(self) -> int:
        return DAYS_PER_WEEK * WEEKS


@dataclass
class Family:
    index: int
    household_id: int
    user_id: int
    children: list[int]
    centre: int
    week: int
    mode: str
    items: list[dict]
    session_key: str = ""
    csrf: str = ""
    token: str = ""

    def headers(self, auth: str) -> dict[str, str]:
        if auth == "token":
            return {"Authorization": f"Bearer {self.token}"}
        return {"Cookie": f"sessionid={self.session_key}; csrftoken={self.csrf}", "X-CSRFToken": self.csrf}


@dataclass
class Scenario:
    params: Params
    organisation_id: int
    activity_id: int
    unit_id: int
    window_id: int
    sessions: dict[tuple[int, int], int]  # (centre, day) -> Session id
    families: list[Family] = field(default_factory=list)

    @property
    def capacity(self) -> int:
        return self.params.centres * self.params.days * self.params.places

    @property
    def demand(self) -> int:
        return sum(len(f.items) for f in self.families)


def first_monday(today: dt.date, days_ahead: int = 60) -> dt.date:
    d = today + dt.timedelta(days=days_ahead)
    return d + dt.timedelta(days=(7 - d.weekday()) % 7)


def build(params: Params, *, opens_at: dt.datetime, prefix: str = "bench") -> Scenario:
    """Create everything for the rush; returns ids and each family's request."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from guichet.bookings import models as m
    from guichet.catalog.models import Organisation, Portal

    rng = random.Random(params.seed)
    now = timezone.now()
    monday = first_monday(timezone.localdate())
    dates = [monday + dt.timedelta(days=w * 7 + d) for w in range(WEEKS) for d in range(DAYS_PER_WEEK)]
    User = get_user_model()
    with transaction.atomic():
        portal = Portal.objects.create(slug=f"{prefix}-portal", name="Bench")
        org = Organisation.objects.create(portal=portal, slug=f"{prefix}-town", name="Ville de Banc")
        activity = m.Activity.objects.create(
            organisation=org, slug="accueil-vacances", name="Accueil de loisirs, vacances",
            kind=m.Activity.Kind.LEISURE_HOLIDAYS, parts=["day"],
            booking_rule="tuesday before week at 23:59", cancellation_rule="sunday of previous week at 23:59",
        )
        unit = m.Unit.objects.create(organisation=org, activity=activity, code="full_day",
                                     name="Journée complète", parts=["day"])
        sites = m.Site.objects.bulk_create(
            [m.Site(organisation=org, slug=f"centre-{i + 1:02d}", name=f"Centre {i + 1}")
             for i in range(params.centres)]
        )
        sessions = m.Session.objects.bulk_create(
            [m.Session(organisation=org, activity=activity, site=s, date=d) for s in sites for d in dates]
        )
        m.SessionPart.objects.bulk_create(
            [m.SessionPart(organisation=org, session=s, part="day", capacity=params.places) for s in sessions]
        )
        window = m.RegistrationWindow.objects.create(
            organisation=org, activity=activity, first_date=dates[0], last_date=dates[-1], opens_at=opens_at,
        )
        session_ids = {}
        for ci in range(params.centres):
            for di in range(params.days):
                session_ids[(ci, di)] = sessions[ci * params.days + di].pk

        password = make_password(None)  # unusable: nobody logs in, sessions are prepared
        users = User.objects.bulk_create(
            [User(username=f"{prefix}-guardian-{i}", password=password) for i in range(params.families)]
        )
        households = m.Household.objects.bulk_create(
            [m.Household(organisation=org, reference=f"F{i:06d}", display_name=f"Famille {i}",
                         created_at=now) for i in range(params.families)]
        )
        m.Guardian.objects.bulk_create(
            [m.Guardian(organisation=org, household=h, user=u) for h, u in zip(households, users, strict=True)]
        )
        n_children = [2 if rng.random() < params.two_children_share else 1 for _ in households]
        children = m.Child.objects.bulk_create(
            [m.Child(organisation=org, household=h, first_name=f"Enfant {k + 1}",
                     birth_date=dt.date(2015 + rng.randrange(0, 7), 1 + rng.randrange(12), 1 + rng.randrange(28)))
             for h, n in zip(households, n_children, strict=True) for k in range(n)]
        )

    weights = [1 / (i + 1) ** params.skew for i in range(params.centres)]
    scenario = Scenario(params, org.pk, activity.pk, unit.pk, window.pk, session_ids)
    ci = 0
    for i, (h, u, n) in enumerate(zip(households, users, n_children, strict=True)):
        kids = [c.pk for c in children[ci:ci + n]]
        ci += n
        centre = rng.choices(range(params.centres), weights)[0]
        week = 0 if rng.random() < params.popular_share else 1
        mode = "partial" if rng.random() < params.partial_share else "all_or_nothing"
        items = [
            {"child": k, "session": session_ids[(centre, week * DAYS_PER_WEEK + d)], "unit": "full_day"}
            for d in range(DAYS_PER_WEEK) for k in kids
        ]
        scenario.families.append(Family(i, h.pk, u.pk, kids, centre, week, mode, items))
    return scenario


CSRF_CHARS = string.ascii_letters + string.digits


def prepare_auth(scenario: Scenario, *, auth: str = "session") -> None:
    """Sign every guardian in beforehand: a server-side session + CSRF secret, or an API token."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from guichet.accounts.models import ApiToken

    users = get_user_model().objects.in_bulk([f.user_id for f in scenario.families])
    if auth == "token":
        tokens = []
        for f in scenario.families:
            f.token = secrets.token_urlsafe(32)
            tokens.append(ApiToken(user=users[f.user_id], name="bench", digest=ApiToken.hash(f.token)))
        ApiToken.objects.bulk_create(tokens, batch_size=1000)
        return
    store = import_module(settings.SESSION_ENGINE).SessionStore()  # the server's session engine
    Session = store.model
    expire = timezone.now() + dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    rows = []
    for f in scenario.families:
        user = users[f.user_id]
        f.session_key = secrets.token_hex(16)
        f.csrf = "".join(secrets.choice(CSRF_CHARS) for _ in range(32))
        data = store.encode({
            "_auth_user_id": str(user.pk),
            "_auth_user_backend": settings.AUTHENTICATION_BACKENDS[-1],
            "_auth_user_hash": user.get_session_auth_hash(),
        })
        rows.append(Session(session_key=f.session_key, session_data=data, expire_date=expire, user_id=user.pk))
    Session.objects.bulk_create(rows, batch_size=1000)


def reset_bookings(scenario: Scenario) -> None:
    """Forget every basket, booking and waiting-list entry: the places are all free again."""
    from django.db import transaction

    from guichet.bookings import models as m

    with transaction.atomic():
        org = scenario.organisation_id
        m.WaitlistEntry.objects.filter(organisation_id=org).delete()
        m.Booking.objects.filter(organisation_id=org).delete()
        m.Basket.objects.filter(organisation_id=org).delete()
        m.SessionPart.objects.filter(organisation_id=org).update(booked=0)
