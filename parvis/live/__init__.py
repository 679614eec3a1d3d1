"""Live platforms: listening to chat rooms in real time and acting on them (Matrix first)."""
