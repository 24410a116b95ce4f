"""Sign-in recording, members' sessions and password reset (decision 0028)."""
