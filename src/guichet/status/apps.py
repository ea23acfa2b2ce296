from django.apps import AppConfig


class StatusConfig(AppConfig):
    name = "guichet.status"
    label = "status"
