from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GuidelinesConfig(AppConfig):
    name = "guidelines"
    verbose_name = _("Guidelines")

    def ready(self):
        from django.contrib.auth import signals

        from . import security

        # Every sign-in, failed sign-in and sign-out on the security log (guidelines/security.py).
        signals.user_logged_in.connect(security.on_login, dispatch_uid="security-login")
        signals.user_login_failed.connect(security.on_login_failed, dispatch_uid="security-login-failed")
        signals.user_logged_out.connect(security.on_logout, dispatch_uid="security-logout")
