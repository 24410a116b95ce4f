"""What Offboard sends to people: the closure receipt (certificate + signed checkpoint) today."""
