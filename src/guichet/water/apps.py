from django.apps import AppConfig


class WaterConfig(AppConfig):
    name = "guichet.water"
    label = "water"
