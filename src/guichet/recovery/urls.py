from django.urls import path

from . import views

app_name = "recovery"

urlpatterns = [
    path("manage/recovery/<slug:portal>/", views.home, name="home"),
    path("manage/recovery/<slug:portal>/<slug:organisation>/", views.coming_back, name="coming-back"),
    path("manage/recovery/<slug:portal>/<slug:organisation>/paper/bookings/", views.paper_booking,
         name="paper-booking"),
    path("manage/recovery/<slug:portal>/<slug:organisation>/paper/deposits/", views.paper_deposit,
         name="paper-deposit"),
    path("manage/recovery/<slug:portal>/<slug:organisation>/paper/void/", views.paper_void, name="paper-void"),
    path("manage/recovery/<slug:portal>/<slug:organisation>/paper/import/", views.paper_import,
         name="paper-import"),
]
