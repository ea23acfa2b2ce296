from django.urls import path

from . import views

app_name = "water"

P = "manage/water/<slug:portal>/<slug:organisation>/"

urlpatterns = [
    path("manage/water/<slug:portal>/", views.portal_home, name="portal"),
    path(P, views.home, name="home"),
    path(P + "customers/<str:reference>/", views.customer, name="customer"),
    path(P + "customers/<str:reference>/invoices/<str:number>/plan/", views.plan, name="plan"),
    path(P + "outage/", views.outage, name="outage"),
    path(P + "regularisations/", views.regularisations, name="regularisations"),
    path(P + "debit-runs/", views.debit_runs, name="debit-runs"),
    path(P + "debit-runs/<int:pk>/pain008.xml", views.debit_file, name="debit-file"),
]
