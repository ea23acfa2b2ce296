app_name = "water"

urlpatterns: list = []
