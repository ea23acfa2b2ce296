from django.apps import AppConfig


class RecoveryConfig(AppConfig):
    name = "guichet.recovery"
    label = "recovery"
    verbose_name = "Degraded mode and recovery"
