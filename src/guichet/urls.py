from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path

from guichet.billing.api import router as billing_router
from guichet.bookings.api import router as bookings_router
from guichet.common import views as common_views
from guichet.status.api import api

api.add_router("/bookings", bookings_router)
api.add_router("/billing", billing_router)

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", api.urls),
    path("healthz", common_views.healthz, name="healthz"),
]

urlpatterns += i18n_patterns(
    path("", common_views.home, name="home"),
    path("admin/", admin.site.urls),
    path("accounts/", include("guichet.accounts.urls")),
    path("", include("guichet.billing.urls")),
    path("", include("guichet.water.urls")),
    path("", include("guichet.recovery.urls")),
    path("", include("guichet.bookings.urls")),
    path("", include("guichet.status.urls")),
    prefix_default_language=False,
)

handler404 = "guichet.common.views.not_found"
handler500 = "guichet.common.views.server_error"
