from django.urls import path

from offboard.reminders import views

app_name = "reminders"

urlpatterns = [
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
