from django.urls import path

from receiver import views

urlpatterns = [
    path("<slug:customer>/webhooks/", views.shop_webhook, name="shop-webhook"),
]
