from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "guichet.accounts"
    label = "accounts"

    def ready(self):
        # The administration signs in through the one sign-in page (throttled, then the second
        # factor), never through its own form.
        from django.contrib import admin
        from django.contrib.auth.views import redirect_to_login

        def admin_login(request, extra_context=None):
            return redirect_to_login(request.GET.get("next") or request.get_full_path())

        admin.site.login = admin_login
