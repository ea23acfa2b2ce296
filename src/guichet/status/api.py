from ninja import NinjaAPI

api = NinjaAPI(title="Guichet API", version="1", urls_namespace="api")
