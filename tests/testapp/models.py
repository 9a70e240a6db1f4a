from django.db import models


class Organization(models.Model):
    name = models.CharField(max_length=100)


class Order(models.Model):
    organization = models.ForeignKey(Organization, null=True, on_delete=models.CASCADE)
    total = models.DecimalField(max_digits=10, decimal_places=2)
    status = models.CharField(max_length=20, default="new")
