from django.urls import path

from analytics import views

app_name = "analytics"

urlpatterns = [
    path("statistics/", views.statistics, name="statistics"),
    path("activity/", views.activity, name="activity"),
]
