from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GuidelinesConfig(AppConfig):
    name = "guidelines"
    verbose_name = _("Guidelines")

    def ready(self):
        from allauth.account import signals as allauth_signals
        from allauth.mfa import signals as mfa_signals
        from django.contrib.auth import signals

        from . import accounts, security
        from .middleware import IdleTimeoutMiddleware

        # Every sign-in, failed sign-in and sign-out on the security log (guidelines/security.py).
        signals.user_logged_in.connect(security.on_login, dispatch_uid="security-login")
        signals.user_login_failed.connect(security.on_login_failed, dispatch_uid="security-login-failed")
        signals.user_logged_out.connect(security.on_logout, dispatch_uid="security-logout")
        signals.user_logged_in.connect(IdleTimeoutMiddleware.on_sign_in, dispatch_uid="idle-timeout-sign-in")
        # A sign-in through an identity provider: its claims kept with the session, as evidence.
        allauth_signals.user_logged_in.connect(accounts.remember_sso_sign_in, dispatch_uid="sso-sign-in")
        mfa_signals.authenticator_added.connect(accounts.on_authenticator_added, dispatch_uid="second-factor-added")
        mfa_signals.authenticator_removed.connect(accounts.on_authenticator_removed,
                                                  dispatch_uid="second-factor-removed")
