from django.urls import path

from receiver import views

urlpatterns = [path("webhooks/", views.shop_webhook, name="shop-webhook")]
