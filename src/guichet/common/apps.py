from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "guichet.common"
    label = "common"
