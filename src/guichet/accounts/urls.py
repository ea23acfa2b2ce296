from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import views, views_data, views_family

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("after-login/", views.after_login, name="after-login"),
    # Staff: second factor
    path("two-factor/", views.two_factor, name="two-factor"),
    path("two-factor/setup/", views.two_factor_setup, name="two-factor-setup"),
    path("staff/", views.staff_home, name="staff-home"),
    path("staff/recovery-codes/", views.recovery_codes_renew, name="recovery-codes"),
    # Families: account with e-mail verification, password reset, other guardians
    path("signup/", views_family.signup, name="signup"),
    path("signup/sent/", views_family.signup_sent, name="signup-sent"),
    path("verify/<str:token>/", views_family.verify_email, name="verify-email"),
    path("family/", views_family.family_start, name="family-start"),
    path("family/invite/<slug:portal>/", views_family.invite, name="invite"),
    path("family/join/<str:token>/", views_family.join, name="join"),
    path("family/data/<slug:portal>/", views_data.family_data, name="family-data"),
    path("family/data/<slug:portal>/erasure/", views_data.family_erasure, name="family-erasure"),
    path("staff/personal-data/<slug:portal>/", views_data.staff_erasures, name="staff-erasures"),
    path("staff/personal-data/<slug:portal>/<int:pk>/", views_data.staff_erasure, name="staff-erasure"),
    path("password/reset/", auth_views.PasswordResetView.as_view(
        template_name="accounts/password_reset.html",
        email_template_name="accounts/email/password_reset_body.txt",
        subject_template_name="accounts/email/password_reset_subject.txt",
        extra_email_context={"public_url": settings.GUICHET_PUBLIC_URL},
        success_url=reverse_lazy("accounts:password-reset-sent")), name="password-reset"),
    path("password/reset/sent/", auth_views.PasswordResetDoneView.as_view(
        template_name="accounts/password_reset_sent.html"), name="password-reset-sent"),
    path("password/reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(
        template_name="accounts/password_reset_confirm.html",
        success_url=reverse_lazy("accounts:password-reset-done")), name="password-reset-confirm"),
    path("password/reset/done/", auth_views.PasswordResetCompleteView.as_view(
        template_name="accounts/password_reset_done.html"), name="password-reset-done"),
]
