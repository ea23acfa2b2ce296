from django.urls import path

from . import poster, views, views_manage, views_subscriptions

app_name = "status"

urlpatterns = [
    # Editors (first: "manage/status/" would otherwise match "<slug:portal>/status/")
    path("manage/status/", views_manage.home, name="manage-home"),
    path("manage/status/<slug:portal>/", views_manage.portal, name="manage-portal"),
    path("manage/status/<slug:portal>/edit/<slug:kind>/", views_manage.edit, name="manage-edit"),
    path("manage/status/<slug:portal>/changes/<int:pk>/", views_manage.changeset, name="manage-changeset"),
    path("manage/status/<slug:portal>/checked/", views_manage.checked, name="manage-checked"),
    # Public
    path("<slug:portal>/", views.portal_home, name="portal"),
    path("<slug:portal>/status/", views.page, name="page"),
    path("<slug:portal>/status/services/<slug:service>/", views.service, name="service"),
    path("<slug:portal>/status/feed.atom", views.atom, name="atom"),
    path("<slug:portal>/status.json", views.json_state, name="json"),
    path("<slug:portal>/status/poster.pdf", poster.poster_pdf, name="poster"),
    path("<slug:portal>/status/subscribe/", views_subscriptions.subscribe, name="subscribe"),
    path("status/subscriptions/confirm/<str:token>/", views_subscriptions.confirm, name="confirm"),
    path("status/subscriptions/stop/<str:token>/", views_subscriptions.unsubscribe, name="unsubscribe"),
]
