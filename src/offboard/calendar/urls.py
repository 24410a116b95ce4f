from django.urls import path

from offboard.calendar import views

app_name = "calendar"

urlpatterns = [
    path("<str:token>.ics", views.feed, name="feed"),
]
