from django.apps import AppConfig


class RecoveryConfig(AppConfig):
    name = "guichet.recovery"
    label = "recovery"
    verbose_name = "Degraded mode and recovery"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from . import gates
        from .models import OnlineGate

        # A gate saved or deleted in this process takes effect at once here (others: GATES_TTL).
        post_save.connect(gates.forget_gates, sender=OnlineGate, dispatch_uid="recovery.forget_gates.save")
        post_delete.connect(gates.forget_gates, sender=OnlineGate, dispatch_uid="recovery.forget_gates.delete")
