from django.urls import path

from analytics import views

app_name = "analytics"

urlpatterns = [
    path("statistics/", views.statistics, name="statistics"),
    path("exports/<slug:what>.csv", views.export, name="export"),
    path("exports/<slug:what>.xlsx", views.export, {"format": "xlsx"}, name="export_xlsx"),
    path("activity/", views.activity, name="activity"),
    path("activity/integrity/", views.integrity, name="integrity"),
    path("activity/users/<id:user_id>/", views.user_history, name="user_history"),
]
