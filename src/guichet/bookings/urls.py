from django.urls import path

from . import views, views_agent

app_name = "bookings"

urlpatterns = [
    # Agents (first: "manage/..." would otherwise match "<slug:portal>/...")
    path("manage/bookings/<slug:portal>/", views_agent.home, name="agent-home"),
    path("manage/bookings/<slug:portal>/households/<str:reference>/", views_agent.household, name="agent-household"),
    path("manage/bookings/<slug:portal>/households/<str:reference>/book/", views_agent.book, name="agent-book"),
    path("manage/bookings/<slug:portal>/households/<str:reference>/address/", views_agent.address,
         name="agent-address"),
    path("manage/bookings/<slug:portal>/bookings/<int:pk>/cancel/", views_agent.cancel, name="agent-cancel"),
    path(
        "manage/bookings/<slug:portal>/bookings/<int:pk>/justification/",
        views_agent.justification, name="agent-justification",
    ),
    path("manage/bookings/<slug:portal>/attendance/", views_agent.attendance, name="agent-attendance"),
    path("manage/bookings/<slug:portal>/fill-rates/", views_agent.fill_rates, name="agent-fill-rates"),
    path("manage/bookings/<slug:portal>/waiting-lists/", views_agent.waitlists, name="agent-waitlists"),
    path("manage/bookings/<slug:portal>/waiting-lists/<int:session>/offer/", views_agent.offer_next, name="agent-offer"),
    # Families
    path("<slug:portal>/famille/", views.home, name="home"),
    path("<slug:portal>/famille/adresse/", views.address, name="address"),
    path("<slug:portal>/famille/calendrier/", views.calendar, name="calendar"),
    path("<slug:portal>/famille/calendrier/mois/", views.calendar_month, name="calendar-month"),
    path("<slug:portal>/famille/panier/", views.basket_submit, name="basket-submit"),
    path("<slug:portal>/famille/panier/<int:pk>/", views.basket_result, name="basket"),
    path("<slug:portal>/famille/reservations/<int:pk>/annuler/", views.cancel, name="cancel"),
    path("<slug:portal>/famille/reservations/<int:pk>/justificatif/", views.justify, name="justify"),
    path("<slug:portal>/famille/justificatifs/<int:pk>/document/", views.document, name="document"),
    path("<slug:portal>/famille/liste-attente/<int:pk>/<str:answer>/", views.waitlist_answer, name="waitlist-answer"),
    path("<slug:portal>/famille/agenda/<int:household>-<str:token>.ics", views.ical_feed, name="ical"),
]
